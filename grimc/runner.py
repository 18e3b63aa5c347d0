"""Build generated models and run them: in-process (host .so via ctypes) or
under qemu (aarch64 executable harness).

    gen = generate(module, emit_target("host"))
    with HostModel.build(gen, workdir, threads=1) as model:
        outputs = model.run([x])
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from grimc.emit.codegen import GeneratedModel
from grimc.errors import GrimcError


def write_sources(gen: GeneratedModel, outdir: Path) -> tuple[Path, Path, Path]:
    """Write <prefix>.c, <prefix>.h and <prefix>.weights.bin into outdir."""
    outdir.mkdir(parents=True, exist_ok=True)
    c_path = outdir / f"{gen.prefix}.c"
    h_path = outdir / f"{gen.prefix}.h"
    blob_path = outdir / f"{gen.prefix}.weights.bin"
    c_path.write_text(gen.source)
    h_path.write_text(gen.header)
    blob_path.write_bytes(gen.blob)
    return c_path, h_path, blob_path


class RunError(GrimcError):
    """The compiled model refused to load or run."""


class HostModel:
    """A generated model built as a host shared library, run through ctypes."""

    def __init__(self, gen: GeneratedModel, lib_path: Path, blob_path: Path, threads: int):
        self.gen = gen
        self._lib = ctypes.CDLL(str(lib_path))
        self._prefix = gen.prefix
        self._fn("create").argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
        self._fn("run").argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        self._fn("destroy").argtypes = [ctypes.c_void_p]
        self._fn("arena_bytes").argtypes = [ctypes.c_void_p]
        self._fn("arena_bytes").restype = ctypes.c_size_t
        self._handle = ctypes.c_void_p()
        status = self._fn("create")(str(blob_path).encode(), threads, ctypes.byref(self._handle))
        if status != 0:
            raise RunError(f"{lib_path.name}: model creation failed with status {status}")

    @classmethod
    def build(
        cls,
        gen: GeneratedModel,
        outdir: Path,
        threads: int = 1,
        target: str = "host",
        extra_flags: Sequence[str] = (),
    ) -> HostModel:
        from grimc.toolchain import build_shared, resolve_target

        c_path, _, blob_path = write_sources(gen, outdir)
        lib = outdir / f"{gen.prefix}.so"
        build_shared([c_path], lib, resolve_target(target), extra_flags=list(extra_flags))
        return cls(gen, lib, blob_path, threads)

    def _fn(self, name: str):
        return getattr(self._lib, f"{self._prefix}_{name}")

    @property
    def arena_bytes(self) -> int:
        return int(self._fn("arena_bytes")(self._handle))

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != len(self.gen.inputs):
            raise RunError(f"expected {len(self.gen.inputs)} inputs, got {len(inputs)}")
        arrays = []
        for desc, x in zip(self.gen.inputs, inputs, strict=True):
            arr = np.ascontiguousarray(x, dtype=np.float32)
            if arr.size != int(np.prod(desc.shape, dtype=np.int64)):
                raise RunError(f"input '{desc.name}': expected shape {list(desc.shape)}, got {list(arr.shape)}")
            arrays.append(arr)
        outs = [np.empty(d.shape, dtype=np.float32) for d in self.gen.outputs]
        in_ptrs = (ctypes.c_void_p * max(1, len(arrays)))(*[a.ctypes.data for a in arrays])
        out_ptrs = (ctypes.c_void_p * max(1, len(outs)))(*[o.ctypes.data for o in outs])
        status = self._fn("run")(self._handle, in_ptrs, out_ptrs)
        if status != 0:
            raise RunError(f"model run failed with status {status}")
        return outs

    def close(self) -> None:
        if self._handle:
            self._fn("destroy")(self._handle)
            self._handle = ctypes.c_void_p()

    def __enter__(self) -> HostModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
