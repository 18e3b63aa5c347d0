"""Build and run the C runtime's own tests (runtime_c/tests/test_*.c).

Every test program is compiled together with runtime_c/src/*.c and run in
each configuration CI relies on:

- host:      x86-64-v3, -O2, native run
- asan-ubsan: AddressSanitizer + UndefinedBehaviorSanitizer (UB is fatal)
- tsan:      ThreadSanitizer, thread pool test only
- aarch64:   static cross build with lld, run under qemu-aarch64
- helgrind:  thread pool test built with GRIMC_POOL_SPIN_NS=0 (mutex-only
             handoffs; helgrind does not model C11 atomics) under valgrind

A program passes when it exits 0 and its last stdout line is
"N passed, 0 failed" with N equal to the number of RUN(...) calls in its
source, so a test that silently stopped running is caught too.

Missing tools fail the test with the Debian package to install, unless
GRIMC_ALLOW_SKIP=1 (then they skip): CI installs them and must never skip.
Packages: clang-19, lld-19, libc6-dev-arm64-cross, libgcc-12-dev-arm64-cross,
qemu-user, libclang-rt-19-dev (sanitizer runtimes), valgrind.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "runtime_c"
INCLUDE = RUNTIME / "include"
C_TESTS = RUNTIME / "tests"
# opencl.c needs an OpenCL driver; tests/opencl/test_runtime_opencl.py builds it.
SOURCES = sorted(p for p in (RUNTIME / "src").glob("*.c") if p.name != "opencl.c")
# The headers this library owns, in dependency order (unity build below).
HEADERS = ["grimc_rt.h", "grimc_math.h", "grimc_incbin.h"]

CLANG = "clang-19"
QEMU = "qemu-aarch64"
AARCH64_ROOT = Path("/usr/aarch64-linux-gnu")
COMMON_FLAGS = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-Wpedantic", "-pthread"]
TIMEOUT_S = 120


@dataclass(frozen=True)
class Config:
    name: str
    flags: tuple[str, ...]
    ldflags: tuple[str, ...] = ()
    cross: bool = False


CONFIGS = {
    "host": Config("host", ("-O2", "-march=x86-64-v3")),
    "asan-ubsan": Config(
        "asan-ubsan",
        (
            "-O2",
            "-g",
            "-march=x86-64-v3",
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer",
        ),
    ),
    "tsan": Config("tsan", ("-O2", "-g", "-fsanitize=thread")),
    # valgrind cannot decode AVX-512 nor read clang-19's default DWARF 5.
    "helgrind": Config(
        "helgrind", ("-O1", "-g", "-gdwarf-4", "-march=x86-64-v3", "-DGRIMC_POOL_SPIN_NS=0")
    ),
    "aarch64": Config(
        "aarch64",
        ("--target=aarch64-linux-gnu", "-O2"),
        ("-fuse-ld=lld", "-static"),
        cross=True,
    ),
}

TEST_PROGRAMS = ["arena", "pool", "timing", "math", "blob"]
CASES = [
    pytest.param(cfg, prog, id=f"{cfg}-{prog}")
    for cfg in CONFIGS
    for prog in TEST_PROGRAMS
    if cfg not in ("tsan", "helgrind") or prog == "pool"
]


def require_toolchain(cfg: Config) -> None:
    require(shutil.which(CLANG) is not None, CLANG, "clang-19")
    if cfg.cross:
        require(
            shutil.which("ld.lld-19") is not None or shutil.which("ld.lld") is not None,
            "ld.lld",
            "lld-19",
        )
        require((AARCH64_ROOT / "lib" / "libc.a").exists(), "aarch64 libc", "libc6-dev-arm64-cross")
        require(
            any(Path("/usr/lib/gcc-cross/aarch64-linux-gnu").glob("*/libgcc.a")),
            "aarch64 libgcc",
            "libgcc-12-dev-arm64-cross",
        )
        require(shutil.which(QEMU) is not None, QEMU, "qemu-user")
    if cfg.name == "helgrind":
        require(shutil.which("valgrind") is not None, "valgrind", "valgrind")


def compile_c(cfg: Config, sources: list[Path], out: Path, extra: list[str]) -> None:
    cmd = [CLANG, *COMMON_FLAGS, *cfg.flags, f"-I{INCLUDE}", f"-I{C_TESTS}", *extra]
    link = [] if "-c" in extra else [*cfg.ldflags, "-lm"]
    cmd += [*map(str, sources), *link, "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    if proc.returncode != 0 and "libclang_rt" in proc.stderr:
        # Sanitizer runtimes live in their own package, not in clang-19.
        require(False, f"sanitizer runtime for {cfg.name}", "libclang-rt-19-dev")
    assert proc.returncode == 0, f"compile failed: {' '.join(cmd)}\n{proc.stderr}"


def run_program(cfg: Config, exe: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    if cfg.cross:
        cmd = [QEMU, "-L", str(AARCH64_ROOT), str(exe)]
    elif cfg.name == "helgrind":
        cmd = ["valgrind", "--tool=helgrind", "--error-exitcode=3", str(exe)]
    else:
        cmd = [str(exe)]
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
    env.setdefault("TSAN_OPTIONS", "halt_on_error=1")
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=TIMEOUT_S, env=env)


def expected_runs(prog: str) -> int:
    """Number of RUN(...) calls in the test source (all run in this driver)."""
    text = (C_TESTS / f"test_{prog}.c").read_text()
    return len(re.findall(r"^\s*RUN\(", text, re.MULTILINE))


# ---- reference writer of the GRIMCWB1 weight blob (spec: grimc_rt.h) ----

BLOB_MAGIC = b"GRIMCWB1"
BLOB_VERSION = 2
BLOB_HEADER = 32
BLOB_ENTRY = 16
BLOB_ALIGN = 64


def _align64(n: int) -> int:
    return (n + BLOB_ALIGN - 1) // BLOB_ALIGN * BLOB_ALIGN


def write_blob(payloads: list[bytes]) -> bytes:
    """Header, table, then each payload at the next multiple of 64."""
    pos = _align64(BLOB_HEADER + BLOB_ENTRY * len(payloads))
    table = []
    for p in payloads:
        table.append((pos, len(p)))
        pos = _align64(pos + len(p))
    out = bytearray(pos)
    struct.pack_into("<8sIIQQ", out, 0, BLOB_MAGIC, BLOB_VERSION, len(payloads), pos, 0)
    for i, ((off, n), p) in enumerate(zip(table, payloads, strict=True)):
        struct.pack_into("<QQ", out, BLOB_HEADER + BLOB_ENTRY * i, off, n)
        out[off : off + n] = p
    # Checksum: CRC-32 of everything, the checksum field itself read as zero.
    struct.pack_into("<Q", out, 24, zlib.crc32(bytes(out)))
    return bytes(out)


def fixture_payloads() -> list[bytes]:
    """The fixture test_blob.c expects (see the comment at its top)."""
    floats = struct.pack("<7f", *(k * 0.5 - 1.0 for k in range(7)))
    ints = struct.pack("<33i", *(k * k - 5 for k in range(33)))
    return [floats, b"", ints]


@pytest.fixture(scope="module")
def fixture_blob(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("blob") / "fixture.blob"
    path.write_bytes(write_blob(fixture_payloads()))
    return path


def test_blob_writer_layout() -> None:
    """Pin the layout bytes so the spec, this writer and the C tests agree."""
    blob = write_blob(fixture_payloads())
    assert blob[:8] == b"GRIMCWB1"
    crc = zlib.crc32(blob[:24] + bytes(8) + blob[32:])
    assert struct.unpack_from("<IIQQ", blob, 8) == (2, 3, len(blob), crc)
    assert [struct.unpack_from("<QQ", blob, 32 + 16 * i) for i in range(3)] == [
        (128, 28),
        (192, 0),
        (192, 132),
    ]
    assert len(blob) == 384


@pytest.mark.parametrize(("cfg_name", "prog"), CASES)
def test_runtime_c(cfg_name: str, prog: str, tmp_path: Path, fixture_blob: Path) -> None:
    cfg = CONFIGS[cfg_name]
    require_toolchain(cfg)
    extra: list[str] = []
    args: list[str] = []
    if prog == "blob":
        # Exercise the Python-written blob from disk and embedded via .incbin.
        assert '"' not in str(fixture_blob) and "\\" not in str(fixture_blob)
        extra.append(f'-DGRIMC_TEST_BLOB_PATH="{fixture_blob}"')
        args = [str(tmp_path), str(fixture_blob)]
    exe = tmp_path / f"test_{prog}"
    compile_c(cfg, [*SOURCES, C_TESTS / f"test_{prog}.c"], exe, extra)
    proc = run_program(cfg, exe, args)
    report = f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 0, f"{prog} [{cfg.name}] exit code {proc.returncode}\n{report}"
    lines = proc.stdout.strip().splitlines()
    assert lines, f"{prog} [{cfg.name}] printed nothing\n{report}"
    n = expected_runs(prog)
    assert lines[-1] == f"{n} passed, 0 failed", report


def unity_source() -> str:
    """All headers and sources as one TU, the way generated model.c inlines them."""
    local = re.compile(r'^\s*#\s*include\s+"grimc_\w+\.h"\s*$', re.MULTILINE)
    parts = ["#define _GNU_SOURCE", "#include <stdlib.h>", "#include <string.h>"]
    # Unused static inline helpers warn once they are in the main file.
    parts += ["#pragma GCC diagnostic push", '#pragma GCC diagnostic ignored "-Wunused-function"']
    for path in [INCLUDE / h for h in HEADERS] + SOURCES:
        parts.append(local.sub("", path.read_text()))
    parts.append("#pragma GCC diagnostic pop")
    return "\n".join(parts) + "\n"


@pytest.mark.parametrize("cfg_name", ["host", "aarch64"])
def test_runtime_c_unity_build(cfg_name: str, tmp_path: Path) -> None:
    """The runtime must also compile as one translation unit (no clashing statics)."""
    cfg = CONFIGS[cfg_name]
    require(shutil.which(CLANG) is not None, CLANG, "clang-19")
    src = tmp_path / "unity.c"
    src.write_text(unity_source())
    compile_c(cfg, [src], tmp_path / "unity.o", ["-c"])
