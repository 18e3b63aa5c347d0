"""graph-fuse-elementwise: compose consecutive clamping activations into one op.

Relu and Clip clamp every element into an interval (relu: [0, inf)). Two
clamps in a row are one clamp: clamping into [lo1, hi1] and then into
[lo2, hi2] equals clamping into [clamp(lo1, lo2, hi2), clamp(hi1, lo2, hi2)].
So a chain of any length becomes a single graph.relu or graph.clip, one sweep
over memory and one kernel instead of one per node (a chain of 10 000 Relus
used to become 10 000 kernels and a quarter-hour build). Rewrites:

- `clamp2(clamp1(x))` where clamp1's result has no other use -> `clamp(x)`.
- `clamp2(p {act = clamp1})` where `p`'s result has no other use ->
  `p {act = clamp}`, when the composed bounds are finite (an `act` has finite
  parameters) or it is a relu.

Run before graph-fuse-activations, which then moves the single clamp that is
left into its producer. Other activations (sigmoid, tanh, ...) do not compose
into one of their kind and are left alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from grimc.dialects.graph import ActivationAttr, ClipOp, ReluOp, f32_attr
from grimc.transforms._graph_utils import fuse_into
from grimc.transforms.graph_fuse_activations import WITH_ACT

Interval = tuple[float, float]
Clamp = ReluOp | ClipOp


def interval(op: Clamp) -> Interval:
    if isinstance(op, ReluOp):
        return (0.0, math.inf)
    return (op.min.value.data, op.max.value.data)


def act_interval(act: ActivationAttr | None) -> Interval | None:
    """The interval of a relu/clip epilogue; None for anything else."""
    if act is None:
        return None
    if act.kind.data == "relu":
        return (0.0, math.inf)
    if act.kind.data == "clip":
        lo, hi = act.values
        return (lo, hi)
    return None


def compose(first: Interval, then: Interval) -> Interval:
    """The single clamp equal to clamping into `first`, then into `then`."""
    lo, hi = then
    return (min(max(first[0], lo), hi), min(max(first[1], lo), hi))


def clamp_op(x: SSAValue, bounds: Interval) -> Clamp:
    if bounds == (0.0, math.inf):
        return ReluOp(x)
    return ClipOp(x, min=f32_attr(bounds[0]), max=f32_attr(bounds[1]))


def clamp_act(bounds: Interval) -> ActivationAttr | None:
    """The epilogue form of `bounds`, None when it has none (an infinite clip bound)."""
    if bounds == (0.0, math.inf):
        return ActivationAttr("relu")
    if all(math.isfinite(b) for b in bounds):
        return ActivationAttr("clip", bounds)
    return None


class ComposeClamps(RewritePattern):
    """clamp2(clamp1(x)) -> clamp(x)"""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: Clamp, rewriter: PatternRewriter) -> None:
        inner = op.x.owner
        if isinstance(inner, ReluOp | ClipOp) and op.x.has_one_use():
            fused = clamp_op(inner.x, compose(interval(inner), interval(op)))
            rewriter.replace(op, [fused])
            rewriter.erase(inner)


class ComposeIntoEpilogue(RewritePattern):
    """clamp2(p {act = clamp1}) -> p {act = clamp}"""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: Clamp, rewriter: PatternRewriter) -> None:
        producer = op.x.owner
        if not isinstance(producer, WITH_ACT) or not op.x.has_one_use():
            return
        first = act_interval(producer.act)
        act = None if first is None else clamp_act(compose(first, interval(op)))
        if act is not None:
            fuse_into(rewriter, producer, op, act=act)


@dataclass(frozen=True)
class GraphFuseElementwise(ModulePass):
    """Compose chains of relu/clip (standalone or epilogue) into one clamp."""

    name = "graph-fuse-elementwise"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        patterns = GreedyRewritePatternApplier(
            [ComposeClamps(), ComposeIntoEpilogue()], dce_enabled=False
        )
        PatternRewriteWalker(patterns).rewrite_module(op)
