"""Element-wise math ONNX ops: Exp, Log, Sqrt, Neg, Abs, Reciprocal, Erf, Gelu,
Pow, Max and Min (Sub and Div live with Add/Mul in `elementwise`), and the
comparisons and logic ops with Where.

The unary ones become the `graph` op of the same name, which also has an
activation form, so graph-fuse-activations can move it into a producer's
epilogue. Pow with a constant scalar exponent of 1, 2 or 0.5 becomes the
identity, x * x or sqrt(x); any other exponent (constant or not) is a
broadcasting `graph.pow`.

Booleans are float32 0/1 tensors inside the graph (see the graph dialect):
Equal/Less/LessOrEqual produce them (Greater and GreaterOrEqual swap the
operands), Not/And/Or/Where read them; a bool constant becomes a 0/1 weight.
A boolean graph output is refused, since the caller would get floats.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from xdsl.dialects.builtin import StringAttr
from xdsl.ir import SSAValue

from grimc.dialects.graph import (
    EXACT_INT,
    AbsOp,
    AndOp,
    BinaryOp,
    EqualOp,
    ErfOp,
    ExpOp,
    GeluOp,
    LessOp,
    LessOrEqualOp,
    LogOp,
    MaxOp,
    MinOp,
    MulOp,
    NegOp,
    NotOp,
    OrOp,
    PowOp,
    ReciprocalOp,
    SqrtOp,
    UnaryOp,
    WhereOp,
    shape_of,
)
from grimc.frontend.context import NodeContext, Value, converter

UNARY: dict[str, type[UnaryOp]] = {
    "Exp": ExpOp,
    "Log": LogOp,
    "Sqrt": SqrtOp,
    "Neg": NegOp,
    "Abs": AbsOp,
    "Reciprocal": ReciprocalOp,
    "Erf": ErfOp,
}


@converter(*UNARY)
def unary(ctx: NodeContext) -> list[Value]:
    return [ctx.emit(UNARY[ctx.node.op_type](ctx.value(0))).y]


@converter("Gelu")
def gelu(ctx: NodeContext) -> list[Value]:
    approximate = ctx.str_attr("approximate", "none")
    if approximate not in ("none", "tanh"):
        raise ctx.fail(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return [ctx.emit(GeluOp(ctx.value(0), approximate=StringAttr(approximate))).y]


@converter("Pow")
def pow_(ctx: NodeContext) -> list[Value]:
    x = ctx.value(0)
    if ctx.is_const(1):
        exponent = ctx.const(1, "exponent")
        if exponent.dtype.kind not in "fiu":
            raise ctx.fail(f"exponent has dtype {exponent.dtype}; expected a number")
        exponent = exponent.astype(np.float32)
        if exponent.size == 1 and exponent.ndim <= len(shape_of(x)):
            e = float(exponent.reshape(-1)[0])
            if e == 1.0:
                return [x]
            if e == 2.0:
                return [ctx.emit(MulOp(x, x)).y]
            if e == 0.5:
                return [ctx.emit(SqrtOp(x)).y]
        return [ctx.emit(PowOp(x, ctx.new_weight(1, exponent))).y]
    return [ctx.emit(PowOp(x, ctx.value(1))).y]


@converter("Max", "Min")
def max_min(ctx: NodeContext) -> Sequence[Value]:
    values = ctx.values()
    if len(values) == 1:
        return [values[0]]
    op_type = MaxOp if ctx.node.op_type == "Max" else MinOp
    return [ctx.emit(op_type(values)).y]


COMPARISONS: dict[str, tuple[type[BinaryOp], bool]] = {
    "Equal": (EqualOp, False),
    "Less": (LessOp, False),
    "LessOrEqual": (LessOrEqualOp, False),
    "Greater": (LessOp, True),
    "GreaterOrEqual": (LessOrEqualOp, True),
    "And": (AndOp, False),
    "Or": (OrOp, False),
}
"""ONNX op -> (graph op, operands swapped)."""


def bool_value(ctx: NodeContext, index: int) -> SSAValue:
    """Input `index` as a value; a constant bool tensor becomes a 0/1 float weight, a
    constant integer one (compared with an integer input) its values, exact in float32."""
    value = ctx.input(index)
    if isinstance(value, np.ndarray) and value.dtype.kind in "biu":
        if value.dtype.kind != "b" and np.abs(value.astype(np.int64)).max(initial=0) >= EXACT_INT:
            raise ctx.fail(f"{ctx.input_label(index)}: integers of magnitude 2^24 or more "
                           "are not exact in float32")
        return ctx.new_weight(index, value.astype(np.float32))
    return ctx.value(index)


def bool_result(ctx: NodeContext, value: SSAValue) -> list[Value]:
    if ctx.node.output[0] in ctx.state.outputs:
        raise ctx.fail("a boolean graph output is not supported (grimc computes in float32)")
    return [value]


@converter(*COMPARISONS)
def comparison(ctx: NodeContext) -> list[Value]:
    op_type, swap = COMPARISONS[ctx.node.op_type]
    lhs, rhs = bool_value(ctx, 0), bool_value(ctx, 1)
    if swap:
        lhs, rhs = rhs, lhs
    return bool_result(ctx, ctx.emit(op_type(lhs, rhs)).y)


@converter("Not")
def not_(ctx: NodeContext) -> list[Value]:
    return bool_result(ctx, ctx.emit(NotOp(bool_value(ctx, 0))).y)


@converter("Where")
def where(ctx: NodeContext) -> list[Value]:
    return [ctx.emit(WhereOp(bool_value(ctx, 0), ctx.value(1), ctx.value(2))).y]
