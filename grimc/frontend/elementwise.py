"""Element-wise ONNX ops: arithmetic, activations, and pure aliases."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from xdsl.ir import SSAValue

from grimc.dialects.graph import (
    AddOp,
    ClipOp,
    DivOp,
    HardSigmoidOp,
    HardSwishOp,
    LeakyReluOp,
    MaxOp,
    MinOp,
    MulOp,
    PReluOp,
    ReluOp,
    SigmoidOp,
    SoftmaxOp,
    SubOp,
    SumOp,
    TanhOp,
    UnaryOp,
    f32_attr,
    i64_attr,
    shape_of,
)
from grimc.frontend.context import NodeContext, Value, build, converter, normalize_axis
from grimc.frontend.shapes import flatten

F32_MAX = float(np.finfo(np.float32).max)
"""Stands in for +-inf in Clip bounds (absent min/max)."""

# op type -> (graph op, {attribute: ONNX default})
ACTIVATIONS: dict[str, tuple[type[UnaryOp], dict[str, float]]] = {
    "Relu": (ReluOp, {}),
    "Sigmoid": (SigmoidOp, {}),
    "Tanh": (TanhOp, {}),
    "HardSwish": (HardSwishOp, {}),
    "LeakyRelu": (LeakyReluOp, {"alpha": 0.01}),
    "HardSigmoid": (HardSigmoidOp, {"alpha": 0.2, "beta": 0.5}),
}


@converter(*ACTIVATIONS)
def activation(ctx: NodeContext) -> list[Value]:
    op_type, defaults = ACTIVATIONS[ctx.node.op_type]
    props = {name: f32_attr(ctx.float_attr(name, default)) for name, default in defaults.items()}
    return [ctx.emit(op_type(ctx.value(0), **props)).y]


@converter("Clip")
def clip(ctx: NodeContext) -> list[Value]:
    """Constant bounds: graph.clip (fusable); a run-time bound: Min(Max(x, min), max),
    which also gives ONNX's "everything is max" when min > max."""
    if any(ctx.has_input(i) and not ctx.is_const(i) for i in (1, 2)):
        y = ctx.value(0)
        if ctx.has_input(1):
            y = ctx.emit(MaxOp([y, ctx.value(1)])).y
        if ctx.has_input(2):
            y = ctx.emit(MinOp([y, ctx.value(2)])).y
        return [y]
    low = _clip_bound(ctx, "min", 1, -F32_MAX)
    high = _clip_bound(ctx, "max", 2, F32_MAX)
    if low > high:
        raise ctx.fail(f"min {low} is greater than max {high}")
    return [ctx.emit(ClipOp(ctx.value(0), min=f32_attr(low), max=f32_attr(high))).y]


def _clip_bound(ctx: NodeContext, name: str, index: int, default: float) -> float:
    """A bound from the opset<11 attribute or the opset>=11 input; inf -> float32 max."""
    if ctx.has_attr(name):
        value = ctx.attr(name)
    elif ctx.has_input(index):
        array = ctx.const(index, name)
        if array.size != 1 or array.dtype.kind not in "fiu":
            raise ctx.fail(f"{name} must be a numeric scalar")
        value = array.reshape(-1)[0]
    else:
        return default
    if not isinstance(value, int | float | np.number) or math.isnan(value):
        raise ctx.fail(f"{name} must be a number")
    return min(max(float(value), -F32_MAX), F32_MAX)


@converter("Softmax")
def softmax(ctx: NodeContext) -> list[Value]:
    """Before opset 13 Softmax flattens to 2-D at `axis` (default 1): lower that
    to flatten -> softmax(axis=1) -> reshape unless `axis` is the last one."""
    x = ctx.value(0)
    shape = shape_of(x)
    legacy = ctx.state.opset < 13
    axis = normalize_axis(ctx, ctx.int_attr("axis", 1 if legacy else -1), len(shape))
    if not legacy or axis == len(shape) - 1:
        return [_softmax(ctx, x, axis)]
    return [ctx.reshape(_softmax(ctx, flatten(ctx, x, axis), 1), shape)]


def _softmax(ctx: NodeContext, x: SSAValue, axis: int) -> SSAValue:
    return ctx.emit(build(SoftmaxOp, {"x": x}, {"y": shape_of(x)}, {"axis": i64_attr(axis)})).y


@converter("Add", "Mul")
def binary(ctx: NodeContext) -> list[Value]:
    op_type = AddOp if ctx.node.op_type == "Add" else MulOp
    return [ctx.emit(op_type(ctx.value(0), ctx.value(1))).y]


@converter("Sub", "Div")
def sub_div(ctx: NodeContext) -> list[Value]:
    """x - c -> x + (-c) and x / c -> x * (1/c) for a constant c without zeros
    (they fuse like Add/Mul); otherwise a broadcasting graph.sub / graph.div."""
    sub = ctx.node.op_type == "Sub"
    if ctx.is_const(1):
        rhs = ctx.float_const(1, "right-hand side")
        if sub:
            return [ctx.emit(AddOp(ctx.value(0), ctx.new_weight(1, -rhs))).y]
        if rhs.all():
            return [ctx.emit(MulOp(ctx.value(0), ctx.new_weight(1, np.float32(1) / rhs))).y]
    op_type = SubOp if sub else DivOp
    return [ctx.emit(op_type(ctx.value(0), ctx.value(1))).y]


@converter("Sum")
def sum_(ctx: NodeContext) -> list[Value]:
    return [ctx.emit(SumOp(ctx.values())).y]


@converter("PRelu")
def prelu(ctx: NodeContext) -> list[Value]:
    """Before opset 7 a 1-D slope of C values is per channel (axis 1); the
    version converter keeps it 1-D, so align it with the channel axis here."""
    xs, slope = ctx.shape(0), ctx.shape(1)
    if ctx.state.source_opset < 7 and len(xs) > 2 and len(slope) == 1 and slope[0] == xs[1] > 1:
        channel_slope = ctx.reshaped_input(1, (xs[1], *[1] * (len(xs) - 2)))
    else:
        channel_slope = ctx.value(1)
    return [ctx.emit(PReluOp(ctx.value(0), channel_slope)).y]


@converter("Identity")
def identity(ctx: NodeContext) -> Sequence[Value]:
    return [ctx.input(0)]


@converter("Dropout")
def dropout(ctx: NodeContext) -> Sequence[Value]:
    """Inference dropout is the identity; training mode or a used mask is an error."""
    if ctx.has_input(2) and ctx.const(2, "training_mode").any():
        raise ctx.fail("training_mode=1 is not supported")
    ctx.reject_used_outputs(1, "the dropout mask")
    return [ctx.input(0)]


@converter("Cast")
def cast(ctx: NodeContext) -> Sequence[SSAValue]:
    """Casting a float32 activation to float32 is the identity."""
    if ctx.int_attr("to") != 1:
        raise ctx.fail("only casts to float32 are supported on activations")
    return [ctx.value(0)]
