"""What the CLI writes and runs: C/obj/so/exe artifacts, and compiled runs.

All files of one compilation are produced in a temporary directory and moved
into place only when everything succeeded, so a failure leaves nothing behind.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from grimc.emit.codegen import GeneratedModel, generate
from grimc.emit.targets import emit_target
from grimc.errors import GrimcError, cannot_write
from grimc.names import quote_for_message, sanitize
from grimc.runner import ExeModel, RunStats, write_sources

RTOL, ATOL = 1e-4, 1e-5


def kernel_format(sparse_format: str) -> str:
    """The sparse kernels for a --sparse-format (dense modules have no bcr ops)."""
    return "csr" if sparse_format == "csr" else "bcr"


def write_artifacts(
    module: ModuleOp,
    output: Path,
    kind: str,
    target: str,
    threads: int,
    opt_level: str,
    sparse_format: str = "bcr",
) -> list[Path]:
    """Generate and (for obj/so/exe) build; returns the files written."""
    from grimc import toolchain

    prefix = sanitize(output.name.split(".")[0], "model")
    companions = {f"{prefix}.h": "header", f"{prefix}.weights.bin": "weight blob"}
    if output.name in companions:
        raise GrimcError(
            f"{output}: the {kind} output would overwrite the model's {companions[output.name]} "
            "of the same name; choose another -o"
        )
    gen = generate(
        module, emit_target(target), threads=threads, prefix=prefix,
        sparse_format=kernel_format(sparse_format), release_weights=True,
    )
    spec = toolchain.resolve_target(target)
    try:
        return _build_and_move(gen, output, kind, spec, opt_level, prefix)
    except OSError as exc:
        raise cannot_write(output, exc) from None


def _build_and_move(
    gen: GeneratedModel, output: Path, kind: str, spec, opt_level: str, prefix: str
) -> list[Path]:
    from grimc import toolchain

    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".grimc-") as tmp:
        work = Path(tmp)
        c_path, h_path, blob_path = write_sources(gen, work)
        produced = {h_path: h_path.name, blob_path: blob_path.name}
        if kind == "c":
            produced[c_path] = output.name
        elif kind == "obj":
            obj = work / "model.o"
            toolchain.compile_object([c_path], obj, spec, opt_level=opt_level)
            produced[obj] = output.name
        elif kind == "so":
            lib = work / "model.so"
            toolchain.build_shared([c_path], lib, spec, opt_level=opt_level)
            produced[lib] = output.name
        else:
            exe = work / "model.exe"
            harness = work / f"{prefix}_main.c"
            harness.write_text(gen.harness)
            toolchain.build_executable(
                [c_path, harness], exe, spec, static=spec.needs_qemu, opt_level=opt_level
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
        return max(
            float(np.max(np.abs(o - r))) if o.size else 0.0
            for o, r in zip(self.outputs, self.reference, strict=True)
        )

    @property
    def matches(self) -> bool:
        assert self.reference is not None
        return all(
            np.allclose(o, r, rtol=RTOL, atol=ATOL)
            for o, r in zip(self.outputs, self.reference, strict=True)
        )

    def check_report(self) -> str:
        verdict = "OK" if self.matches else "MISMATCH"
        return (
            f"onnxruntime check: {verdict} (max abs error {self.max_abs_error:.3g}, "
            f"tolerance rtol {RTOL:g} atol {ATOL:g})"
        )


def input_names(model_path: str, gen: GeneratedModel) -> list[str]:
    """The names users give inputs by: the original ONNX names for an ONNX model,
    else the IR's names."""
    if model_path.endswith(".mlir"):
        return [d.name for d in gen.inputs]
    from grimc.frontend.load import input_names as onnx_input_names

    return onnx_input_names(model_path)


def make_inputs(
    gen: GeneratedModel, given: Mapping[str, Path], seed: int, names: Sequence[str]
) -> list[np.ndarray]:
    """Inputs from .npy files by name (`names`, one per input), else seeded standard normal."""
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
            arrays.append(arr.astype(np.float32))
        else:
            arrays.append(rng.standard_normal(desc.shape).astype(np.float32))
    return arrays


def onnxruntime_reference(model_path: str, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Run the original ONNX model in onnxruntime (1 thread) on the same inputs."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
    feeds = {i.name: x for i, x in zip(sess.get_inputs(), inputs, strict=True)}
    return [np.asarray(y) for y in sess.run(None, feeds)]


def run_compiled(
    args: argparse.Namespace, given: Mapping[str, Path], repeat: int
) -> CompiledRun:
    """Compile args.model, build the harness, run it; check if args.check."""
    from grimc.cli import load_module
    from grimc.driver import optimize

    module = optimize(
        load_module(args.model, args.input_shape), None, None, args.target, args.threads,
        args.sparse_format,
    )
    gen = generate(
        module, emit_target(args.target), threads=args.threads,
        sparse_format=kernel_format(args.sparse_format),
    )
    inputs = make_inputs(gen, given, args.seed, input_names(args.model, gen))
    with tempfile.TemporaryDirectory(prefix="grimc-run-") as tmp:
        exe = ExeModel.build(
            gen, Path(tmp), target=args.target, threads=args.threads,
            profile=getattr(args, "profile", False),
        )
        outputs, stats = exe.run_with_stats(inputs, repeat=repeat)
    run = CompiledRun(gen, inputs, outputs, stats)
    if getattr(args, "check", False):
        if not args.model.endswith(".onnx"):
            raise GrimcError("--check needs an .onnx model to run in onnxruntime")
        run.reference = onnxruntime_reference(args.model, inputs)
    return run
