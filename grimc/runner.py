"""Build generated models and run them: in-process (host .so via ctypes) or
under qemu (aarch64 executable harness).

    gen = generate(module, "host")
    with HostModel.build(gen, workdir, threads=1) as model:
        outputs = model.run([x])
    outputs = ExeModel.build(gen, workdir, target="aarch64").run([x])
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grimc.device import Device, DeviceError
from grimc.emit.codegen import GeneratedModel
from grimc.errors import GrimcError
from grimc.target import Target


def write_sources(gen: GeneratedModel, outdir: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    """Write <prefix>.c, <prefix>.h and <prefix>.weights.bin into outdir."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    c_path = outdir / f"{gen.prefix}.c"
    h_path = outdir / f"{gen.prefix}.h"
    blob_path = outdir / f"{gen.prefix}.weights.bin"
    c_path.write_text(gen.source)
    h_path.write_text(gen.header)
    gen.write_blob(blob_path)
    return c_path, h_path, blob_path


def check_inputs(
    gen: GeneratedModel, inputs: Sequence[np.ndarray], names: Sequence[str] | None = None
) -> list[np.ndarray]:
    """The inputs as contiguous arrays, each exactly of its input's dtype
    (float32, or int64/int32 for an index input) and shape.

    Exact: a flat, transposed-layout or float64 array is a caller error, not
    something to reinterpret silently. `names` are what errors call the inputs
    (the ONNX backend uses the graph's own names); default: the generated names.
    """
    if len(inputs) != len(gen.inputs):
        raise RunError(f"expected {len(gen.inputs)} inputs, got {len(inputs)}")
    labels = names if names is not None else [desc.name for desc in gen.inputs]
    arrays = []
    for name, desc, x in zip(labels, gen.inputs, inputs, strict=True):
        if not isinstance(x, np.ndarray):
            raise RunError(f"input '{name}': expected a numpy array, got {type(x).__name__}")
        if x.dtype != np.dtype(desc.dtype):
            raise RunError(f"input '{name}': expected dtype {desc.dtype}, got {x.dtype}")
        if tuple(x.shape) != tuple(desc.shape):
            raise RunError(f"input '{name}': expected shape {list(desc.shape)}, got {list(x.shape)}")
        arrays.append(x if x.flags.c_contiguous else np.copy(x, order="C"))  # keeps 0-d inputs 0-d
    return arrays


class RunError(GrimcError):
    """The compiled model refused to load or run."""


def range_error(
    gen: GeneratedModel, inputs: Sequence[np.ndarray], names: Sequence[str] | None = None
) -> RunError:
    """The error for a run the model refused with GRIMC_E_RANGE, naming the
    integer input and its first value outside the range the model checks."""
    labels = names if names is not None else [desc.name for desc in gen.inputs]
    for name, desc, x in zip(labels, gen.inputs, inputs, strict=True):
        if desc.bounds is not None:
            lo, hi = desc.bounds
            bad = x[(x < lo) | (x >= hi)]
            if bad.size:
                return RunError(
                    f"input '{name}': index {int(bad.flat[0])} is out of range [{lo}, {hi})"
                )
    return RunError(RANGE_MESSAGE)


PROFILE_FLAG = "-DGRIMC_PROFILE"
"""Compile flag that makes a generated model time each kernel call."""

_UNSUPPORTED = -10  # GRIMC_E_UNSUPPORTED in runtime_c/include/grimc_rt.h
_RANGE = -13  # GRIMC_E_RANGE
RANGE_MESSAGE = "an integer input (an index) is out of range"
"""grimc_strerror(GRIMC_E_RANGE), which the harness prints when a run fails."""
_NOT_PROFILED = "the model was built without profiling (build with profile=True)"


@dataclass(frozen=True)
class KernelProfile:
    """One kernel's share of a profiled run (see `<prefix>_profile` in the header)."""

    name: str
    op: str
    label: str
    flops: float
    ms: float
    calls: int

    @property
    def gflops(self) -> float:
        """GFLOP/s of this kernel (on stored weights for sparse kernels)."""
        return self.flops / (self.ms * 1e6) if self.ms > 0 else 0.0


def kernel_profiles(gen: GeneratedModel, ms: Sequence[float], runs: int) -> list[KernelProfile]:
    """Pair the generated kernels with their measured mean milliseconds."""
    if len(ms) != len(gen.kernels):
        raise RunError(f"profile has {len(ms)} entries for {len(gen.kernels)} kernels")
    return [
        KernelProfile(k.fn, k.source_op, k.label, float(k.flops), float(t), runs)
        for k, t in zip(gen.kernels, ms, strict=True)
    ]


def format_profile(profiles: Sequence[KernelProfile]) -> str:
    """A table of kernels by decreasing time: ms, share of the total, GFLOP/s."""
    total = sum(p.ms for p in profiles) or 1.0
    header = f"{'kernel':24s} {'op':22s} {'layer':24s} {'ms':>9s} {'%':>6s} {'GFLOP/s':>8s}"
    rows = [
        f"{p.name:24s} {p.op:22s} {p.label or '-':24s} {p.ms:9.3f} "
        f"{100 * p.ms / total:6.1f} {p.gflops:8.1f}"
        for p in sorted(profiles, key=lambda p: -p.ms)
    ]
    return "\n".join([header, *rows, f"{'sum of kernels':72s} {total:9.3f}"])


def with_profile_flag(extra_flags: Sequence[str], profile: bool) -> list[str]:
    return [*extra_flags, PROFILE_FLAG] if profile else list(extra_flags)


def _build_key(source: str, target: str, flags: Sequence[str]) -> str:
    """Names a host library by what it contains. ctypes (dlopen) hands back the
    library already loaded from a path, so a path must never name other code:
    another model, or the same one built with other flags (profiling)."""
    text = "\0".join([source, target, *flags])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class HostModel:
    """A generated model built as a host shared library, run through ctypes.

    Thread-safe: the C model has one activation arena and one thread pool, so
    calls on one object are serialized by a lock (ctypes releases the GIL
    while C runs; several objects of one library run in parallel).
    """

    def __init__(self, gen: GeneratedModel, lib_path: Path, blob_path: Path, threads: int):
        self.gen = gen
        self._lock = threading.Lock()
        self._lib = ctypes.CDLL(str(lib_path))
        self._prefix = gen.prefix
        self._fn("create").argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
        self._fn("run").argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        self._fn("destroy").argtypes = [ctypes.c_void_p]
        self._fn("arena_bytes").argtypes = [ctypes.c_void_p]
        self._fn("arena_bytes").restype = ctypes.c_size_t
        self._fn("profile").argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
        self._fn("reset_profile").argtypes = [ctypes.c_void_p]
        self._handle = ctypes.c_void_p()
        status = self._fn("create")(str(blob_path).encode(), threads, ctypes.byref(self._handle))
        if status != 0:
            raise RunError(f"{lib_path.name}: model creation failed with status {status}")

    @classmethod
    def build(
        cls,
        gen: GeneratedModel,
        outdir: str | os.PathLike[str],
        threads: int = 1,
        target: str | Target | None = None,
        extra_flags: Sequence[str] = (),
        profile: bool = False,
    ) -> HostModel:
        """Build and load; `profile=True` compiles per-kernel timing in (see `profile`).

        `target`: default the one `gen` was generated for.
        """
        from grimc.toolchain import build_shared, resolve_target

        c_path, _, blob_path = write_sources(gen, outdir)
        spec = resolve_target(target if target is not None else gen.target or None)
        flags = with_profile_flag(extra_flags, profile)
        lib = c_path.parent / f"{gen.prefix}-{_build_key(gen.source, spec.name, flags)}.so"
        # Built beside and renamed into place: a library this process already
        # loaded from that path keeps its inode and its mapping stays valid.
        tmp = lib.with_name(f".{lib.name}.{os.getpid()}.tmp")
        build_shared([c_path], tmp, spec, extra_flags=flags)
        os.replace(tmp, lib)
        return cls(gen, lib, blob_path, threads)

    def _fn(self, name: str):
        return getattr(self._lib, f"{self._prefix}_{name}")

    @property
    def arena_bytes(self) -> int:
        with self._lock:
            return int(self._fn("arena_bytes")(self._live()))

    def _live(self) -> ctypes.c_void_p:
        """The model handle; holding the lock, so close() cannot race a call."""
        if not self._handle:
            raise RunError("the model is closed")
        return self._handle

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        arrays = check_inputs(self.gen, inputs)
        outs = [np.empty(d.shape, dtype=np.float32) for d in self.gen.outputs]
        in_ptrs = (ctypes.c_void_p * max(1, len(arrays)))(*[a.ctypes.data for a in arrays])
        out_ptrs = (ctypes.c_void_p * max(1, len(outs)))(*[o.ctypes.data for o in outs])
        with self._lock:
            status = self._fn("run")(self._live(), in_ptrs, out_ptrs)
        if status == _RANGE:
            raise range_error(self.gen, arrays)
        if status != 0:
            raise RunError(f"model run failed with status {status}")
        return outs

    def profile(self) -> list[KernelProfile]:
        """Mean time per kernel over the runs since load or `reset_profile`."""
        ms = (ctypes.c_double * max(1, len(self.gen.kernels)))()
        with self._lock:
            runs = self._fn("profile")(self._live(), ms, len(self.gen.kernels))
        if runs == _UNSUPPORTED:
            raise RunError(_NOT_PROFILED)
        if runs < 0:
            raise RunError(f"profile query failed with status {runs}")
        return kernel_profiles(self.gen, list(ms)[: len(self.gen.kernels)], runs)

    def reset_profile(self) -> None:
        with self._lock:
            self._fn("reset_profile")(self._live())

    def close(self) -> None:
        with self._lock:
            if self._handle:
                self._fn("destroy")(self._handle)
                self._handle = ctypes.c_void_p()

    def __enter__(self) -> HostModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class RunStats:
    """What the harness measured: median latency over `repeat` runs after warm-up."""

    median_ms: float
    repeat: int
    threads: int
    arena_bytes: int
    flops: float
    kernel_ms: list[float] | None = None
    """Mean milliseconds per kernel over the timed runs, if built with profiling."""


def stats_profile(gen: GeneratedModel, stats: RunStats) -> list[KernelProfile]:
    """The per-kernel profile a harness run reported (built with profile=True)."""
    if stats.kernel_ms is None:
        raise RunError(_NOT_PROFILED)
    return kernel_profiles(gen, stats.kernel_ms, stats.repeat)


class ExeModel:
    """A generated model built as a harness executable, for any target.

    aarch64 executables run under qemu-aarch64 (no binfmt here), host ones
    natively; data goes through raw fp32 files in a work directory.
    """

    def __init__(
        self, gen: GeneratedModel, exe: Path, blob: Path, target: str, workdir: Path, threads: int,
        device: Device | None = None,
    ):
        self.gen, self.exe, self.blob, self.target = gen, exe, blob, target
        self.workdir, self.threads, self.device = workdir, threads, device

    @classmethod
    def build(
        cls,
        gen: GeneratedModel,
        outdir: str | os.PathLike[str],
        target: str | Target | None = None,
        threads: int = 1,
        extra_flags: Sequence[str] = (),
        sanitize: Sequence[str] = (),
        profile: bool = False,
        device: Device | None = None,
    ) -> ExeModel:
        """Build the harness executable; `target`: default the one `gen` was generated for.

        For a remote `device` (grimc.device) it is linked statically: the device's
        libraries are unknown.
        """
        from grimc.toolchain import build_executable, resolve_target

        c_path, _, blob_path = write_sources(gen, outdir)
        outdir = c_path.parent
        harness = outdir / f"{gen.prefix}_main.c"
        harness.write_text(gen.harness)
        exe = outdir / gen.prefix
        spec = resolve_target(target if target is not None else gen.target or None)
        build_executable(
            [c_path, harness], exe, spec, static=spec.needs_qemu or device is not None,
            sanitize=sanitize, extra_flags=with_profile_flag(extra_flags, profile),
        )
        return cls(gen, exe, blob_path, spec.name, outdir, threads, device)

    def run_with_stats(
        self, inputs: Sequence[np.ndarray], repeat: int = 1, timeout: float = 900
    ) -> tuple[list[np.ndarray], RunStats]:
        from grimc.toolchain import ToolchainError, resolve_target, run_executable

        arrays = check_inputs(self.gen, inputs)
        stage = Path(tempfile.mkdtemp(prefix="run_", dir=self.workdir))
        try:
            (stage / "in").mkdir()
            (stage / "out").mkdir()
            for i, arr in enumerate(arrays):
                arr.astype(arr.dtype.newbyteorder("<")).tofile(stage / "in" / f"input{i}.bin")
            if self.device is None:
                args = [str(self.blob), str(self.threads), str(repeat), stage / "in", stage / "out"]
                try:
                    stdout = run_executable(self.exe, args, resolve_target(self.target),
                                            timeout=timeout).stdout
                except ToolchainError as exc:
                    if RANGE_MESSAGE in f"{exc}\n{exc.details}":
                        raise range_error(self.gen, arrays) from None
                    raise
            else:  # the stage is all the device sees: paths relative to it
                for path in (self.exe, self.blob):
                    os.link(path, stage / path.name)
                args = [self.blob.name, str(self.threads), str(repeat), "in", "out"]
                try:
                    stdout = self.device.run(stage, self.exe.name, args, timeout)
                except DeviceError as exc:
                    if RANGE_MESSAGE in str(exc):
                        raise range_error(self.gen, arrays) from None
                    raise
            stats = RunStats(**json.loads(stdout.strip().splitlines()[-1]))
            outs = [
                np.fromfile(stage / "out" / f"output{i}.bin", dtype="<f4").reshape(d.shape)
                for i, d in enumerate(self.gen.outputs)
            ]
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        return outs, stats

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return self.run_with_stats(inputs)[0]

    def close(self) -> None:
        """Nothing to release: each run is a separate process."""

    def __enter__(self) -> ExeModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
