"""graph-fuse-activations: move activations and residual adds into their producer.

Every standalone element-wise op is one more sweep over a feature map in memory;
folded into the epilogue of the conv/gemm that produced the map, it is applied
to values still in registers. Three rewrites, applied to a fixed point:

- silu: `mul(x, sigmoid(x))` (either operand order, the sigmoid used only
  there) -> `silu(x)`, so that SiLU/Swish fuses as one activation even though
  x has two users (the sigmoid and the mul) in the exported graph.

- activation: `relu(p)` (likewise clip, leaky_relu, sigmoid, tanh, hard_sigmoid,
  hard_swish, silu and the element-wise math ops: exp, log, sqrt, erf, gelu...) where `p` is a conv/gemm/matmul/add/mul result with no `act` and
  no other use -> `p {act = #graph.act<relu>}`.
- residual: `add(conv, other)` (either operand order) where the conv has no
  other use, no `act` and no `residual`, and `other` has the conv's type and is
  defined before the conv -> `conv residual(other)`, keeping the add's `act`.
  The same for gemm. Then a following relu fuses as `act`, so ResNet's
  conv -> add -> relu becomes one conv.

Not fused: prelu (its slope is a tensor, not an ActivationAttr parameter), a
broadcasting add (`other` of another shape: that is a bias, not a residual), and
a residual defined after the conv (the fused conv would use it before its
definition; moving ops to make it legal would lengthen live ranges).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from grimc.dialects.graph import (
    AbsOp,
    AddOp,
    ClipOp,
    ConvOp,
    ErfOp,
    ExpOp,
    GeluOp,
    GemmOp,
    HardSigmoidOp,
    HardSwishOp,
    LeakyReluOp,
    LogOp,
    MatMulOp,
    MulOp,
    NegOp,
    NotOp,
    ReciprocalOp,
    ReluOp,
    SigmoidOp,
    SiluOp,
    SqrtOp,
    TanhOp,
)
from grimc.transforms._graph_utils import available_at, fuse_into

Activation = (
    ReluOp | ClipOp | LeakyReluOp | SigmoidOp | TanhOp | HardSigmoidOp | HardSwishOp | SiluOp
    | ExpOp | LogOp | SqrtOp | NegOp | AbsOp | ReciprocalOp | ErfOp | GeluOp | NotOp
)
"""Unary ops with an ActivationAttr form (`.activation()`)."""

WITH_ACT = (ConvOp, GemmOp, MatMulOp, AddOp, MulOp)
"""Producers with an `act` epilogue property."""

WITH_RESIDUAL = (ConvOp, GemmOp)
"""Producers with a `residual` operand."""


class FormSilu(RewritePattern):
    """y = mul(x, sigmoid(x))  ->  y = silu(x)"""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, mul: MulOp, rewriter: PatternRewriter) -> None:
        if mul.act is not None:
            return
        for x, gate in ((mul.lhs, mul.rhs), (mul.rhs, mul.lhs)):
            sigmoid = gate.owner
            if isinstance(sigmoid, SigmoidOp) and sigmoid.x == x and gate.has_one_use():
                rewriter.replace(mul, SiluOp(x))
                rewriter.erase(sigmoid)
                return


class FuseActivation(RewritePattern):
    """p = producer(...); y = act(p)  ->  y = producer(...) {act}"""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: Activation, rewriter: PatternRewriter) -> None:
        producer = op.x.owner
        if isinstance(producer, WITH_ACT) and producer.act is None and op.x.has_one_use():
            fuse_into(rewriter, producer, op, act=op.activation())


class FuseResidual(RewritePattern):
    """p = conv(...); y = add(p, r)  ->  y = conv(...) residual(r)"""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, add: AddOp, rewriter: PatternRewriter) -> None:
        for main, other in ((add.lhs, add.rhs), (add.rhs, add.lhs)):
            producer = main.owner
            if (
                isinstance(producer, WITH_RESIDUAL)
                and producer.act is None
                and producer.residual is None
                and main.has_one_use()
                and main.type == other.type == add.y.type
                and available_at(other, producer)
            ):
                fuse_into(rewriter, producer, add, residual=other, act=add.act)
                return


@dataclass(frozen=True)
class GraphFuseActivations(ModulePass):
    """Fuse activations and residual adds into conv/gemm/matmul/add/mul epilogues."""

    name = "graph-fuse-activations"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        patterns = GreedyRewritePatternApplier(
            [FormSilu(), FuseResidual(), FuseActivation()], dce_enabled=False
        )
        PatternRewriteWalker(patterns).rewrite_module(op)
