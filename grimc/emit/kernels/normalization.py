"""`graph.batch_norm` (when not folded into a conv/gemm), `graph.lrn`, `graph.softmax`.

All three work on `[outer, channels, inner]` views of NCHW tensors: batch norm
and LRN sweep H*W planes with gv_* vectors (planes split over tasks as the op's
`#sched.split` says; softmax splits its rows),
softmax reduces along one axis, either contiguous rows (axis innermost) or
columns vectorized across the trailing axes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from grimc.dialects import graph
from grimc.dialects.sched import split_of
from grimc.emit.kernel import KernelInstance, LoweringContext, lowers, numel, shape


@lowers(graph.BatchNormOp)
def lower_batch_norm(op: graph.BatchNormOp, ctx: LoweringContext) -> KernelInstance:
    """y = x * s + t per channel, s = scale / sqrt(var + eps), t = bias - mean * s.
    s and t are computed in the kernel (C values), so statistics may be activations."""
    xs = shape(op.x)
    n, c, spatial = xs[0], xs[1], math.prod(xs[2:])
    return KernelInstance(
        kind="batch_norm",
        params={
            "N": n,
            "C": c,
            "HW": spatial,
            "eps": float(op.epsilon.value.data),
            "ntasks": split_of(op, "planes").threads.data,
        },
        inputs=[
            ("x", ctx.operand(op.x)),
            ("scale", ctx.operand(op.scale)),
            ("bias", ctx.operand(op.bias)),
            ("mean", ctx.operand(op.mean)),
            ("var", ctx.operand(op.var)),
        ],
        outputs=[("y", ctx.result(op.y))],
        flops=2 * numel(op.x),
    )


@dataclass(frozen=True)
class Lrn:
    """ONNX LRN on an [n, c, hw] view: y = x / (bias + scale * sum x^2)^beta over
    the channel window [c - before, c + after], clipped to the channels."""

    n: int
    c: int
    hw: int
    before: int
    after: int
    scale: float
    beta: float
    bias: float
    flops: int


def lrn_of(op: graph.LRNOp) -> Lrn:
    """The LRN decisions every target's kernel takes (scale = alpha / size)."""
    xs = shape(op.x)
    size = op.size.value.data
    return Lrn(
        n=xs[0],
        c=xs[1],
        hw=math.prod(xs[2:]),
        before=(size - 1) // 2,
        after=math.ceil((size - 1) / 2),
        scale=float(op.alpha.value.data) / size,
        beta=float(op.beta.value.data),
        bias=float(op.bias.value.data),
        flops=(2 * size + 3) * numel(op.x),
    )


def softmax_view(op: graph.SoftmaxOp) -> tuple[int, int, int]:
    """(outer, L, inner): softmax runs along L of this view of x."""
    xs = shape(op.x)
    axis = op.axis.value.data
    return math.prod(xs[:axis]), xs[axis], math.prod(xs[axis + 1 :])


@lowers(graph.LRNOp)
def lower_lrn(op: graph.LRNOp, ctx: LoweringContext) -> KernelInstance:
    """ONNX LRN: channel window [c - (size-1)//2, c + ceil((size-1)/2)], clipped."""
    lrn = lrn_of(op)
    return KernelInstance(
        kind="lrn",
        params={
            "N": lrn.n,
            "C": lrn.c,
            "HW": lrn.hw,
            "before": lrn.before,
            "after": lrn.after,
            "scale": lrn.scale,
            "beta": lrn.beta,
            "bias": lrn.bias,
            "ntasks": split_of(op, "planes").threads.data,
        },
        inputs=[("x", ctx.operand(op.x))],
        outputs=[("y", ctx.result(op.y))],
        flops=lrn.flops,
    )


@lowers(graph.SoftmaxOp)
def lower_softmax(op: graph.SoftmaxOp, ctx: LoweringContext) -> KernelInstance:
    """Numerically stable softmax along `axis` of an [outer, L, inner] view."""
    outer, length, inner = softmax_view(op)
    return KernelInstance(
        kind="softmax",
        params={
            "outer": outer,
            "L": length,
            "inner": inner,
            "ntasks": split_of(op, "rows").threads.data,
        },
        inputs=[("x", ctx.operand(op.x))],
        outputs=[("y", ctx.result(op.y))],
        flops=4 * numel(op.x),
    )
