"""graph-fuse-activations: move activations and residual adds into their producer.

Every standalone element-wise op is one more sweep over a feature map in memory;
folded into the epilogue of the conv/gemm that produced the map, it is applied
to values still in registers. Three rewrites, applied to a fixed point:

- silu: `mul(x, sigmoid(x))` (either operand order, the sigmoid used only
  there) -> `silu(x)`, so that SiLU/Swish fuses as one activation even though
  x has two users (the sigmoid and the mul) in the exported graph.

- gelu: `mul(mul(x, add(erf(mul(x, 1/sqrt 2)), 1)), 0.5)` (operands of each
  mul and the add in either order, the erf possibly already the act of its
  mul, every intermediate used only there) -> `gelu(x)`: the exact GELU as
  torch.onnx exports it (its Div by sqrt 2 arrives as that Mul), one
  activation instead of four element-wise sweeps, fused like SiLU.

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

import math
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.ir import Operation, SSAValue
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
    ActivationAttr,
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
from grimc.transforms._graph_utils import Constants, available_at, fuse_into

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


ERF = ActivationAttr("erf")


class FormGelu(RewritePattern):
    """y = mul(mul(x, add(erf(mul(x, 1/sqrt 2)), 1)), 0.5)  ->  y = gelu(x)"""

    def __init__(self, consts: Constants) -> None:
        self.consts = consts

    def _is(self, value: SSAValue, want: float) -> bool:
        """Whether `value` is a one-element constant equal to `want` (in float32)."""
        c = self.consts.array(value)
        return c is not None and c.size == 1 and bool(np.isclose(float(c.ravel()[0]), want, rtol=1e-6))

    def _one_use(self, value: SSAValue, kind: type[Operation]) -> Operation | None:
        op = value.owner
        return op if isinstance(op, kind) and value.has_one_use() else None

    def _erf_chain(self, x: SSAValue, gate: SSAValue) -> list[Operation] | None:
        """The ops of `1 + erf(x / sqrt 2)` behind `gate`, users first, or None."""
        add = self._one_use(gate, AddOp)
        if add is None or add.act is not None:
            return None
        for e, one in ((add.lhs, add.rhs), (add.rhs, add.lhs)):
            if not self._is(one, 1.0):
                continue
            erf = self._one_use(e, ErfOp)
            scaled = erf.x if erf is not None else e
            mul = self._one_use(scaled, MulOp)
            if mul is None or mul.act != (None if erf is not None else ERF):
                continue
            for a, c in ((mul.lhs, mul.rhs), (mul.rhs, mul.lhs)):
                if a == x and self._is(c, 1.0 / math.sqrt(2.0)):
                    return [add, *([erf] if erf is not None else []), mul]
        return None

    @op_type_rewrite_pattern
    def match_and_rewrite(self, outer: MulOp, rewriter: PatternRewriter) -> None:
        if outer.act is not None:
            return
        for product, half in ((outer.lhs, outer.rhs), (outer.rhs, outer.lhs)):
            inner = self._one_use(product, MulOp)
            if inner is None or inner.act is not None or not self._is(half, 0.5):
                continue
            for x, gate in ((inner.lhs, inner.rhs), (inner.rhs, inner.lhs)):
                chain = self._erf_chain(x, gate)
                if chain is not None and x.type == outer.y.type:
                    rewriter.replace(outer, GeluOp(x, approximate=StringAttr("none")))
                    for op in (inner, *chain):
                        rewriter.erase(op)
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
            [FormSilu(), FormGelu(Constants(op)), FuseResidual(), FuseActivation()],
            dce_enabled=False,
        )
        PatternRewriteWalker(patterns).rewrite_module(op)
