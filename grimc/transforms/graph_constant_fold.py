"""graph-constant-fold: evaluate ops on constant weights at compile time.

Exporters leave weight preprocessing in the graph (a Transpose or Reshape of
a weight, a scale multiplied into it, a Concat of gate weights). Computed once
here, the result is a plain graph.weight that the BCR passes can analyse and
prune, and that costs nothing at run time.

An op is folded when all its operands are graph.weight results and its type has
a numpy evaluator in `EVALUATORS` (one entry per op type; ONNX semantics,
including a fused `act`/`residual`). Matrix products are folded only below
`MAX_FOLD_FLOPS`, and results larger than their operands only within
`grimc.limits.FoldBudget` (a broadcast of two vectors into a huge matrix runs
at run time instead). Results go into the weight store under fresh keys; the old
weights are left for graph-dce. Ops on run-time inputs, conv, pooling,
normalization and recurrent cells are never evaluated here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern

from grimc.dialects.graph import (
    UNARY_MATH_OPS,
    ActivationAttr,
    AddOp,
    ClipOp,
    ConcatOp,
    FlattenOp,
    GemmOp,
    HardSigmoidOp,
    HardSwishOp,
    LeakyReluOp,
    MatMulOp,
    MulOp,
    PReluOp,
    ReluOp,
    ReshapeOp,
    SigmoidOp,
    SumOp,
    TanhOp,
    TransposeOp,
    ints,
    shape_of,
)
from grimc.errors import GrimcError
from grimc.limits import ELEMENT_BYTES, FoldBudget
from grimc.names import quote_for_message
from grimc.transforms._graph_utils import Constants, key_of

MAX_FOLD_FLOPS = 1 << 32
"""Larger matmul/gemm products stay in the graph (a few seconds of numpy at most)."""

ACTIVATION_FUNCS: dict[str, Callable[..., np.ndarray]] = {
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 0.5 * (1 + np.tanh(0.5 * x)),  # = 1/(1+e^-x), no overflow
    "tanh": np.tanh,
    "hard_swish": lambda x: x * np.clip(x / 6 + 0.5, 0, 1),
    "clip": lambda x, lo, hi: np.clip(x, lo, hi),
    "leaky_relu": lambda x, alpha: np.where(x >= 0, x, alpha * x),
    "hard_sigmoid": lambda x, alpha, beta: np.clip(alpha * x + beta, 0, 1),
    "silu": lambda x: x * 0.5 * (1 + np.tanh(0.5 * x)),
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "neg": np.negative,
    "abs": np.abs,
    "reciprocal": np.reciprocal,
    "erf": lambda x: _erf(x),
    "gelu": lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))),
    "not": lambda x: 1 - x,
    "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
}
"""numpy reference of each ActivationAttr kind, parameters in attribute order."""


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def apply_activation(act: ActivationAttr | None, x: np.ndarray) -> np.ndarray:
    """`act(x)` with ONNX semantics; identity when there is no activation."""
    return x if act is None else ACTIVATION_FUNCS[act.kind.data](x, *act.values)


Lookup = Callable[[SSAValue | None], np.ndarray]
"""The constant behind an operand (zero for an absent optional operand)."""


def _gemm(op: GemmOp, v: Lookup) -> np.ndarray:
    a = v(op.a).T if op.trans_a.value.data else v(op.a)
    b = v(op.b).T if op.trans_b.value.data else v(op.b)
    y = op.alpha.value.data * (a @ b) + op.beta.value.data * v(op.c) + v(op.residual)
    return apply_activation(op.act, y)


def _unary(op: Operation, v: Lookup) -> np.ndarray:
    return apply_activation(op.activation(), v(op.x))  # type: ignore[attr-defined]


def _to_result_shape(op: ReshapeOp | FlattenOp, v: Lookup) -> np.ndarray:
    return v(op.x).reshape(shape_of(op.y))


EVALUATORS: dict[type[Operation], Callable[[Operation, Lookup], np.ndarray]] = {
    TransposeOp: lambda op, v: np.transpose(v(op.x), ints(op.perm)),
    ReshapeOp: _to_result_shape,
    FlattenOp: _to_result_shape,
    AddOp: lambda op, v: apply_activation(op.act, v(op.lhs) + v(op.rhs)),
    MulOp: lambda op, v: apply_activation(op.act, v(op.lhs) * v(op.rhs)),
    SumOp: lambda op, v: functools.reduce(np.add, [v(x) for x in op.inputs]),
    ConcatOp: lambda op, v: np.concatenate([v(x) for x in op.inputs], op.axis.value.data),
    MatMulOp: lambda op, v: apply_activation(op.act, v(op.a) @ v(op.b)),
    GemmOp: _gemm,
    PReluOp: lambda op, v: np.where(v(op.x) < 0, v(op.slope) * v(op.x), v(op.x)),
    **dict.fromkeys(
        (ReluOp, ClipOp, LeakyReluOp, SigmoidOp, TanhOp, HardSigmoidOp, HardSwishOp,
         *UNARY_MATH_OPS),
        _unary,
    ),  # fmt: skip
}
"""numpy evaluator per foldable op type: (op, operand lookup) -> result array."""


def flops(op: Operation) -> int:
    """Multiply-adds x 2 of a matrix product, 0 for everything else."""
    if isinstance(op, MatMulOp):
        k = shape_of(op.a)[-1]
    elif isinstance(op, GemmOp):
        k = shape_of(op.a)[0 if op.trans_a.value.data else 1]
    else:
        return 0
    return 2 * k * math.prod(shape_of(op.results[0]))


@dataclass
class FoldConstantOp(RewritePattern):
    consts: Constants
    budget: FoldBudget = field(default_factory=FoldBudget)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        evaluate = EVALUATORS.get(type(op))
        if (
            evaluate is None
            or self.consts.arrays(op.operands) is None
            or flops(op) > MAX_FOLD_FLOPS
        ):
            return
        result_bytes = math.prod(shape_of(op.results[0])) * ELEMENT_BYTES
        operand_bytes = sum(math.prod(shape_of(v)) * ELEMENT_BYTES for v in op.operands)
        if not self.budget.allows(result_bytes, operand_bytes):
            return
        with np.errstate(over="ignore", invalid="ignore"):
            result = np.asarray(evaluate(op, self._lookup), dtype=np.float32)
        if not np.isfinite(result).all():
            raise GrimcError(
                f"{op.name} on weight {quote_for_message(key_of(op.operands[0], 'const'))}: "
                "folding it gives non-finite values (NaN or Inf)"
            )
        assert result.shape == shape_of(op.results[0]), f"{op.name}: evaluator shape mismatch"
        hint = f"{key_of(op.operands[0], 'const')}_{op.name.removeprefix('graph.')}"
        self.budget.spend(result_bytes, operand_bytes)
        folded = self.consts.materialize(rewriter, hint, result, op)
        rewriter.replace(op, [], [folded])

    def _lookup(self, value: SSAValue | None) -> np.ndarray:
        if value is None:
            return np.float32(0)  # type: ignore[return-value]
        array = self.consts.array(value)
        assert array is not None
        return array


@dataclass(frozen=True)
class GraphConstantFold(ModulePass):
    """Replace ops on constant weights by new weights computed with numpy."""

    name = "graph-constant-fold"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(FoldConstantOp(Constants(op))).rewrite_module(op)
