"""Element-wise `graph.add`, `graph.mul`, `graph.sub`, `graph.div`, `graph.pow`,
`graph.sum`, `graph.max`, `graph.min`, `graph.prelu`, the comparisons and logic
ops on 0/1 boolean tensors and `graph.where`, with broadcasting.

All lower to the `eltwise` template (`op` names the gv_* combining function). Broadcasting is resolved at compile
time: the output shape and every input's strides (0 on broadcast axes) are
collapsed so that adjacent axes merge whenever every input walks them as one
(`collapse`). What remains is `rows` outer rows of `inner` contiguous output
elements, where each input is either contiguous (inner stride 1) or constant
(stride 0) along the row: same-shape operands become one flat row, a per-channel
bias `[1, C, 1, 1]` becomes rows of H*W with a broadcast scalar per row. The
inner loop is vectorized with gv_*; rows (or aligned chunks of a flat row) are
split over tasks as the op's `#sched.split` says.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from xdsl.ir import SSAValue

from grimc.dialects import graph
from grimc.dialects.sched import split_of
from grimc.emit.kernel import KernelInstance, LoweringContext, act_params, lowers, shape


@dataclass(frozen=True)
class Layout:
    """Collapsed iteration space: outer dims + inner row length, per-input strides."""

    outer: tuple[int, ...]
    inner: int
    strides: tuple[tuple[int, ...], ...]  # per input, per outer dim
    inner_strides: tuple[int, ...]  # per input: 0 (broadcast) or 1

    @property
    def rows(self) -> int:
        return math.prod(self.outer)


def broadcast_strides(in_shape: Sequence[int], out_shape: Sequence[int]) -> list[int]:
    """Element strides of a contiguous input viewed in the output's shape (0 = broadcast)."""
    rank = len(out_shape)
    padded = [1] * (rank - len(in_shape)) + list(in_shape)
    strides, step = [0] * rank, 1
    for axis in reversed(range(rank)):
        strides[axis] = 0 if padded[axis] == 1 else step
        step *= padded[axis]
    return strides


def collapse(out_shape: Sequence[int], in_shapes: Sequence[Sequence[int]]) -> Layout:
    """Drop size-1 axes and merge axis pairs that every input walks contiguously."""
    per_input = [broadcast_strides(s, out_shape) for s in in_shapes]
    dims: list[int] = []
    strides: list[list[int]] = [[] for _ in in_shapes]
    for axis, size in enumerate(out_shape):
        if size == 1:
            continue
        mergeable = bool(dims) and all(
            st[-1] == s[axis] * size for st, s in zip(strides, per_input, strict=True)
        )
        if mergeable:
            dims[-1] *= size
            for st, s in zip(strides, per_input, strict=True):
                st[-1] = s[axis]
        else:
            dims.append(size)
            for st, s in zip(strides, per_input, strict=True):
                st.append(s[axis])
    if not dims:
        dims, strides = [1], [[0] for _ in in_shapes]
    return Layout(
        outer=tuple(dims[:-1]),
        inner=dims[-1],
        strides=tuple(tuple(st[:-1]) for st in strides),
        inner_strides=tuple(min(st[-1], 1) for st in strides),
    )


def eltwise_layout(op: graph.GraphOp) -> Layout:
    """The collapsed iteration space of an op lowered to `eltwise`."""
    operands, y = eltwise_operands(op)
    return collapse(shape(y), [shape(v) for v in operands])


def eltwise_operands(op: graph.GraphOp) -> tuple[list[SSAValue], SSAValue]:
    """(the operands the `eltwise` kernel combines, in order; the result)."""
    if isinstance(op, graph.WhereOp):
        return [op.cond, op.x, op.y_in], op.y
    if isinstance(op, graph.PReluOp):
        return [op.x, op.slope], op.y
    if isinstance(op, graph.BinaryOp):
        return [op.lhs, op.rhs], op.y
    return list(op.inputs), op.y  # type: ignore[attr-defined]


def eltwise_kernel(
    ctx: LoweringContext, op: graph.GraphOp, op_kind: str, act: Any
) -> KernelInstance:
    """One `eltwise` kernel: y = act(x0 (op) x1 (op) ...), broadcast resolved."""
    operands, y = eltwise_operands(op)
    out_shape = shape(y)
    layout = eltwise_layout(op)
    split = split_of(op, "elems" if layout.rows == 1 else "rows")
    n = math.prod(out_shape)
    return KernelInstance(
        kind="eltwise",
        params={
            "op": op_kind,
            "outer": list(layout.outer),
            "inner": layout.inner,
            "strides": [list(s) for s in layout.strides],
            "inner_strides": list(layout.inner_strides),
            "act": act,
            "ntasks": split.threads.data,
            "chunk_align": split.align.data,
        },
        inputs=[(f"x{i}", ctx.operand(v)) for i, v in enumerate(operands)],
        outputs=[("y", ctx.result(y))],
        flops=n * max(1, len(operands) - 1),
    )


BINARY_KINDS: dict[type[graph.BinaryOp], str] = {
    graph.AddOp: "add",
    graph.MulOp: "mul",
    graph.SubOp: "sub",
    graph.DivOp: "div",
    graph.PowOp: "pow",
    graph.EqualOp: "equal",
    graph.LessOp: "less",
    graph.LessOrEqualOp: "less_or_equal",
    graph.AndOp: "and",
    graph.OrOp: "or",
}
"""The `eltwise` combining function of each binary op (gv_<kind> in grimc_simd.h)."""

VARIADIC_KINDS: dict[type, str] = {graph.SumOp: "add", graph.MaxOp: "max", graph.MinOp: "min"}

ELTWISE_OPS: tuple[type, ...] = (*BINARY_KINDS, *VARIADIC_KINDS, graph.WhereOp, graph.PReluOp)
"""The ops lowered to the `eltwise` kernel."""


@lowers(*BINARY_KINDS)
def lower_binary(op: graph.BinaryOp, ctx: LoweringContext) -> KernelInstance:
    return eltwise_kernel(ctx, op, BINARY_KINDS[type(op)], act_params(op.act))


@lowers(*VARIADIC_KINDS)
def lower_variadic(op: graph.SumOp | graph.VariadicOp, ctx: LoweringContext) -> KernelInstance:
    return eltwise_kernel(ctx, op, VARIADIC_KINDS[type(op)], None)


@lowers(graph.WhereOp)
def lower_where(op: graph.WhereOp, ctx: LoweringContext) -> KernelInstance:
    return eltwise_kernel(ctx, op, "where", None)


@lowers(graph.PReluOp)
def lower_prelu(op: graph.PReluOp, ctx: LoweringContext) -> KernelInstance:
    """PRelu as max(x, 0) + slope * min(x, 0): branch-free, so it vectorizes."""
    return eltwise_kernel(ctx, op, "prelu", None)
