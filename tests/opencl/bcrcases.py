"""The CPU BCR kernel tests' cases (tests/kernels/test_bcr_kernels.py) as (module, inputs, reference).

The same random BCR weights (per-block kept rows/columns, empty blocks, row
permutations), packed to BCRC as bcr-detect stores them, and the same
float64 references; here they run through the OpenCL lowering instead.
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from grimc.dialects.bcr import MatMulOp
from grimc.dialects.graph import ActivationAttr
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
from grimc.weights import WeightStore
from tests.kernels.test_bcr_kernels import (
    ACTS,
    CONV_CASES,
    MATMUL_CASES,
    ConvCase,
    MatMulCase,
    Sparsity,
    bcr_weight,
    build_conv,
    conv_cases,
    conv_reference,
    matmul_cases,
    module_of,
    packed_weight,
)

__all__ = ["CONV_CASES", "MATMUL_CASES", "ConvCase", "MatMulCase", "Sparsity", "conv_cases",
           "matmul_cases", "conv_case", "matmul_case", "opencl_model"]  # fmt: skip

Case = tuple[ModuleOp, list[np.ndarray], np.ndarray]


def matmul_case(c: MatMulCase, rng: np.random.Generator) -> Case:
    store = WeightStore()
    w, perm = bcr_weight(rng, c.m, c.k, c.sparsity)
    prefix, enc = packed_weight(store, [(w, perm)], c.sparsity.block, None)
    bias = rng.standard_normal(c.m).astype(np.float32) if c.bias else None
    act = None if c.act is None else ActivationAttr(c.act, (0.0, 6.0) if c.act == "clip" else ())
    module = module_of(
        store, (*c.lead, c.k), (*c.lead, c.m),
        lambda x, b, res: MatMulOp(x, prefix, enc, b, residual=res, act=act), c.residual, bias,
    )  # fmt: skip
    x = rng.standard_normal((*c.lead, c.k)).astype(np.float32)
    want = x.astype(np.float64) @ w.T.astype(np.float64)
    if bias is not None:
        want = want + bias
    inputs = [x]
    if c.residual:
        inputs.append(rng.standard_normal(want.shape).astype(np.float32))
        want = want + inputs[1]
    return module, inputs, ACTS[c.act](want)


def conv_case(c: ConvCase, rng: np.random.Generator) -> Case:
    module, w, b = build_conv(c, rng)
    x = rng.standard_normal((c.n, c.cin, c.h, c.w)).astype(np.float32)
    want = conv_reference(c, x, w, b)
    inputs = [x]
    if c.residual:
        inputs.append(rng.standard_normal(want.shape).astype(np.float32))
        want = want + inputs[1]
    return module, inputs, ACTS[c.act](want)


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
