"""ReduceMax/Min/Sum/Mean and GlobalMaxPool -> `graph.reduce`.

Axes come from the attribute (older opsets) or the constant `axes` input
(ReduceSum from opset 13, all of them from 18); no axes means all axes unless
noop_with_empty_axes = 1, which makes the op the identity.
"""

from __future__ import annotations

from xdsl.dialects.builtin import StringAttr

from grimc.dialects.graph import ReduceOp, i64_array, i64_attr, reduced_shape
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
        if ctx.int_attr("noop_with_empty_axes", 0):
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
