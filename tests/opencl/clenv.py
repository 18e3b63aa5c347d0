"""What every OpenCL test needs: the tools, and a hard failure when they are missing.

CI installs PoCL (pocl-opencl-icd), the ICD loader and headers
(ocl-icd-opencl-dev, opencl-headers) and oclgrind; a missing one fails the
test naming the package, unless GRIMC_ALLOW_SKIP=1 outside CI (then it
skips; with CI set it fails regardless). Kernel
tests also assert that a kernel really ran on an OpenCL device (device name
and launch count), so a run without a device can never pass.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Collection, Iterable
from pathlib import Path

import pytest

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "runtime_c"
INCLUDE = RUNTIME / "include"
CLANG = "clang-19"
LIB_DIRS = (Path("/usr/lib/x86_64-linux-gnu"), Path("/usr/lib/aarch64-linux-gnu"), Path("/usr/lib"))


def require_opencl() -> None:
    """clang, the OpenCL headers, the ICD loader and at least one device."""
    require(shutil.which(CLANG) is not None, CLANG, "clang-19")
    require(Path("/usr/include/CL/cl.h").exists(), "OpenCL headers", "opencl-headers")
    require(
        any((d / "libOpenCL.so").exists() for d in LIB_DIRS),
        "OpenCL ICD loader",
        "ocl-icd-opencl-dev",
    )
    clinfo = shutil.which("clinfo")
    require(clinfo is not None, "clinfo", "clinfo")
    out = subprocess.run([clinfo, "-l"], capture_output=True, text=True, timeout=60).stdout
    require("Device" in out, "an OpenCL device", "pocl-opencl-icd")


def require_oclgrind() -> str:
    path = shutil.which("oclgrind")
    require(path is not None, "oclgrind", "oclgrind")
    assert path is not None
    return path


def device_reports_fp16() -> bool:
    """Whether an OpenCL device lists cl_khr_fp16 (half arithmetic); PoCL on CPU does not."""
    out = subprocess.run(["clinfo"], capture_output=True, text=True, timeout=60).stdout
    return "cl_khr_fp16" in out


def tiered(names: Iterable[str], fast: Collection[str]) -> list:
    """Parametrize values: those in `fast` run in the fast tier, the rest are
    marked slow (PoCL builds every kernel: the fast tier runs each op kind once)."""
    missing = set(fast) - set(names)
    assert not missing, f"fast-tier names that are no cases: {sorted(missing)}"
    return [n if n in fast else pytest.param(n, marks=pytest.mark.slow) for n in names]
