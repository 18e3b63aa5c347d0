"""The Python API of the compiler: ONNX in, C (or a runnable model) out.

    from grimc.driver import CompileOptions, compile_model, build_model
    opts = CompileOptions(threads=2)                         # target: native (detected)
    gen = compile_model("model.onnx", opts)                  # GeneratedModel
    gen = compile_model("model.onnx", target="aarch64")      # same, fields as keywords
    with build_model("model.onnx", "build", opts) as m:      # HostModel / ExeModel
        y = m.run([x])

Every entry point takes a `CompileOptions` and/or its fields as keywords
(keywords override the options). The CLI, the ONNX backend, the runner and the
benches all compile through `compile_model` (or its steps `import_model`,
`optimize`, `generate_model`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import onnx
from xdsl.dialects.builtin import ModuleOp

from grimc.dialects.sched import module_target_or
from grimc.emit.codegen import GeneratedModel, generate
from grimc.emit.opencl.codegen import generate_opencl
from grimc.errors import GrimcError
from grimc.options import (
    IR_HAS_NO_INPUT_VALUES,
    SPARSE_FORMATS,
    CompileOptions,
    check_precision,
    shape_map,
    value_map,
)
from grimc.pipeline import GRAPH_PIPELINE, Instrumentation, PipelineRunner
from grimc.target import resolve_target
from grimc.transforms.schedule_select import select_schedules

__all__ = [
    "SPARSE_FORMATS",
    "CompileOptions",
    "ModelSource",
    "build_model",
    "compile_model",
    "default_passes",
    "generate_model",
    "import_model",
    "optimize",
]

ModelSource = str | os.PathLike[str] | bytes | onnx.ModelProto | ModuleOp


def import_model(
    source: ModelSource, input_shapes: Any = None, input_values: Any = None
) -> ModuleOp:
    """A graph-dialect module from an ONNX model (path, bytes, proto) or IR file.

    `input_shapes`: a mapping name -> dims (or CompileOptions.input_shapes);
    `input_values`: a mapping name -> value (or CompileOptions.input_values),
    inputs fixed at compile time (an IR file has none left to fix).
    """
    values = value_map(input_values)
    is_ir = is_ir_file(source)
    if values and (is_ir or isinstance(source, ModuleOp)):
        raise GrimcError(IR_HAS_NO_INPUT_VALUES)
    if isinstance(source, ModuleOp):
        return source
    if is_ir:
        from grimc.opt import parse_mlir_file

        return parse_mlir_file(Path(source))
    from grimc.frontend import import_onnx

    return import_onnx(source, input_shapes=shape_map(input_shapes), input_values=values)


def is_ir_file(source: ModelSource) -> bool:
    """A grimc IR file (.mlir), which may record its target."""
    return isinstance(source, str | os.PathLike) and str(source).endswith(".mlir")


def check_source_options(source: ModelSource, options: CompileOptions) -> None:
    """Refuse, before importing `source`, options its target cannot take: without
    `target` an ONNX model compiles for native (an IR file's own target is
    checked when `optimize` reads it)."""
    if options.target is None and not isinstance(source, ModuleOp) and not is_ir_file(source):
        check_precision(options.precision, resolve_target("native").family)


def default_passes(options: CompileOptions | None = None, **fields: Any) -> list[str]:
    """The default pipeline: graph clean-up, then (unless dense) BCR detection and
    reordering balanced for `threads`, then every kernel's schedule for the
    module's target (schedule-select), then the measured ones of the tuning
    database (schedule-apply-tuned), if it has any.

    Recurrent ops (GRU/LSTM/RNN) with BCR-sparse W or R become bcr.gru /
    bcr.lstm / bcr.rnn too (kernels in grimc/emit/kernels/bcr_recurrent.py).
    """
    opts = CompileOptions.of(options, **fields)
    select = [
        f"schedule-select{{threads={opts.threads} sparse-format={opts.kernel_format}}}",
        *tuned_passes(opts),
    ]
    if opts.sparse_format == "dense":
        return [*GRAPH_PIPELINE, *select]
    return [*GRAPH_PIPELINE, "bcr-detect", f"bcr-reorder{{threads={opts.threads}}}", *select]


def tuned_passes(opts: CompileOptions) -> list[str]:
    """schedule-apply-tuned when the compile uses a tuning database that exists
    (docs/tuning.md); an explicit `tuning_db` that does not exist is an error."""
    from grimc.tunedb import default_path

    if not opts.use_tuning_db:
        return []
    path = Path(opts.tuning_db) if opts.tuning_db is not None else default_path()
    if not path.is_file():
        if opts.tuning_db is not None:
            raise GrimcError(f"--tuning-db {path}: no such file (create it with grimc tune)")
        return []
    device = f' device="{opts.device}"' if opts.device is not None else ""
    precision = f' precision="{opts.precision}"' if opts.precision != "fp32" else ""
    return [f'schedule-apply-tuned{{db="{path}" threads={opts.threads}{device}{precision}}}']


def pipeline_of(options: CompileOptions) -> list[str]:
    """The passes a compile with `options` runs: its explicit list, else the default."""
    return default_passes(options) if options.passes is None else list(options.passes)


def optimize(
    module: ModuleOp,
    options: CompileOptions | None = None,
    instrumentation: Instrumentation | None = None,
    **fields: Any,
) -> ModuleOp:
    """Record the options' target on `module` (one it already records must be
    the same), then run the pass pipeline of `options` on it, in place."""
    opts = CompileOptions.of(options, **fields)
    check_precision(opts.precision, module_target_or(module, opts.target).family)
    return PipelineRunner(instrumentation).run(module, pipeline_of(opts))


def generate_model(
    module: ModuleOp,
    options: CompileOptions | None = None,
    *,
    release_weights: bool = False,
    **fields: Any,
) -> GeneratedModel:
    """Generate C for an optimized module (the last step of `compile_model`).

    Ops a pipeline left unscheduled (a `--passes` list without schedule-select,
    a module built by hand) get schedule-select's choice first, on a copy:
    `module` is left as it is, except that `release_weights` (for callers that
    drop the module afterwards) lets code generation empty its weight store as
    the weights are packed, so a large model is not held twice.
    """
    opts = CompileOptions.of(options, **fields)
    module = module.clone()
    target = module_target_or(module, opts.target)
    check_precision(opts.precision, target.family)
    select_schedules(module, target, opts.threads, opts.kernel_format)
    if target.family == "opencl":
        return generate_opencl(module, target, prefix=opts.prefix, precision=opts.precision)
    return generate(
        module, target, threads=opts.threads, prefix=opts.prefix,
        sparse_format=opts.kernel_format, release_weights=release_weights,
    )


def compile_model(
    source: ModelSource,
    options: CompileOptions | None = None,
    *,
    instrumentation: Instrumentation | None = None,
    **fields: Any,
) -> GeneratedModel:
    """Import, optimize and generate C: the one compile entry point.

    `fields` are CompileOptions fields (target, threads, sparse_format,
    input_shapes, input_values, passes, opt_level, prefix, profile, precision) overriding `options`.
    """
    opts = CompileOptions.of(options, **fields)
    check_source_options(source, opts)
    module = optimize(
        import_model(source, opts.input_shapes, opts.input_values), opts, instrumentation
    )
    return generate_model(module, opts, release_weights=not isinstance(source, ModuleOp))


def build_model(
    source: ModelSource | GeneratedModel,
    workdir: str | os.PathLike[str],
    options: CompileOptions | None = None,
    **fields: Any,
):
    """Compile and build a runnable model: a HostModel (in-process, for targets
    this machine runs) or an ExeModel (harness executable, under qemu for aarch64)."""
    from grimc.runner import ExeModel, HostModel

    opts = CompileOptions.of(options, **fields)
    gen = source if isinstance(source, GeneratedModel) else compile_model(source, opts)
    if not resolve_target(gen.target).runs_natively:
        return ExeModel.build(
            gen, Path(workdir), target=gen.target, threads=opts.threads, profile=opts.profile
        )
    return HostModel.build(
        gen, Path(workdir), threads=opts.threads, target=gen.target, profile=opts.profile
    )
