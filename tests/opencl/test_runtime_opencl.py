"""Build and run the OpenCL host runtime's C tests (runtime_c/tests/test_opencl.c).

The program runs on the real OpenCL device (PoCL in CI), natively and under
AddressSanitizer + UBSan (leak checking off: the OpenCL driver keeps
process-lifetime allocations). It passes when it exits 0 and its last line
is "N passed, 0 failed" with N the number of RUN(...) calls in the source.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.opencl.clenv import CLANG, INCLUDE, RUNTIME, require, require_opencl

TEST_SRC = RUNTIME / "tests" / "test_opencl.c"
SOURCES = sorted((RUNTIME / "src").glob("*.c"))
FLAGS = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-Wpedantic", "-pthread", "-march=x86-64-v3"]
CONFIGS = {
    "host": ["-O2"],
    "asan-ubsan": ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"],
}


def build(tmp_path: Path, flags: list[str], sources: list[Path], out: str) -> Path:
    exe = tmp_path / out
    cmd = [CLANG, *FLAGS, *flags, f"-I{INCLUDE}", f"-I{RUNTIME / 'tests'}"]
    cmd += [*map(str, sources), "-lOpenCL", "-lm", "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 and "libclang_rt" in proc.stderr:
        require(False, "sanitizer runtime", "libclang-rt-19-dev")
    assert proc.returncode == 0, f"compile failed: {' '.join(cmd)}\n{proc.stderr}"
    return exe


@pytest.mark.parametrize("cfg", list(CONFIGS))
def test_opencl_runtime(cfg: str, tmp_path: Path) -> None:
    require_opencl()
    exe = build(tmp_path, CONFIGS[cfg], [*SOURCES, TEST_SRC], "test_opencl")
    cache = tmp_path / "cache"
    cache.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIMC_OPENCL")}
    env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0"
    proc = subprocess.run(
        [str(exe), str(cache)], capture_output=True, text=True, timeout=600, env=env
    )
    report = f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 0, report
    runs = len(re.findall(r"^\s*RUN\(", TEST_SRC.read_text(), re.MULTILINE))
    assert proc.stdout.strip().splitlines()[-1] == f"{runs} passed, 0 failed", report
    assert "device: " in proc.stdout, report
    # The binary cache wrote real files under the nested directory it created.
    assert any((cache / "bins" / "nested").glob("*.clbin")), report


def test_opencl_runtime_unity_build(tmp_path: Path) -> None:
    """opencl.c compiles inside one TU with the rest of the runtime (no clashing statics)."""
    require_opencl()
    local = re.compile(r'^\s*#\s*include\s+"grimc_\w+\.h"\s*$', re.MULTILINE)
    parts = ["#define _GNU_SOURCE", "#include <stdlib.h>", "#include <string.h>"]
    parts += ['#pragma GCC diagnostic ignored "-Wunused-function"']
    headers = ["grimc_rt.h", "grimc_math.h", "grimc_opencl.h"]
    for path in [INCLUDE / h for h in headers] + SOURCES:
        parts.append(local.sub("", path.read_text()))
    src = tmp_path / "unity.c"
    src.write_text("\n".join(parts) + "\n")
    cmd = [CLANG, *FLAGS, "-O2", "-c", str(src), "-o", str(tmp_path / "unity.o")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
