"""The Python API of the compiler: ONNX in, C (or a runnable model) out.

    from grimc.driver import compile_model, build_model
    gen = compile_model("model.onnx", target="host")           # GeneratedModel
    with build_model("model.onnx", workdir, threads=2) as m:    # HostModel / ExeModel
        y = m.run([x])
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import onnx
from xdsl.dialects.builtin import ModuleOp

from grimc.artifacts import kernel_format
from grimc.emit.codegen import GeneratedModel, generate
from grimc.emit.targets import emit_target
from grimc.errors import GrimcError
from grimc.names import sanitize
from grimc.pipeline import GRAPH_PIPELINE, Instrumentation, PipelineRunner

ModelSource = str | os.PathLike[str] | bytes | onnx.ModelProto | ModuleOp


def import_model(
    source: ModelSource, input_shapes: Mapping[str, Sequence[int]] | None = None
) -> ModuleOp:
    """A graph-dialect module from an ONNX model (path, bytes, proto) or IR file."""
    if isinstance(source, ModuleOp):
        return source
    if isinstance(source, str | os.PathLike) and str(source).endswith(".mlir"):
        from grimc.opt import parse_mlir_file

        return parse_mlir_file(Path(source))
    from grimc.frontend import import_onnx

    return import_onnx(source, input_shapes=input_shapes)


SPARSE_FORMATS = ("bcr", "csr", "dense")
_REGISTERS = {"host": 16, "host-avx512": 32, "aarch64": 32, "generic": 16}


def default_passes(target: str = "host", threads: int = 1, sparse_format: str = "bcr") -> list[str]:
    """The default pipeline: graph clean-up, then (unless dense) BCR detection,
    reordering balanced for `threads`, and register blocking for `target`.

    Recurrent ops (GRU/LSTM/RNN) with BCR-sparse W or R become bcr.gru /
    bcr.lstm / bcr.rnn too (kernels in grimc/emit/kernels/bcr_recurrent.py).
    """
    if sparse_format not in SPARSE_FORMATS:
        raise GrimcError(
            f"--sparse-format {sparse_format}: expected one of {', '.join(SPARSE_FORMATS)}"
        )
    if sparse_format == "dense":
        return list(GRAPH_PIPELINE)
    spec = emit_target(target)
    return [
        *GRAPH_PIPELINE,
        "bcr-detect",
        f"bcr-reorder{{threads={threads}}}",
        f"bcr-rle{{registers={_REGISTERS[spec.name]} vector-width={spec.vw}}}",
    ]


def optimize(
    module: ModuleOp,
    passes: Sequence[str] | None = None,
    instrumentation: Instrumentation | None = None,
    target: str = "host",
    threads: int = 1,
    sparse_format: str = "bcr",
) -> ModuleOp:
    """Run the pass pipeline (default: `default_passes`) in place."""
    names = default_passes(target, threads, sparse_format) if passes is None else list(passes)
    return PipelineRunner(instrumentation).run(module, names)


def compile_model(
    source: ModelSource,
    target: str = "host",
    threads: int = 1,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    passes: Sequence[str] | None = None,
    instrumentation: Instrumentation | None = None,
    prefix: str = "grimc_model",
    sparse_format: str = "bcr",
) -> GeneratedModel:
    """Import, optimize and generate C for `target` (host, host-avx512, aarch64, generic).

    `sparse_format`: "bcr" (default: BCR-sparse layers run register-blocked
    sparse kernels), "csr" (the CSR baseline kernels) or "dense" (ignore sparsity).
    """
    spec = emit_target(target)
    module = optimize(
        import_model(source, input_shapes), passes, instrumentation, target, threads, sparse_format
    )
    return generate(
        module, spec, threads=threads, prefix=sanitize(prefix, "model"),
        sparse_format=kernel_format(sparse_format),
        release_weights=not isinstance(source, ModuleOp),  # the module is ours alone
    )


def build_model(
    source: ModelSource | GeneratedModel,
    workdir: Path,
    target: str = "host",
    threads: int = 1,
    **options: Any,
):
    """Compile and build a runnable model: a HostModel (in-process, host
    targets) or an ExeModel (harness executable, under qemu for aarch64)."""
    from grimc.runner import ExeModel, HostModel

    gen = source if isinstance(source, GeneratedModel) else compile_model(
        source, target=target, threads=threads, **options
    )
    if target == "aarch64":
        return ExeModel.build(gen, Path(workdir), target=target, threads=threads)
    return HostModel.build(gen, Path(workdir), threads=threads, target=target)
