"""bcr-detect: find the BCR structure the zeros of each weight form; go sparse where it pays.

Detection looks only at the numbers (zeros are zeros), so a model pruned by any
tool is found, not just one pruned by grimc. For every prunable weight:

- graph.conv (2-D, groups included; depthwise only with `depthwise=true`):
  per group the (Cout/g, Cin/g*kh*kw) matrix;
- graph.gemm with constant B and transA = 0: W = alpha * B^T (B if transB),
  shape (N, K); beta*C becomes the bias (C broadcast along rows) or a residual
  (C with a row dimension, when the gemm has no residual yet);
- graph.matmul with a constant 2-D B: W = B^T; an Add of a constant row
  vector [N] that is its only use becomes the bias (and the Add's act the act);
- graph.rnn/gru/lstm: W and R, one matrix per direction each;

each candidate block shape (option `blocks`, default
``8x16,4x16,8x8,16x32,16x16,4x4``: the paper's typical shapes plus two square
ones; a finer shape covers zeros more tightly, a taller one shares more input
loads) is scored by what `BCRMatrix.from_dense` would detect. A candidate is
*acceptable* when

1. its density (stored values / dense size, what the kernel computes) is at
   most `threshold` (default 0.5),
2. its fill (nonzeros / stored values) is at least `min_fill` (default 0.8):
   the zeros really form blocks. Unstructured sparsity scatters nonzeros over
   many blocks whose kept sub-blocks are then mostly explicit zeros (random
   5-30% density fills even 4x4 blocks to only 0.5-0.75; a hand-pruned BCR
   weight fills them to 1.0). Below about 3% random density most non-empty
   4x4 blocks hold a single nonzero, so the fill rises again: such a weight
   is accepted as 4x4 BCR keeping ~1x1 per block, which the model predicts
   (and a kernel of isolated FMAs delivers) to beat dense there; and
3. the cost model (`_bcr_utils.kernel_cost`) predicts a speedup over dense.

The acceptable candidate with the lowest predicted cost wins (ties: smaller
BCRC, then earlier in `blocks`).

**Shuffled rows.** A weight pruned elsewhere may arrive with its rows in
another order than its blocks were cut in (a pruner regrouped rows, or a
channel permutation was applied to the layer and undone in the next one).
Unless the given order already yields an exact structure (an acceptable
candidate with fill >= `EXACT_FILL`), each candidate is also scored over
``W[perm]`` for a row order recovered from the zeros
(`_bcr_utils.recovered_summaries`: rows sharing a rare per-block column
pattern are paired, pairs whose patterns agree everywhere are joined into
stripes). That order wins when it is cheaper and nearly exact (fill >=
`PERMUTED_MIN_FILL`), and is stored as the BCRC ``perm``, which kernels fold
into their stores; the report says "rows permuted". It costs nothing for
weights the given order already explains; on a 4096 x 25088 FC layer
(shuffled BCR, or random sparsity) it adds ~2 s to the ~1 s of scoring the
candidates in the given order.

A weight with fewer than `min_weights` elements (default
`grimc.layers.MIN_SPARSE_WEIGHTS`, 2048: first layers, tiny heads) stays dense, as do weights that are not constants.

The chosen weight is packed per group/direction (`grimc.bcr_format.pack`),
stored with `WeightStore.add_packed` under `<key>_bcr`, and the op becomes
bcr.conv2d / bcr.matmul / bcr.rnn|gru|lstm with `EncodingAttr.describe(...)`,
keeping bias, residual, act and all conv/recurrent attributes. A recurrent op
goes sparse when W or R qualifies; the other is then stored in BCR form too,
with its cheapest block shape. The same weight used twice is packed once.

Options: `bcr-detect{threshold=0.4 blocks="8x16,4x16" min-fill=0.8
min-weights=2048 depthwise=false recurrent=true}`. `detect(module, ...)` runs the same
rewrite and reports every decision (used by `grimc inspect`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.rewriter import InsertPoint

from grimc.bcr_format import BCRMatrix, pack
from grimc.dialects import bcr, graph
from grimc.dialects.bcr import EncodingAttr
from grimc.dialects.graph import WeightOp, shape_of
from grimc.errors import GrimcError
from grimc.layers import MIN_SPARSE_WEIGHTS
from grimc.transforms._bcr_utils import (
    EXACT_FILL,
    Block,
    BlockSummary,
    conv_matrices,
    parse_blocks,
    recovered_summaries,
    stacked_matrices,
    summarize,
)
from grimc.transforms._graph_utils import Constants, key_of

DEFAULT_BLOCKS = "8x16,4x16,8x8,16x32,16x16,4x4"
PERMUTED_NOTE = "rows permuted"
PERMUTED_MIN_FILL = 0.95
"""Fill a candidate needs to be taken under a recovered row order (given order:
`min_fill`). The search is free to regroup rows, and regrouping random
nonzeros that share a column lifts their fill a little (to 0.8 at 5% density
on a 37x101 matrix); a pruned-then-shuffled weight comes out exact (1.0)."""


@dataclass(frozen=True)
class DetectOptions:
    """The knobs of bcr-detect (see the module docstring)."""

    threshold: float = 0.5
    blocks: tuple[Block, ...] = parse_blocks(DEFAULT_BLOCKS, "bcr-detect")
    min_fill: float = 0.8
    min_weights: int = MIN_SPARSE_WEIGHTS
    depthwise: bool = False
    recurrent: bool = True


# --------------------------------------------------------------------------
# decisions


@dataclass(frozen=True)
class MatrixReport:
    """What bcr-detect decided for one weight (one row of `grimc inspect`)."""

    layer: str
    """The weight's store key, with `.W` / `.R` for recurrent weights."""
    op: str
    """conv, gemm, matmul, rnn, gru, lstm."""
    shape: tuple[int, ...]
    """The dense weight's shape as stored in the model."""
    view: tuple[int, int]
    """(M, K) of one group/direction."""
    groups: int
    nnz: int
    size: int
    kernel: str
    """"bcr" or "dense"."""
    block: Block | None
    """The detected block shape; None when no candidate was considered."""
    stored: int
    """Values the chosen kernel computes (size when dense)."""
    compact_bytes: int
    """Bytes as compiled: BCRC when bcr, 4*size when dense."""
    note: str = ""
    """Why the weight stays dense (or a remark on a bcr one)."""
    permuted: bool = False
    """The BCR structure was found only under a row permutation (stored as the BCRC perm)."""

    @property
    def density(self) -> float:
        return self.nnz / self.size if self.size else 0.0

    @property
    def dense_bytes(self) -> int:
        return 4 * self.size


Reporter = Callable[[MatrixReport], None]


@dataclass(frozen=True)
class Choice:
    """The outcome for one weight's matrices: a summary when acceptable, else why not."""

    best: BlockSummary | None
    """The winning acceptable candidate, or None."""
    cheapest: BlockSummary | None
    """The lowest-cost candidate regardless of acceptance (None if not evaluated)."""
    reason: str
    nnz: int
    size: int


def choose_block(matrices: Sequence[np.ndarray], opts: DetectOptions) -> Choice:
    """Rank the candidate blocks of G same-shaped matrices (module docstring rules).

    Rows as given first; unless that finds an exact BCR structure (an
    acceptable candidate with fill >= EXACT_FILL), each candidate is also
    scored under the row order `recovered_summaries` finds, and that order
    is kept when it is cheaper and nearly exact (PERMUTED_MIN_FILL).
    """
    size = sum(m.size for m in matrices)
    nnz = sum(int(np.count_nonzero(m)) for m in matrices)
    if size and nnz / size > opts.threshold:
        # Stored values >= nonzeros, so no block shape can meet the threshold.
        return Choice(None, None, f"density {nnz / size:.2f} > {opts.threshold:g}", nnz, size)
    summaries = [summarize(matrices, block) for block in opts.blocks]
    choice = _rank(summaries, opts, nnz, size)
    if choice.best is not None and choice.best.fill >= EXACT_FILL:
        return choice
    recovered = recovered_summaries(matrices, opts.blocks)
    merged = [
        s if r is None or r.fill < PERMUTED_MIN_FILL else min(s, r, key=_order_key)
        for s, r in zip(summaries, recovered, strict=True)
    ]
    return _rank(merged, opts, nnz, size)


def _order_key(summary: BlockSummary) -> tuple[float, int, bool]:
    """Cheaper first; on a tie the given row order (no permutation) wins."""
    return summary.cost, summary.compact_bytes, summary.permuted


def _rank(summaries: Sequence[BlockSummary], opts: DetectOptions, nnz: int, size: int) -> Choice:
    """The acceptable candidate with the lowest cost, or why none is acceptable."""
    order = sorted(
        range(len(summaries)), key=lambda i: (summaries[i].cost, summaries[i].compact_bytes, i)
    )
    ranked = [summaries[i] for i in order]
    cheapest = ranked[0]
    for cand in ranked:
        if cand.density <= opts.threshold and cand.fill >= opts.min_fill and cand.speedup > 1.0:
            return Choice(cand, cheapest, "", nnz, size)
    structured = [s for s in ranked if s.fill >= opts.min_fill]
    if not structured:
        best_fill = max(ranked, key=lambda s: s.fill)
        reason = (
            f"unstructured (best fill {best_fill.fill:.2f} at {_fmt(best_fill.block)} "
            f"< {opts.min_fill:g})"
        )
    elif all(s.density > opts.threshold for s in structured):
        low = min(structured, key=lambda s: s.density)
        reason = f"BCR {_fmt(low.block)} density {low.density:.2f} > {opts.threshold:g}"
    else:
        reason = f"no predicted speedup ({max(s.speedup for s in structured):.2f}x)"
    return Choice(None, cheapest, reason, nnz, size)


def cheapest_block(matrices: Sequence[np.ndarray], opts: DetectOptions) -> BlockSummary:
    """The candidate with the lowest predicted cost, acceptable or not."""
    summaries = [summarize(matrices, block) for block in opts.blocks]
    return min(summaries, key=lambda s: (s.cost, s.compact_bytes))


def _fmt(block: Block | None) -> str:
    return "dense" if block is None else f"{block[0]}x{block[1]}"


# --------------------------------------------------------------------------
# the rewrite


@dataclass
class Packer:
    """Packs chosen weights into the store, once per (source weight, transform)."""

    consts: Constants
    cache: dict[tuple[object, ...], tuple[str, EncodingAttr]] = field(default_factory=dict)

    def pack(
        self,
        cache_key: tuple[object, ...],
        hint: str,
        matrices: Sequence[np.ndarray],
        chosen: BlockSummary,
    ) -> tuple[str, EncodingAttr]:
        """Pack `matrices` in `chosen`'s block shape, rows laid out in its `perms`."""
        perms = chosen.perms if chosen.permuted else None
        full_key = (
            *cache_key,
            chosen.block,
            None if perms is None else tuple(p.tobytes() for p in perms),
        )
        if full_key not in self.cache:
            mats = [
                BCRMatrix.from_dense(m, chosen.block, None if perms is None else perms[i])
                for i, m in enumerate(matrices)
            ]
            prefix = self.consts.store.add_packed(f"{hint}_bcr", pack(mats))
            self.cache[full_key] = (prefix, EncodingAttr.describe(mats))
        return self.cache[full_key]


Linear = graph.ConvOp | graph.GemmOp | graph.MatMulOp
Recurrent = graph.RNNOp | graph.GRUOp | graph.LSTMOp

SPARSE_RECURRENT: dict[type[Operation], type[bcr.RecurrentOp]] = {
    graph.RNNOp: bcr.RNNOp,
    graph.GRUOp: bcr.GRUOp,
    graph.LSTMOp: bcr.LSTMOp,
}

OP_KIND: dict[type[Operation], str] = {
    graph.ConvOp: "conv",
    graph.GemmOp: "gemm",
    graph.MatMulOp: "matmul",
    graph.RNNOp: "rnn",
    graph.GRUOp: "gru",
    graph.LSTMOp: "lstm",
}


class Skip(Exception):
    """This op stays dense before any matrix is looked at; the message says why."""


@dataclass
class Detect(RewritePattern):
    consts: Constants
    opts: DetectOptions
    report: Reporter
    packer: Packer

    # ----------------------------------------------------------- dispatch

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: Linear | Recurrent, rewriter: PatternRewriter) -> None:
        kind = OP_KIND[type(op)]
        try:
            if isinstance(op, graph.ConvOp):
                new = self._conv(op, rewriter)
            elif isinstance(op, graph.GemmOp):
                new = self._gemm(op, rewriter)
            elif isinstance(op, graph.MatMulOp):
                new = self._matmul(op, rewriter)
            elif self.opts.recurrent:
                new = self._recurrent(op)
            else:
                raise Skip("recurrent ops disabled (recurrent=false)")
        except Skip as why:
            self._report_skip(op, kind, str(why))
            return
        if new is None:
            return
        bias_add = self._bias_add(op) if isinstance(op, graph.MatMulOp) else None  # new's bias
        replaced = [op] if bias_add is None else [op, bias_add]
        dead = [v.owner for r in replaced for v in r.operands if isinstance(v.owner, WeightOp)]
        new.attributes.update(op.attributes)  # graph.layer (grimc.layers) and the like
        if bias_add is None:
            rewriter.replace(op, new)
        else:  # the matmul's bias add is now the bcr.matmul's bias
            rewriter.insert(new, InsertPoint.before(op))
            rewriter.replace(bias_add, [], new.results)
            rewriter.erase(op)
        for weight in dict.fromkeys(dead):
            if not weight.result.uses:
                rewriter.erase(weight)

    # ----------------------------------------------------------- helpers

    def _constant(self, value: SSAValue | None, what: str) -> np.ndarray:
        array = self.consts.array(value)
        if array is None:
            raise Skip(f"{what} is not a constant")
        return np.asarray(array, dtype=np.float32)

    def _check_size(self, size: int) -> None:
        if size < self.opts.min_weights:
            raise Skip(f"small ({size} < {self.opts.min_weights} weights)")

    def _report_skip(self, op: Operation, kind: str, note: str) -> None:
        for value, suffix, view, groups in _dense_views(op):
            shape = shape_of(value)
            array = self.consts.array(value) if isinstance(value.owner, WeightOp) else None
            size = math.prod(shape)
            self.report(
                MatrixReport(
                    layer=key_of(value, kind) + suffix,
                    op=kind,
                    shape=shape,
                    view=view,
                    groups=groups,
                    nnz=size if array is None else int(np.count_nonzero(array)),
                    size=size,
                    kernel="dense",
                    block=None,
                    stored=size,
                    compact_bytes=4 * size,
                    note=note,
                )
            )

    def _report(
        self,
        layer: str,
        kind: str,
        shape: tuple[int, ...],
        matrices: Sequence[np.ndarray],
        choice: Choice,
        packed: BlockSummary | None,
        note: str = "",
    ) -> None:
        chosen = packed is not None
        shown = packed or choice.cheapest
        permuted = packed is not None and packed.permuted
        if permuted:
            note = "; ".join(filter(None, [note, PERMUTED_NOTE]))
        self.report(
            MatrixReport(
                layer=layer,
                op=kind,
                shape=shape,
                view=(matrices[0].shape[0], matrices[0].shape[1]),
                groups=len(matrices),
                nnz=choice.nnz,
                size=choice.size,
                kernel="bcr" if chosen else "dense",
                block=shown.block if shown is not None else None,
                stored=packed.stored if packed is not None else choice.size,
                compact_bytes=packed.compact_bytes if packed is not None else 4 * choice.size,
                note=note or choice.reason,
                permuted=permuted,
            )
        )

    def _single(
        self, layer: str, kind: str, shape: tuple[int, ...], matrices: Sequence[np.ndarray]
    ) -> BlockSummary | None:
        """Decide one weight, report it, and return the accepted candidate."""
        choice = choose_block(matrices, self.opts)
        self._report(layer, kind, shape, matrices, choice, choice.best)
        return choice.best

    # ----------------------------------------------------------- per op kind

    def _conv(self, conv: graph.ConvOp, rewriter: PatternRewriter) -> Operation | None:
        w = self._constant(conv.w, "weight")
        if w.ndim != 4:
            raise Skip(f"{w.ndim - 2}-D convolution")
        group = conv.group.value.data
        if group > 1 and w.shape[1] == 1 and not self.opts.depthwise:
            raise Skip("depthwise")
        self._check_size(w.size)
        key = key_of(conv.w, "conv_w")
        matrices = conv_matrices(w, group)
        best = self._single(key, "conv", w.shape, matrices)
        if best is None:
            return None
        prefix, enc = self.packer.pack(("conv", key, group), key, matrices, best)
        return bcr.Conv2dOp(
            conv.x,
            prefix,
            enc,
            conv.b,
            out_shape=shape_of(conv.y),
            kernel_shape=w.shape[2:],
            strides=graph.ints(conv.strides),
            pads=graph.ints(conv.pads),
            dilations=graph.ints(conv.dilations),
            group=group,
            residual=conv.residual,
            act=conv.act,
        )

    def _gemm(self, gemm: graph.GemmOp, rewriter: PatternRewriter) -> Operation | None:
        if gemm.trans_a.value.data:
            raise Skip("transA = 1")
        b = self._constant(gemm.b, "B")
        self._check_size(b.size)
        c = None if gemm.c is None else self._constant(gemm.c, "C")
        m, n = shape_of(gemm.y)
        beta = gemm.beta.value.data
        bias, residual = self._gemm_c(c, beta, (m, n), gemm.residual is not None)
        alpha = gemm.alpha.value.data
        wt = b if gemm.trans_b.value.data else b.T
        w = wt if alpha == 1.0 else (wt.astype(np.float64) * alpha).astype(np.float32)
        key = key_of(gemm.b, "gemm_w")
        best = self._single(key, "gemm", b.shape, [w])
        if best is None:
            return None
        tag = ("gemm", key, gemm.trans_b.value.data, alpha)
        prefix, enc = self.packer.pack(tag, key, [w], best)
        c_key = key_of(gemm.c, f"{key}_c")
        bias_v = residual_v = None
        if bias is not None:
            bias_v = self.consts.materialize(rewriter, f"{c_key}_bias", bias, gemm)
        if residual is not None:
            residual_v = self.consts.materialize(rewriter, f"{c_key}_full", residual, gemm)
        if residual_v is None:
            residual_v = gemm.residual
        return bcr.MatMulOp(gemm.a, prefix, enc, b=bias_v, residual=residual_v, act=gemm.act)

    @staticmethod
    def _gemm_c(
        c: np.ndarray | None, beta: float, out: tuple[int, int], has_residual: bool
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """beta*C as a bias [N] (C constant along rows) or a residual [M, N]."""
        if c is None or beta == 0.0:
            return None, None
        scaled = c.astype(np.float64) * beta
        c2 = scaled.reshape((1,) * (2 - scaled.ndim) + scaled.shape)
        if c2.shape[0] == 1:
            return np.broadcast_to(c2[0], (out[1],)).astype(np.float32), None
        if has_residual:
            raise Skip("C varies along rows and a residual is already fused")
        return None, np.broadcast_to(c2, out).astype(np.float32)

    def _bias_add(self, mm: graph.MatMulOp) -> graph.AddOp | None:
        """The Add of a constant row vector [N] that is `mm`'s only use, if any."""
        if mm.act is not None or not mm.y.has_one_use():
            return None
        add = next(iter(mm.y.uses)).operation
        if not isinstance(add, graph.AddOp) or add.y.type != mm.y.type:
            return None
        other = add.rhs if add.lhs == mm.y else add.lhs
        c = self.consts.array(other)
        n = shape_of(mm.y)[-1]
        if c is None or other == mm.y or c.size != n or (c.ndim and c.shape[-1] != n):
            return None
        return add

    def _matmul(self, mm: graph.MatMulOp, rewriter: PatternRewriter) -> Operation | None:
        b = self.consts.array(mm.b)
        if b is None:
            raise Skip("B is not a constant")
        if b.ndim != 2:
            raise Skip(f"B has rank {b.ndim}, not 2")
        self._check_size(b.size)
        key = key_of(mm.b, "matmul_w")
        w = np.asarray(b, dtype=np.float32).T
        best = self._single(key, "matmul", b.shape, [w])
        if best is None:
            return None
        prefix, enc = self.packer.pack(("matmul", key), key, [w], best)
        add = self._bias_add(mm)
        if add is None:
            new = bcr.MatMulOp(mm.a, prefix, enc, act=mm.act)
        else:
            other = add.rhs if add.lhs == mm.y else add.lhs
            bias = np.asarray(self.consts.array(other), dtype=np.float32).reshape(-1)
            bias_v = self.consts.materialize(rewriter, f"{key_of(other, key)}_bias", bias, mm)
            new = bcr.MatMulOp(mm.a, prefix, enc, b=bias_v, act=add.act)
        assert new.y.type == mm.y.type, "bcr.matmul result must match graph.matmul"
        return new

    def _recurrent(self, op: Recurrent) -> Operation | None:
        kind = OP_KIND[type(op)]
        w = self._constant(op.w, "W")
        r = self._constant(op.r, "R")
        self._check_size(w.size + r.size)
        parts = [("W", op.w, w), ("R", op.r, r)]
        views = [stacked_matrices(arr) for _, _, arr in parts]
        choices = [choose_block(mats, self.opts) for mats in views]
        if all(ch.best is None for ch in choices):
            for (label, value, arr), mats, ch in zip(parts, views, choices, strict=True):
                self._report(f"{key_of(value, kind)}.{label}", kind, arr.shape, mats, ch, None)
            return None
        props: dict[str, Attribute] = {}
        for (label, value, arr), mats, ch in zip(parts, views, choices, strict=True):
            key = key_of(value, f"{kind}_{label.lower()}")
            picked = ch.best or ch.cheapest or cheapest_block(mats, self.opts)
            note = (
                ""
                if ch.best
                else f"stored in BCR form with the sparse {'R' if label == 'W' else 'W'}"
            )
            self._report(f"{key}.{label}", kind, arr.shape, mats, ch, picked, note)
            prefix, enc = self.packer.pack((kind, key), key, mats, picked)
            props[f"{label.lower()}_weights"] = StringAttr(prefix)
            props[f"{label.lower()}_encoding"] = enc
        cls = SPARSE_RECURRENT[type(op)]
        op_def = cls.get_irdl_definition()
        for name in op_def.properties:
            if name not in props and op.properties.get(name) is not None:
                props[name] = op.properties[name]
        operands = [getattr(op, name) for name, _ in op_def.operands]
        return cls.build(
            operands=[[] if v is None else [v] for v in operands],
            result_types=[res.type for res in op.results],
            properties=props,
        )


def _dense_views(op: Operation) -> list[tuple[SSAValue, str, tuple[int, int], int]]:
    """(weight, layer suffix, GEMM view, groups) of each weight of a prunable op."""
    if isinstance(op, Recurrent):
        return [
            (value, f".{label}", (shape_of(value)[1], shape_of(value)[2]), shape_of(value)[0])
            for value, label in ((op.w, "W"), (op.r, "R"))
        ]
    shape = shape_of(op.operands[1])
    if isinstance(op, graph.ConvOp):
        group = op.group.value.data
        return [(op.w, "", (shape[0] // group, math.prod(shape[1:])), group)]
    if isinstance(op, graph.GemmOp) and op.trans_b.value.data:
        return [(op.b, "", (shape[0], shape[1]), 1)]
    rows = shape[-1] if shape else 1
    return [(op.operands[1], "", (rows, math.prod(shape) // rows), 1)]


def detect(
    module: ModuleOp,
    opts: DetectOptions | None = None,
    report: Reporter | None = None,
) -> list[MatrixReport]:
    """Run the bcr-detect rewrite on `module`; return (and pass to `report`) every decision."""
    reports: list[MatrixReport] = []

    def collect(item: MatrixReport) -> None:
        reports.append(item)
        if report is not None:
            report(item)

    consts = Constants(module)
    pattern = Detect(consts, opts or DetectOptions(), collect, Packer(consts))
    PatternRewriteWalker(pattern, apply_recursively=False).rewrite_module(module)
    return reports


@dataclass(frozen=True)
class BcrDetect(ModulePass):
    """Rewrite conv/gemm/matmul/rnn ops whose zeros form a cheap BCR structure into bcr ops."""

    name = "bcr-detect"

    threshold: float = 0.5
    blocks: str = DEFAULT_BLOCKS
    min_fill: float = 0.8
    min_weights: int = MIN_SPARSE_WEIGHTS
    depthwise: bool = False
    recurrent: bool = True

    def __post_init__(self) -> None:
        self.options()  # reject bad options when the pipeline is built

    def options(self) -> DetectOptions:
        if not 0.0 <= self.threshold <= 1.0:
            raise GrimcError(f"bcr-detect: threshold={self.threshold} must be in [0, 1]")
        if not 0.0 <= self.min_fill <= 1.0:
            raise GrimcError(f"bcr-detect: min-fill={self.min_fill} must be in [0, 1]")
        if self.min_weights < 0:
            raise GrimcError(f"bcr-detect: min-weights={self.min_weights} must be >= 0")
        return DetectOptions(
            threshold=self.threshold,
            blocks=parse_blocks(self.blocks, "bcr-detect"),
            min_fill=self.min_fill,
            min_weights=self.min_weights,
            depthwise=self.depthwise,
            recurrent=self.recurrent,
        )

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        detect(op, self.options())
