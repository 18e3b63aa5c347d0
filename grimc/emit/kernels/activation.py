"""Standalone element-wise activations (those not fused into a producer).

Every kind runs as a gv_* vector loop (`act_vector`): the transcendental ones
(sigmoid, tanh, exp, log, erf, gelu, silu) use the polynomial vector math of
grimc_simd.h. Large tensors are cut into aligned chunks, one per task, as the
op's `#sched.split` says.
"""

from __future__ import annotations

from grimc.dialects import graph
from grimc.dialects.sched import split_of
from grimc.emit.kernel import KernelInstance, LoweringContext, act_params, lowers, numel

ACTIVATION_OPS: tuple[type[graph.UnaryOp], ...] = (
    graph.ReluOp,
    graph.ClipOp,
    graph.LeakyReluOp,
    graph.SigmoidOp,
    graph.TanhOp,
    graph.HardSigmoidOp,
    graph.HardSwishOp,
    *graph.UNARY_MATH_OPS,
)
"""Element-wise ops with an ActivationAttr form: as a standalone op, one
activation kernel on every target family (CPU and OpenCL)."""


@lowers(*ACTIVATION_OPS)
def lower_activation(op: graph.UnaryOp, ctx: LoweringContext) -> KernelInstance:
    n = numel(op.x)
    split = split_of(op, "elems")
    return KernelInstance(
        kind="activation",
        params={
            "n": n,
            "act": act_params(op.activation()),
            "ntasks": split.threads.data,
            "chunk_align": split.align.data,
        },
        inputs=[("x", ctx.operand(op.x))],
        outputs=[("y", ctx.result(op.y))],
        flops=n,
    )
