"""ReduceMax/Min/Sum/Mean and GlobalMaxPool -> `graph.reduce`;
LayerNormalization -> `graph.layer_norm`.

Axes come from the attribute (older opsets) or the constant `axes` input
(ReduceSum from opset 13, all of them from 18); no axes means all axes unless
noop_with_empty_axes = 1, which makes the op the identity.
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import StringAttr

from grimc.dialects.graph import LayerNormOp, ReduceOp, f32_attr, i64_array, i64_attr, reduced_shape
from grimc.frontend.context import NodeContext, Value, build, converter, normalize_axis

REDUCTIONS = {"ReduceMax": "max", "ReduceMin": "min", "ReduceSum": "sum", "ReduceMean": "mean"}


def _reduce(ctx: NodeContext, kind: str, axes: tuple[int, ...], keepdims: bool) -> Value:
    x = ctx.value(0)
    props = {"kind": StringAttr(kind), "axes": i64_array(axes), "keepdims": i64_attr(int(keepdims))}
    out = reduced_shape(ctx.shape(0), axes, keepdims)
    return ctx.emit(build(ReduceOp, {"x": x}, {"y": out}, props)).y


@converter(*REDUCTIONS)
def reduce(ctx: NodeContext) -> list[Value]:
    rank = len(ctx.shape(0))
    if ctx.has_attr("axes"):
        axes = ctx.ints_attr("axes")
    elif ctx.has_input(1):
        axes = ctx.int_const(1, "axes")
    else:
        axes = ()
    if not axes:
        if ctx.int_attr("noop_with_empty_axes", 0) or rank == 0:  # a scalar reduces to itself
            return [ctx.value(0)]
        axes = tuple(range(rank))
    normalized = tuple(sorted({normalize_axis(ctx, a, rank) for a in axes}))
    return [_reduce(ctx, REDUCTIONS[ctx.node.op_type], normalized, bool(ctx.int_attr("keepdims", 1)))]


@converter("GlobalMaxPool")
def global_max_pool(ctx: NodeContext) -> list[Value]:
    rank = len(ctx.shape(0))
    if rank < 3:
        raise ctx.fail("input must have spatial axes")
    return [_reduce(ctx, "max", tuple(range(2, rank)), True)]


@converter("LayerNormalization")
def layer_norm(ctx: NodeContext) -> list[Value]:
    """Scale and bias broadcast to the normalized dims (constants are expanded here)."""
    dims = ctx.shape(0)
    axis = normalize_axis(ctx, ctx.int_attr("axis", -1), len(dims))
    trailing = dims[axis:]
    operands = {"x": ctx.value(0)}
    for index, name in ((1, "scale"), (2, "bias")):
        if not ctx.has_input(index):
            continue
        if ctx.is_const(index):
            array = ctx.float_const(index, name)
            try:
                array = np.ascontiguousarray(np.broadcast_to(array, trailing), dtype=np.float32)
            except ValueError:
                raise ctx.fail(f"{name} {list(array.shape)} does not broadcast to {list(trailing)}") from None
            operands[name] = ctx.new_weight(index, array)
        elif ctx.shape(index) == trailing:
            operands[name] = ctx.value(index)
        else:
            raise ctx.fail(f"a run-time {name} must have shape {list(trailing)}")
    stats = (*dims[:axis], *[1] * (len(dims) - axis))
    props = {"axis": i64_attr(axis), "epsilon": f32_attr(ctx.float_attr("epsilon", 1e-5))}
    op = ctx.emit(build(LayerNormOp, operands, {"y": dims, "mean": stats, "inv_std": stats}, props))
    return [op.y, op.mean, op.inv_std]
