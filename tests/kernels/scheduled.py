"""`generate` for kernel tests: schedule what a hand-built module leaves unscheduled.

Code generation only reads schedules (`grimc.emit.codegen.generate`); the
driver runs schedule-select for ops a pipeline left without one, on a copy.
"""

from __future__ import annotations

from xdsl.dialects.builtin import ModuleOp

from grimc.driver import generate_model
from grimc.emit.codegen import GeneratedModel
from grimc.target import Target


def generate(
    module: ModuleOp,
    target: str | Target | None = None,
    threads: int = 1,
    prefix: str = "grimc_model",
    sparse_format: str = "bcr",
) -> GeneratedModel:
    """`module` lowered for `target` with schedule-select's choice for unscheduled ops."""
    return generate_model(
        module, target=target, threads=threads, prefix=prefix, sparse_format=sparse_format
    )
