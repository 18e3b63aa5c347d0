"""Standalone element-wise activations (those not fused into a producer)."""

from __future__ import annotations

from grimc.dialects import graph
from grimc.emit.kernel import KernelInstance, LoweringContext, act_params, lowers, numel


@lowers(
    graph.ReluOp,
    graph.ClipOp,
    graph.LeakyReluOp,
    graph.SigmoidOp,
    graph.TanhOp,
    graph.HardSigmoidOp,
    graph.HardSwishOp,
)
def lower_activation(op: graph.UnaryOp, ctx: LoweringContext) -> KernelInstance:
    n = numel(op.x)
    return KernelInstance(
        kind="activation",
        params={"n": n, "act": act_params(op.activation())},
        inputs=[("x", ctx.operand(op.x))],
        outputs=[("y", ctx.result(op.y))],
        flops=n,
    )
