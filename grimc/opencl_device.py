"""The OpenCL device a model built now would run on: what tuning records are keyed by.

The host runtime (runtime_c/src/opencl.c, `grimc_cl_create`) owns the choice:
$GRIMC_OPENCL_DEVICE (an index or a name substring), else the first GPU, else
the first device. Rather than repeat that rule, `selected_device` builds the
runtime into a small probe library once per process and asks it, so a
compile and `grimc tune` name the device as a model's `<prefix>_device` does:
"<platform> | <device>".
"""

from __future__ import annotations

import ctypes
import functools
import os
import tempfile
from pathlib import Path

from grimc.emit.codegen import RUNTIME_FILES, runtime_source
from grimc.emit.opencl.codegen import RUNTIME_EXTRA
from grimc.errors import GrimcError

SELECTOR_ENV = "GRIMC_OPENCL_DEVICE"

PROBE = r"""
#define _GNU_SOURCE
#include <stdio.h>
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
{runtime}
#pragma GCC diagnostic pop

/* "<platform> | <device>" of the device grimc_cl_create selects, or the
 * runtime's reason why there is none (the status is returned). */
int grimc_probe_device(char *out, size_t n);
int grimc_probe_device(char *out, size_t n) {{
    grimc_cl *cl = NULL;
    int rc = grimc_cl_create(NULL, &cl, out, n);
    if (rc != GRIMC_OK) {{
        return rc;
    }}
    snprintf(out, n, "%s | %s", cl->platform_name, cl->device_name);
    grimc_cl_destroy(cl);
    return GRIMC_OK;
}}
"""


class NoOpenCLDevice(GrimcError):
    """The runtime finds no OpenCL device (or none the selector names)."""


@functools.cache
def _probe() -> ctypes.CDLL:
    """The runtime's device selection as a loaded library (built once per process)."""
    from grimc.toolchain import build_shared

    with tempfile.TemporaryDirectory(prefix="grimc-clprobe-") as tmp:
        c_path = Path(tmp) / "probe.c"
        c_path.write_text(PROBE.format(runtime=runtime_source(RUNTIME_FILES + RUNTIME_EXTRA)))
        lib_path = build_shared([c_path], Path(tmp) / "probe.so", "opencl", opt_level=0)
        lib = ctypes.CDLL(str(lib_path))  # stays mapped after the directory is removed
    lib.grimc_probe_device.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    lib.grimc_probe_device.restype = ctypes.c_int
    return lib


@functools.cache
def _select(selector: str) -> str:
    buf = ctypes.create_string_buffer(1024)
    if _probe().grimc_probe_device(buf, len(buf)) != 0:
        raise NoOpenCLDevice(buf.value.decode(errors="replace") or "no OpenCL device")
    return buf.value.decode(errors="replace")


def selected_device() -> str:
    """'<platform> | <device>' the runtime selects under the current $GRIMC_OPENCL_DEVICE;
    NoOpenCLDevice (the runtime's message) when there is none."""
    return _select(os.environ.get(SELECTOR_ENV, ""))
