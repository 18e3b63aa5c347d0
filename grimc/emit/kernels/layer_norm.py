"""`graph.layer_norm`: rows of N = prod(x dims from axis) normalized in two
passes (mean, then the variance of x - mean, which keeps precision when the
mean is large), gv_* vectors over each row; rows are split over tasks as the
op's `#sched.split` says."""

from __future__ import annotations

import math

from grimc.dialects import graph
from grimc.dialects.sched import split_of
from grimc.emit.kernel import ActRef, KernelInstance, LoweringContext, Ref, lowers, shape


def layer_norm_args(
    op: graph.LayerNormOp, ctx: LoweringContext
) -> tuple[int, int, list[tuple[str, Ref]], list[tuple[str, ActRef]]]:
    """(rows, n, inputs, outputs) of a layer-norm kernel on any target: rows of n
    elements; x, g (scale), b (bias, if any); y, mean, inv_std."""
    dims, axis = shape(op.x), op.axis.value.data
    inputs = [("x", ctx.operand(op.x)), ("g", ctx.operand(op.scale))]
    if op.bias is not None:
        inputs.append(("b", ctx.operand(op.bias)))
    outputs = [("y", ctx.result(op.y)), ("mean", ctx.result(op.mean)), ("inv_std", ctx.result(op.inv_std))]
    return math.prod(dims[:axis]), math.prod(dims[axis:]), inputs, outputs


@lowers(graph.LayerNormOp)
def lower_layer_norm(op: graph.LayerNormOp, ctx: LoweringContext) -> KernelInstance:
    rows, n, inputs, outputs = layer_norm_args(op, ctx)
    return KernelInstance(
        kind="layer_norm",
        params={
            "rows": rows,
            "n": n,
            "eps": op.epsilon.value.data,
            "ntasks": split_of(op, "rows").threads.data,
        },
        inputs=inputs,
        outputs=outputs,
        flops=8 * rows * n,
    )
