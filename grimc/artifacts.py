"""What the CLI writes and runs: C/obj/so/exe artifacts, and compiled runs.

All files of one compilation are produced in a temporary directory and moved
into place only when everything succeeded, so a failure leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grimc.device import parse_device
from grimc.driver import ModelSource, compile_model
from grimc.emit.codegen import GeneratedModel
from grimc.errors import GrimcError, cannot_write
from grimc.names import quote_for_message, sanitize
from grimc.options import CompileOptions
from grimc.progress import progress
from grimc.runner import PROFILE_FLAG, ExeModel, RunStats, write_sources
from grimc.target import resolve_target

RTOL, ATOL = 1e-4, 1e-5


EMIT_KINDS = ("ir", "c", "obj", "so", "exe")
SUFFIX_TO_EMIT = {".mlir": "ir", ".c": "c", ".o": "obj", ".so": "so"}


def emit_kind_for(output: Path | None) -> str:
    """The artifact an output file name asks for (no output: IR on stdout)."""
    if output is None:
        return "ir"
    return SUFFIX_TO_EMIT.get(output.suffix, "exe")


def prefix_for(output: Path) -> str:
    """The C prefix of the generated API for an output file (`net.c` -> `net`)."""
    return sanitize(output.name.split(".")[0], "model")


def write_artifacts(
    gen: GeneratedModel, output: Path, kind: str, options: CompileOptions
) -> list[Path]:
    """Write generated C beside `output` and (obj/so/exe) build it; returns the files written.

    A full or read-only file system is one line naming `output` (nothing is left
    behind); an `output` that is the model's own header or blob is refused."""
    companions = {f"{gen.prefix}.h": "header", f"{gen.prefix}.weights.bin": "weight blob"}
    if output.name in companions:
        raise GrimcError(
            f"{output}: the {kind} output would overwrite the model's {companions[output.name]} "
            "of the same name; choose another -o"
        )
    try:
        return _build_and_move(gen, output, kind, options)
    except OSError as exc:
        raise cannot_write(output, exc) from None


def _build_and_move(
    gen: GeneratedModel, output: Path, kind: str, options: CompileOptions
) -> list[Path]:
    from grimc import toolchain

    spec = resolve_target(gen.target)
    opt_level = options.opt_level
    extra_flags = [PROFILE_FLAG] if options.profile else []
    with (
        progress(1, "build") as bar,
        tempfile.TemporaryDirectory(dir=output.parent, prefix=".grimc-") as tmp,
    ):
        if kind != "c":
            bar.step(f"clang -O{opt_level} {kind} for {spec.name}")
        work = Path(tmp)
        c_path, h_path, blob_path = write_sources(gen, work)
        produced = {h_path: h_path.name, blob_path: blob_path.name}
        if kind == "c":
            produced[c_path] = output.name
        elif kind == "obj":
            obj = work / "model.o"
            toolchain.compile_object(
                [c_path], obj, spec, opt_level=opt_level, extra_flags=extra_flags
            )
            produced[obj] = output.name
        elif kind == "so":
            lib = work / "model.so"
            toolchain.build_shared(
                [c_path], lib, spec, opt_level=opt_level, extra_flags=extra_flags
            )
            produced[lib] = output.name
        else:
            exe = work / "model.exe"
            harness = work / f"{gen.prefix}_main.c"
            harness.write_text(gen.harness)
            toolchain.build_executable(
                [c_path, harness], exe, spec, static=spec.needs_qemu, opt_level=opt_level,
                extra_flags=extra_flags,
            )
            produced[exe] = output.name
        written = []
        for src, name in produced.items():
            dest = output.parent / name
            shutil.move(src, dest)
            written.append(dest)
    return written


@dataclass
class CompiledRun:
    gen: GeneratedModel
    inputs: list[np.ndarray]
    outputs: list[np.ndarray]
    stats: RunStats
    reference: list[np.ndarray] | None = None

    @property
    def max_abs_error(self) -> float:
        assert self.reference is not None
        # NaN at the same position in both counts as equal (0), as in `matches`.
        return max(
            float(np.max(np.abs(np.where(np.isnan(o) & np.isnan(r), 0, o - r)))) if o.size else 0.0
            for o, r in zip(self.outputs, self.reference, strict=True)
        )

    @property
    def matches(self) -> bool:
        assert self.reference is not None
        return all(
            np.allclose(o, r, rtol=RTOL, atol=ATOL, equal_nan=True)
            for o, r in zip(self.outputs, self.reference, strict=True)
        )

    def check_report(self) -> str:
        verdict = "OK" if self.matches else "MISMATCH"
        return (
            f"onnxruntime check: {verdict} (max abs error {self.max_abs_error:.3g}, "
            f"tolerance rtol {RTOL:g} atol {ATOL:g})"
        )


def input_names(
    source: ModelSource, gen: GeneratedModel, options: CompileOptions | None = None
) -> list[str]:
    """The names users give inputs by: the original ONNX names for an ONNX file
    (IR names are sanitized, so `a.b` and `a_b` may collide), else the IR's names.
    Inputs the options fix at compile time (`input_values`) are none of them."""
    if not isinstance(source, str | os.PathLike) or str(source).endswith(".mlir"):
        return [d.name for d in gen.inputs]
    from grimc.frontend.load import input_names as onnx_input_names

    fixed = [v.name for v in options.input_values] if options is not None else []
    return onnx_input_names(source, fixed)


def make_inputs(
    gen: GeneratedModel, given: Mapping[str, Path], seed: int, names: Sequence[str]
) -> list[np.ndarray]:
    """Inputs from .npy files by name (`names`, one per input), else seeded random:
    standard normal floats, integers uniform in an index input's valid range."""
    wanted = dict(given)
    unknown = set(wanted) - set(names)
    if unknown:
        listed = ", ".join(quote_for_message(n) for n in names)
        raise GrimcError(
            f"--input {quote_for_message(sorted(unknown)[0])}: no such input; inputs are {listed}"
        )
    rng = np.random.default_rng(seed)
    arrays = []
    for name, desc in zip(names, gen.inputs, strict=True):
        if name in wanted:
            try:
                arr = np.load(wanted[name], allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise GrimcError(f"{wanted[name]}: cannot read .npy ({exc})") from None
            if tuple(arr.shape) != tuple(desc.shape):
                raise GrimcError(
                    f"{wanted[name]}: shape {list(arr.shape)}, input {quote_for_message(name)} "
                    f"needs {list(desc.shape)}"
                )
            kinds = "b" if desc.dtype == "bool" else "iuf"
            typed = arr.astype(desc.dtype) if arr.dtype.kind in kinds else None
            if desc.bounds is not None and (
                arr.dtype.kind not in kinds.replace("f", "") or not np.array_equal(typed, arr)
            ):
                raise GrimcError(
                    f"{wanted[name]}: dtype {arr.dtype}, input {quote_for_message(name)} "
                    f"needs {desc.dtype} {'values' if desc.dtype == 'bool' else 'integers'}"
                )
            arrays.append(typed if typed is not None else arr.astype(np.float32))
        elif desc.bounds is not None:
            arrays.append(rng.integers(*desc.bounds, size=desc.shape, dtype=desc.dtype))
        else:
            arrays.append(rng.standard_normal(desc.shape).astype(np.float32))
    return arrays


ORT_MISSING = (
    "--check needs onnxruntime, which is not installed: "
    "pip install onnxruntime (or pip install 'grimc[check]')"
)


def require_onnxruntime():
    """The onnxruntime module, or a one-line error saying how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise GrimcError(ORT_MISSING) from None
    return onnxruntime


def onnxruntime_reference(
    model: str | bytes, inputs: list[np.ndarray], fixed: Mapping[str, np.ndarray] | None = None
) -> list[np.ndarray]:
    """Run the original ONNX model (a path or its serialized bytes) in onnxruntime
    (1 thread) on the same inputs; `fixed` are the compile-time input values, fed
    in the inputs' own dtypes."""
    ort = require_onnxruntime()

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    fixed = fixed or {}
    runtime = [i for i in sess.get_inputs() if i.name not in fixed]
    feeds = {i.name: x for i, x in zip(runtime, inputs, strict=True)}
    for i in [*sess.get_inputs(), *sess.get_overridable_initializers()]:
        if i.name in fixed:
            feeds[i.name] = _ort_value(fixed[i.name], i.type, i.shape)
    return [np.asarray(y) for y in sess.run(None, feeds)]


ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int16)": np.int16,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


def _ort_value(value: np.ndarray, ort_type: str, shape: Sequence[object]) -> np.ndarray:
    """A compile-time input value as onnxruntime takes it (the importer has checked it)."""
    static = all(isinstance(d, int) for d in shape)
    array = value.astype(ORT_DTYPES[ort_type])
    return array.reshape(list(shape)) if static else array  # type: ignore[arg-type]


def run_compiled(
    source: ModelSource,
    options: CompileOptions,
    given: Mapping[str, Path],
    seed: int = 0,
    repeat: int = 1,
    check: bool = False,
) -> CompiledRun:
    """Compile `source`, build the harness, run it `repeat` times after warm-up.

    `given` maps input names to .npy files (the rest get seeded random data);
    `check` runs the .onnx model in onnxruntime on the same inputs; the harness
    runs on `options.device` (grimc.device) when one is given.
    """
    if check:
        if not str(source).endswith(".onnx"):
            raise GrimcError("--check needs an .onnx model to run in onnxruntime")
        require_onnxruntime()  # before minutes of compiling
    device = parse_device(options.device) if options.device is not None else None
    if device is not None:
        device.check()
    with progress(3, "run") as bar:
        bar.step("compile")
        gen = compile_model(source, options)
        inputs = make_inputs(gen, given, seed, input_names(source, gen, options))
        with tempfile.TemporaryDirectory(prefix="grimc-run-") as tmp:
            bar.step(f"clang -O3 harness for {gen.target}")
            exe = ExeModel.build(
                gen, Path(tmp), target=gen.target, threads=options.threads,
                profile=options.profile, device=device,
            )
            bar.step(f"run on {device.spec if device else 'this machine'}: warm-up + {repeat}")
            outputs, stats = exe.run_with_stats(inputs, repeat=repeat)
    run = CompiledRun(gen, inputs, outputs, stats)
    if check:
        run.reference = onnxruntime_reference(str(source), inputs, options.values)
    return run
