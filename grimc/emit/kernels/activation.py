"""Standalone element-wise activations (those not fused into a producer).

Every kind runs as a gv_* vector loop (`act_vector`): the transcendental ones
(sigmoid, tanh, exp, log, erf, gelu, silu) use the polynomial vector math of
grimc_simd.h. Large tensors are cut into cache-line-aligned chunks, one per
thread.
"""

from __future__ import annotations

from grimc.dialects import graph
from grimc.emit.kernel import KernelInstance, LoweringContext, act_params, lowers, numel

MIN_PARALLEL_ELEMS = 1 << 16
"""Below this many elements a memory-bound sweep is not worth waking the pool."""

MIN_TASK_ELEMS = 1024
"""Smallest chunk worth a task of its own."""

CHUNK_ALIGN = 16
"""Thread chunks start on multiples of 16 floats (64 bytes)."""


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


def chunk_tasks(threads: int, n: int) -> int:
    """Tasks for a flat sweep of n elements: one per thread when it pays."""
    if threads <= 1 or n < MIN_PARALLEL_ELEMS:
        return 1
    return max(1, min(threads, n // max(MIN_TASK_ELEMS, CHUNK_ALIGN)))


@lowers(*ACTIVATION_OPS)
def lower_activation(op: graph.UnaryOp, ctx: LoweringContext) -> KernelInstance:
    n = numel(op.x)
    return KernelInstance(
        kind="activation",
        params={
            "n": n,
            "act": act_params(op.activation()),
            "ntasks": chunk_tasks(ctx.threads, n),
            "chunk_align": CHUNK_ALIGN,
        },
        inputs=[("x", ctx.operand(op.x))],
        outputs=[("y", ctx.result(op.y))],
        flops=n,
    )
