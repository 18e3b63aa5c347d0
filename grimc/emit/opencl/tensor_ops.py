"""Element-wise, normalization, pooling, softmax and layout ops on OpenCL.

One work-item per output element (pooling, element-wise, transpose, the
copies of a concat) or per softmax row; broadcasting and permutations become
compile-time index strides, so the templates hold no shape logic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from grimc.dialects import graph
from grimc.emit.kernel import (
    Alias,
    CodegenError,
    KernelInstance,
    LoweringContext,
    Ref,
    act_params,
    numel,
    shape,
)
from grimc.emit.kernels.activation import ACTIVATION_OPS
from grimc.emit.kernels.bcr import float_blob
from grimc.emit.kernels.elementwise import BINARY_KINDS, VARIADIC_KINDS
from grimc.emit.kernels.normalization import lrn_of, softmax_view
from grimc.emit.kernels.pool import _window, window_counts
from grimc.emit.kernels.shape_ops import collapse_perm
from grimc.emit.opencl.lowering import cl_kernel, cl_lowers


def row_major_strides(dims: Sequence[int]) -> list[int]:
    strides, step = [], 1
    for d in reversed(dims):
        strides.append(step)
        step *= d
    return strides[::-1]


def broadcast_strides(in_shape: Sequence[int], out_shape: Sequence[int]) -> list[int]:
    """Per output axis, the operand's element stride (0 where it broadcasts)."""
    padded = [1] * (len(out_shape) - len(in_shape)) + list(in_shape)
    own = row_major_strides(padded)
    return [0 if d == 1 and o != 1 else s for d, o, s in zip(padded, out_shape, own, strict=True)]


def eltwise(
    ctx: LoweringContext,
    operands: list[tuple[Ref, Sequence[int]]],
    out,
    expr: str,
    act: dict | None = None,
) -> KernelInstance:
    """y = act(expr(a0, a1, ...)) over the broadcast of `operands` (ref, shape)."""
    out_shape = list(shape(out)) or [1]
    n = numel(out)
    return cl_kernel(
        "eltwise",
        {"N": n},
        [n],
        [(f"x{j}", ref) for j, (ref, _) in enumerate(operands)],
        [("y", ctx.result(out))],
        flops=n * max(1, len(operands) - 1),
        operands=[broadcast_strides(list(s) or [1], out_shape) for _, s in operands],
        shape=out_shape,
        expr=expr,
        act=act,
    )


@cl_lowers(*ACTIVATION_OPS)
def lower_activation(op: graph.UnaryOp, ctx: LoweringContext) -> KernelInstance:
    return eltwise(ctx, [(ctx.operand(op.x), shape(op.x))], op.y, "a0", act_params(op.activation()))


COMBINE = {
    "add": "{} + {}",
    "mul": "{} * {}",
    "sub": "{} - {}",
    "div": "{} / {}",
    "pow": "pow({}, {})",
    "max": "fmax({}, {})",
    "min": "fmin({}, {})",
    "equal": "({} == {} ? 1.0f : 0.0f)",
    "less": "({} < {} ? 1.0f : 0.0f)",
    "less_or_equal": "({} <= {} ? 1.0f : 0.0f)",
    "and": "({} != 0.0f && {} != 0.0f ? 1.0f : 0.0f)",
    "or": "({} != 0.0f || {} != 0.0f ? 1.0f : 0.0f)",
}
"""OpenCL C of each combining kind of the CPU tables (BINARY_KINDS, VARIADIC_KINDS);
booleans are 0/1 floats, as on the CPU."""


def combined(kind: str, n: int) -> str:
    """`kind` folded left over a0 .. a<n-1>."""
    expr = "a0"
    for j in range(1, n):
        expr = COMBINE[kind].format(expr, f"a{j}")
    return expr


@cl_lowers(*BINARY_KINDS)
def lower_binary(op: graph.BinaryOp, ctx: LoweringContext) -> KernelInstance:
    operands = [(ctx.operand(v), shape(v)) for v in (op.lhs, op.rhs)]
    expr = combined(BINARY_KINDS[type(op)], 2)
    return eltwise(ctx, operands, op.y, expr, act_params(op.act))


@cl_lowers(*VARIADIC_KINDS)
def lower_variadic(op: graph.SumOp | graph.VariadicOp, ctx: LoweringContext) -> KernelInstance:
    operands = [(ctx.operand(v), shape(v)) for v in op.inputs]
    return eltwise(ctx, operands, op.y, combined(VARIADIC_KINDS[type(op)], len(operands)))


@cl_lowers(graph.WhereOp)
def lower_where(op: graph.WhereOp, ctx: LoweringContext) -> KernelInstance:
    operands = [(ctx.operand(v), shape(v)) for v in (op.cond, op.x, op.y_in)]
    return eltwise(ctx, operands, op.y, "(a0 != 0.0f ? a1 : a2)")


@cl_lowers(graph.PReluOp)
def lower_prelu(op: graph.PReluOp, ctx: LoweringContext) -> KernelInstance:
    operands = [(ctx.operand(op.x), shape(op.x)), (ctx.operand(op.slope), shape(op.slope))]
    return eltwise(ctx, operands, op.y, "(a0 < 0.0f ? a0 * a1 : a0)")


@cl_lowers(graph.BatchNormOp)
def lower_batch_norm(op: graph.BatchNormOp, ctx: LoweringContext) -> KernelInstance:
    """y = x * s + t per channel with s, t folded at compile time (constant statistics)."""
    stats = [ctx.const(v) for v in (op.scale, op.bias, op.mean, op.var)]
    if any(s is None for s in stats):
        raise CodegenError("graph.batch_norm on opencl: statistics must be constant")
    scale, bias, mean, var = (np.asarray(s, dtype=np.float64) for s in stats)  # type: ignore[arg-type]
    s = scale / np.sqrt(var + float(op.epsilon.value.data))
    t = bias - mean * s
    xs = shape(op.x)
    channel = (1, xs[1]) + (1,) * (len(xs) - 2)
    operands = [
        (ctx.operand(op.x), xs),
        (float_blob(ctx, s, "cl_bn_scale"), channel),
        (float_blob(ctx, t, "cl_bn_shift"), channel),
    ]
    return eltwise(ctx, operands, op.y, "a0 * a1 + a2")


@cl_lowers(graph.MaxPoolOp, graph.AvgPoolOp)
def lower_pool(op: graph.PoolOp, ctx: LoweringContext) -> KernelInstance:
    win = {k: int(v) for k, v in _window(op).items()}  # type: ignore[arg-type]
    xs = shape(op.x)
    is_max = isinstance(op, graph.MaxPoolOp)
    include = not is_max and bool(op.count_include_pad.value.data)
    return _pool(ctx, op, "max" if is_max else "avg", win, xs[0] * xs[1], include)


@cl_lowers(graph.GlobalAvgPoolOp)
def lower_global_avg_pool(op: graph.GlobalAvgPoolOp, ctx: LoweringContext) -> KernelInstance:
    xs = shape(op.x)
    h, w = (1, xs[2]) if len(xs) == 3 else (xs[2], math.prod(xs[3:]))
    win = dict(H=h, W=w, OH=1, OW=1, KH=h, KW=w, SH=1, SW=1, PT=0, PB=0, PL=0, PR=0, DH=1, DW=1)
    return _pool(ctx, op, "avg", win, xs[0] * xs[1], False)


def _pool(
    ctx: LoweringContext, op, kind: str, win: dict[str, int], planes: int, include_pad: bool
) -> KernelInstance:
    """An average divides by the CPU kernels' tap counts (`window_counts`): per
    output row and column, the taps inside the input (or the padded input)."""
    inputs = [("x", ctx.operand(op.x))]
    if kind == "avg":
        for axis, pads in (("W", ("PL", "PR")), ("H", ("PT", "PB"))):
            counts = window_counts(
                win[axis], win[f"O{axis}"], win[f"K{axis}"], win[f"S{axis}"],
                (win[pads[0]], win[pads[1]]), win[f"D{axis}"], include_pad,
            )  # fmt: skip
            name = "cols" if axis == "W" else "rows"
            inputs.append((name, float_blob(ctx, np.array(counts), f"cl_pool_{name}")))
    return cl_kernel(
        "pool",
        {**win, "PLANES": planes},
        [win["OH"] * win["OW"], planes],
        inputs,
        [("y", ctx.result(op.y))],
        flops=numel(op.y) * win["KH"] * win["KW"],
        op=kind,
    )


@cl_lowers(graph.SoftmaxOp)
def lower_softmax(op: graph.SoftmaxOp, ctx: LoweringContext) -> KernelInstance:
    outer, length, inner = softmax_view(op)
    return cl_kernel(
        "softmax",
        {"OUTER": outer, "L": length, "INNER": inner},
        [inner, outer],
        [("x", ctx.operand(op.x))],
        [("y", ctx.result(op.y))],
        flops=4 * numel(op.x),
    )


@cl_lowers(graph.LRNOp)
def lower_lrn(op: graph.LRNOp, ctx: LoweringContext) -> KernelInstance:
    lrn = lrn_of(op)
    return cl_kernel(
        "lrn",
        {"C": lrn.c, "HW": lrn.hw, "NB": lrn.n, "BEFORE": lrn.before, "AFTER": lrn.after},
        [lrn.hw, lrn.c, lrn.n],
        [("x", ctx.operand(op.x))],
        [("y", ctx.result(op.y))],
        flops=lrn.flops,
        scale=lrn.scale,
        beta=lrn.beta,
        bias=lrn.bias,
    )


@cl_lowers(graph.FlattenOp, graph.ReshapeOp)
def lower_reshape(op: graph.FlattenOp | graph.ReshapeOp, ctx: LoweringContext) -> Alias:
    """Row-major data is unchanged: the result is the operand's buffer."""
    return Alias(op.x)


@cl_lowers(graph.ConcatOp)
def lower_concat(op: graph.ConcatOp, ctx: LoweringContext) -> list[KernelInstance]:
    """One block copy per input into its column range of the output rows."""
    axis = op.axis.value.data
    ys = shape(op.y)
    outer, inner = math.prod(ys[:axis]), math.prod(ys[axis + 1 :])
    row = ys[axis] * inner
    y = ctx.result(op.y)
    kernels, offset = [], 0
    for v in op.inputs:
        chunk = shape(v)[axis] * inner
        kernels.append(
            cl_kernel(
                "copy",
                {"ROWS": outer, "CHUNK": chunk, "DST_ROW": row, "DST_OFF": offset},
                [chunk, outer],
                [("x", ctx.operand(v))],
                [("y", y)],
            )
        )
        offset += chunk
    return kernels


@cl_lowers(graph.TransposeOp)
def lower_transpose(op: graph.TransposeOp, ctx: LoweringContext) -> KernelInstance:
    in_shape, perm = collapse_perm(shape(op.x), tuple(graph.ints(op.perm)))
    in_shape, perm = (in_shape or (1,)), (perm or (0,))
    out_shape = [in_shape[a] for a in perm]
    own = row_major_strides(in_shape)
    n = numel(op.y)
    return cl_kernel(
        "transpose",
        {"N": n},
        [n],
        [("x", ctx.operand(op.x))],
        [("y", ctx.result(op.y))],
        out_shape=out_shape,
        in_strides=[own[a] for a in perm],
    )
