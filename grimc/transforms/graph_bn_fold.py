"""graph-bn-fold: fold inference-mode BatchNormalization into the conv/gemm feeding it.

In inference a BN is a per-channel affine map `y * s + t` with
`s = scale / sqrt(var + eps)` and `t = bias - mean * s`. Applied to a linear op
it can be pushed into that op's weights and bias, so it costs nothing at run
time and the folded weights are what the BCR passes see and prune:

- conv:  w' = w * s[:, None, None, None],  b' = b * s + t
- gemm (BN over the columns of its [M, N] result):
  B' = B * s over the N axis (either transB),  C' = beta * C * s + t,  beta' = 1

The producer must have a single use (the BN), no fused activation or residual
(those come after the affine part), and constant weights, bias and statistics.
Folded arrays go into the weight store under fresh keys; arrays that other ops
may still reference are never changed in place. The old weights are left for
graph-dce.

A BN without such a producer (after a pool, concat, or as a pre-activation) stays
a graph.batch_norm: code generation runs it as one per-channel affine sweep,
which is cheaper than the graph.mul + graph.add pair it could become.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from grimc.dialects.graph import BatchNormOp, ConvOp, GemmOp, f32_attr
from grimc.errors import GrimcError
from grimc.names import quote_for_message
from grimc.transforms._graph_utils import Constants, fuse_into, key_of

Changes = dict[str, "np.ndarray | Attribute"]
"""Operands (as arrays to materialize) and properties of the rebuilt producer."""


def _bias(
    consts: Constants, op: ConvOp | GemmOp, name: str, shape: tuple[int, ...]
) -> np.ndarray | None:
    """The producer's optional bias as an array (zeros if absent), None if not constant."""
    value = getattr(op, name)
    return np.zeros(shape) if value is None else consts.array(value)


def _fold_conv(consts: Constants, conv: ConvOp, s: np.ndarray, t: np.ndarray) -> Changes | None:
    w = consts.array(conv.w)
    b = _bias(consts, conv, "b", s.shape)
    if w is None or b is None:
        return None
    per_filter = s.reshape((-1,) + (1,) * (w.ndim - 1))
    return {"w": w * per_filter, "b": b * s + t}


def _fold_gemm(consts: Constants, gemm: GemmOp, s: np.ndarray, t: np.ndarray) -> Changes | None:
    b = consts.array(gemm.b)
    c = _bias(consts, gemm, "c", s.shape)
    if b is None or c is None:
        return None
    columns = s[:, None] if gemm.trans_b.value.data else s[None, :]
    beta = gemm.beta.value.data
    return {"b": b * columns, "c": beta * c * s + t, "beta": f32_attr(1.0)}


FOLDERS: dict[type[Operation], Callable[..., Changes | None]] = {
    ConvOp: _fold_conv,
    GemmOp: _fold_gemm,
}
"""Per producer type: the operand/property changes that absorb `y * s + t`."""


def bn_affine(consts: Constants, bn: BatchNormOp) -> tuple[np.ndarray, np.ndarray] | None:
    """(s, t) in float64 with bn(y) = y * s + t per channel; None if not constant."""
    stats = consts.arrays((bn.scale, bn.bias, bn.mean, bn.var))
    if stats is None:
        return None
    scale, bias, mean, var = (a.astype(np.float64) for a in stats)
    denominator = var + bn.epsilon.value.data
    if not (denominator > 0).all():
        channel = int(np.flatnonzero(~(denominator > 0))[0])
        raise GrimcError(
            f"graph.batch_norm on weight {quote_for_message(key_of(bn.var, 'var'))}: "
            f"variance + epsilon is {denominator[channel]:g} at channel {channel}; "
            "folding it would give non-finite weights"
        )
    s = scale / np.sqrt(denominator)
    return s, bias - mean * s


@dataclass
class FoldBatchNorm(RewritePattern):
    consts: Constants

    @op_type_rewrite_pattern
    def match_and_rewrite(self, bn: BatchNormOp, rewriter: PatternRewriter) -> None:
        producer = bn.x.owner
        fold = FOLDERS.get(type(producer))
        if (
            fold is None
            or not bn.x.has_one_use()
            or producer.act is not None  # type: ignore[union-attr]
            or producer.residual is not None  # type: ignore[union-attr]
        ):
            return
        affine = bn_affine(self.consts, bn)
        changes = None if affine is None else fold(self.consts, producer, *affine)
        if changes is None:
            return
        for name, value in changes.items():
            with np.errstate(over="ignore", invalid="ignore"):
                finite = (
                    not isinstance(value, np.ndarray) or np.isfinite(value.astype(np.float32)).all()
                )
            if not finite:
                raise GrimcError(
                    f"graph.batch_norm on weight {quote_for_message(key_of(bn.var, 'var'))}: "
                    f"folding it into {producer.name} gives non-finite values in '{name}'"
                )
        fuse_into(rewriter, producer, bn, **self._materialize(rewriter, producer, changes))

    def _materialize(
        self, rewriter: PatternRewriter, producer: Operation, changes: Changes
    ) -> dict[str, SSAValue | Attribute]:
        """Turn array changes into new graph.weight values placed before `producer`."""
        weight_key = key_of(producer.operands[1], "w")  # conv w / gemm B
        return {
            name: self.consts.materialize(
                rewriter,
                f"{key_of(getattr(producer, name), f'{weight_key}_{name}')}_bn",
                value,
                producer,
            )
            if isinstance(value, np.ndarray)
            else value
            for name, value in changes.items()
        }


@dataclass(frozen=True)
class GraphBnFold(ModulePass):
    """Fold graph.batch_norm into a preceding graph.conv / graph.gemm."""

    name = "graph-bn-fold"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(FoldBatchNorm(Constants(op))).rewrite_module(op)
