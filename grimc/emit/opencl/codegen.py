"""IR -> one C host file with the OpenCL kernels embedded, same C API as the CPU targets.

The shared `Generator` walks the IR, plans buffers and liveness and fills the
weight blob; here ops lower through `CL_LOWERINGS` and the result renders
`templates/opencl/model.c.j2`: the host runtime (runtime_c, incl. opencl.c)
inlined, every distinct kernel source as a string, and per kernel its build
options and NDRange. `<prefix>_create/run/destroy` behave as for CPU targets,
so `HostModel` runs the library unchanged (link it with -lOpenCL).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from dataclasses import dataclass

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from grimc.emit import opencl as opencl_pkg
from grimc.emit.codegen import (
    RUNTIME_FILES,
    GeneratedModel,
    Generator,
    TensorDesc,
    _jinja_env,
    build_commands,
    runtime_source,
)
from grimc.emit.kernel import CodegenError, KernelInstance
from grimc.emit.opencl.lowering import CL_LOWERINGS, build_options
from grimc.names import quote_for_message
from grimc.options import check_precision
from grimc.target import TARGETS, Target

RUNTIME_EXTRA = ("include/grimc_opencl.h", "src/opencl.c")


def _load_lowerings() -> None:
    """Import every module of grimc/emit/opencl so their @cl_lowers run."""
    for info in pkgutil.iter_modules(opencl_pkg.__path__):
        importlib.import_module(f"{opencl_pkg.__name__}.{info.name}")


def c_string(text: str) -> str:
    """`text` as a C string literal, one source line per literal piece."""
    lines = text.splitlines(keepends=True) or [""]
    return "\n".join(json.dumps(line) for line in lines)


@dataclass
class ClProgram:
    """One kernel's program: index of its source text and its build options."""

    source: int
    options: str


def cl_programs(kernels: list[KernelInstance], precision: str) -> tuple[list[str], list[ClProgram]]:
    """The distinct kernel source texts and, per kernel, its source and build options."""
    env = _jinja_env()
    sources: list[str] = []
    programs = []
    for k in kernels:
        text = env.get_template(f"opencl/{k.kind}.cl.j2").render(k=k, p=k.params)
        if text not in sources:
            sources.append(text)
        options = build_options(k, precision != "fp32", precision == "fp16")
        programs.append(ClProgram(sources.index(text), options))
    return sources, programs


class ClGenerator(Generator):
    """The shared generator with OpenCL lowerings and the OpenCL model template."""

    lowerings = CL_LOWERINGS

    def __init__(self, module: ModuleOp, target: Target, prefix: str, precision: str):
        check_precision(precision, target.family)
        super().__init__(module, target, 1, prefix)
        self.precision = precision
        self.half = precision != "fp32"
        self.native_half = precision == "fp16"

    def run(self) -> GeneratedModel:
        _load_lowerings()
        return super().run()

    def _render(self, inputs: list[TensorDesc], outputs: list[TensorDesc]) -> GeneratedModel:
        typed = next((d for d in inputs if d.dtype != "float32"), None)
        if typed is not None:  # the OpenCL host code takes float32 inputs only
            raise CodegenError(
                f"input {quote_for_message(typed.name)} is {typed.dtype}: --target opencl takes "
                f"float32 inputs at run time; give it a compile-time value with --input-value "
                f"or compile for a CPU target"
            )
        env = _jinja_env()
        sources, programs = cl_programs(self.kernels, self.precision)
        common = self._common(inputs, outputs)
        source = env.get_template("opencl/model.c.j2").render(
            runtime=runtime_source(RUNTIME_FILES + RUNTIME_EXTRA),
            build=build_commands(self.target.name, self.prefix),
            cl_sources=[c_string(s) for s in sources],
            programs=programs,
            half=self.half,
            native_half=self.native_half,
            blob_float=[a.dtype == np.float32 for a in self.ctx.blobs],
            **common,
        )
        return self._model(env, source, common)


def generate_opencl(
    module: ModuleOp,
    target: Target | None = None,
    prefix: str = "grimc_model",
    precision: str = "fp32",
) -> GeneratedModel:
    """Lower a scheduled graph-/bcr-dialect module to a C host file running OpenCL
    kernels; `target` defaults to the `opencl` Target."""
    return ClGenerator(module, target or TARGETS["opencl"], prefix, precision).run()


def device_name(model) -> str:
    """'<platform> | <device>' an OpenCL model (a loaded HostModel) runs on."""
    import ctypes

    fn = getattr(model._lib, f"{model.gen.prefix}_device")
    fn.argtypes, fn.restype = [ctypes.c_void_p], ctypes.c_char_p
    return fn(model._handle).decode()
