"""The BCR kernel cases (tests/kernels/bcrcases.py) for the OpenCL tests, and the
OpenCL generation they run through.

The same random BCR weights (per-block kept rows/columns, empty blocks, row
permutations), packed to BCRC as bcr-detect stores them, and the same
float64 references as the CPU kernel tests; `opencl_model` generates them for
the opencl target.
"""

from __future__ import annotations

from xdsl.dialects.builtin import ModuleOp

from grimc.dialects.sched import (
    PROJECTION_ATTR,
    SCHEDULE_ATTR,
    ClCellSchedule,
    ClLinearSchedule,
    attach_target,
)
from grimc.driver import generate_model
from grimc.emit.codegen import GeneratedModel
from grimc.transforms.schedule_select import select_schedules
from tests.kernels.bcrcases import (
    CONV_CASES,
    MATMUL_CASES,
    ConvCase,
    MatMulCase,
    Sparsity,
    conv_case,
    conv_cases,
    matmul_case,
    matmul_cases,
)

__all__ = ["CONV_CASES", "MATMUL_CASES", "ConvCase", "MatMulCase", "Sparsity", "conv_cases",
           "matmul_cases", "conv_case", "matmul_case", "opencl_model"]  # fmt: skip


def opencl_model(
    module: ModuleOp,
    precision: str = "fp32",
    cell: dict[str, int] | None = None,
    **knobs: int | str,
) -> GeneratedModel:
    """Generate `module` for the opencl target: schedule-select chooses every
    schedule, then `knobs` replace knobs of each `#sched.cl_linear` (a recurrent
    op's projection included) and `cell` of each `#sched.cl_cell`, as a tuner
    or a hand edit of the IR would."""
    attach_target(module, "opencl")
    select_schedules(module)
    for op in module.walk():
        for key in (SCHEDULE_ATTR, PROJECTION_ATTR):
            attr = op.attributes.get(key)
            if isinstance(attr, ClLinearSchedule) and knobs:
                op.attributes[key] = attr.replace(**knobs)
            elif isinstance(attr, ClCellSchedule) and cell:
                op.attributes[key] = attr.replace(**cell)
    return generate_model(module, target="opencl", precision=precision)
