"""bcr-reorder: permute output rows so that similar rows share stripes and threads get equal work.

A BCR kernel runs one stripe (br output rows) as a register group: every kept
input column of a block is loaded once and used by all kept rows of the
stripe (docs/bcr.md). That works best when the rows of a stripe keep the same
columns; a model's row order rarely puts them together. This pass computes a
row permutation per matrix (per conv group / RNN direction) and repacks the
weight with `BCRMatrix.from_dense(w, block, perm=...)`. The kernel stores grid
row i to output row ``perm[i]`` (the `_perm` array), so the permutation costs
no copy of activations.

The permutation, per matrix:

1. **Same columns together.** Rows with identical nonzero columns form groups;
   each group fills whole stripes. Leftover rows are packed greedily: a stripe
   starts from the first leftover row in lexicographic order of its column
   bitmap, then repeatedly takes the candidate row that adds the fewest stored
   values, so near-identical rows end up together. Candidates are the rows
   that share a block pattern (same columns in one block column) with the
   stripe so far, as rows of one pruned stripe do even after row pruning;
   failing that, the next `window` rows in bitmap order.
2. **Balanced threads.** The sparse lowering splits the rows into `threads`
   contiguous ranges of about equal work (`thread_bounds`), so a heavy stripe
   cannot be shared. Full stripes are assigned longest-first to the least
   loaded of `threads` bins (LPT) and laid out bin after bin, so the cuts fall
   between bins; a short last stripe stays last.
3. **Never worse.** Reordering regroups rows into different stripes, so the
   structure is detected again on the permuted matrix; the permutation is kept
   only if it improves (compact bytes, column lists, imbalance), compared in
   that order: the compact size never grows. Otherwise the packed weight is
   left as it was.

`schedule.reorder` is set when a matrix of the weight ends up permuted (perm
not the identity), `schedule.threads` when the `threads` option is given.

Statistics (`reorder_module` returns them; `stats=true` prints them to stderr):
per matrix, the kept-column lists summed over stripes (for each stripe, the
number of distinct per-row column lists; 1 per stripe is ideal: the whole
stripe shares its input loads) and the thread imbalance (max / mean stored
values per thread), before and after, with the compact size.

Options: `bcr-reorder{threads=4 window=256 stats=true}`; threads=0 (default)
uses each op's `schedule.threads`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.passes import ModulePass

from grimc.bcr_format import BCRMatrix, pack, packed_bytes
from grimc.dialects.bcr import EncodingAttr
from grimc.errors import GrimcError
from grimc.transforms._bcr_utils import (
    Block,
    bcr_ops,
    decode_packed,
    encoding_of,
    kept_counts,
    prefix_of,
    schedule_with,
    weight_refs,
    with_schedule,
)
from grimc.weights import WeightStore, store_for

# --------------------------------------------------------------------------
# statistics


@dataclass(frozen=True)
class StripeStats:
    """How well a BCR matrix's row order suits the kernel."""

    stripes: int
    column_lists: int
    """Sum over stripes of the distinct nonzero-column lists of its rows (see `column_lists`)."""
    stored: int
    compact_bytes: int
    imbalance: float
    """Max / mean stored values per thread under the contiguous split (`thread_bounds`)."""


@dataclass(frozen=True)
class ReorderStats:
    """bcr-reorder's effect on one matrix (group `group` of weight `weights`)."""

    weights: str
    """The packed weight's key prefix after the pass."""
    source: str
    """The prefix before the pass."""
    group: int
    threads: int
    before: StripeStats
    after: StripeStats
    kept: bool
    """Whether the new permutation was kept (else `after` == `before`)."""


def thread_bounds(work: Sequence[int] | np.ndarray, threads: int) -> list[int]:
    """Contiguous split of stripes into `threads` ranges of about equal work.

    Like the sparse lowering's split of register groups: task t ends at the
    first stripe where the running work reaches t/T of the total, every task
    gets at least one stripe (fewer tasks than threads when stripes are few).
    """
    n = len(work)
    tasks = max(1, min(threads, n))
    if n == 0:
        return [0, 0]
    scaled = np.cumsum(np.asarray(work, dtype=np.int64)) * tasks  # exact: no float ties
    bounds = [0]
    for t in range(1, tasks):
        cut = int(np.searchsorted(scaled, scaled[-1] // tasks * t, side="left")) + 1
        bounds.append(min(max(cut, bounds[-1] + 1), n - (tasks - t)))
    bounds.append(n)
    return bounds


def imbalance(work: np.ndarray, threads: int) -> float:
    """Max / mean of the per-thread sums of `work` (per stripe) under `thread_bounds`."""
    total = float(work.sum())
    if threads <= 1 or total == 0.0:
        return 1.0
    bounds = thread_bounds(work, threads)
    loads = [float(work[a:b].sum()) for a, b in zip(bounds, bounds[1:], strict=False)]
    return max(loads) / (total / threads)


def column_lists(grid: np.ndarray, height: int) -> int:
    """Sum over stripes of `height` rows of the number of distinct column lists of its rows.

    A row's list is the columns where it is nonzero: rows with equal lists share
    every input load without explicit zeros. All-zero rows are not counted.
    """
    bits = np.packbits(grid != 0, axis=1)
    live = bits.any(axis=1)
    total = 0
    for r0 in range(0, len(grid), height):
        rows = bits[r0 : r0 + height][live[r0 : r0 + height]]
        total += len({row.tobytes() for row in rows})
    return total


def grid_stats(grid: np.ndarray, block: Block, threads: int = 1) -> StripeStats:
    """StripeStats of a matrix in kernel row order (the structure `from_dense` finds)."""
    kept_rows, kept_cols = kept_counts(grid, block)
    work = (kept_rows * kept_cols).sum(axis=1)
    return StripeStats(
        stripes=kept_rows.shape[0],
        column_lists=column_lists(grid, block[0]),
        stored=int(work.sum()),
        compact_bytes=packed_bytes(kept_rows[None], kept_cols[None], grid.shape, block, True),
        imbalance=imbalance(work, threads),
    )


def stripe_stats(m: BCRMatrix, threads: int = 1) -> StripeStats:
    """StripeStats of a BCRMatrix (detected again from its values)."""
    return grid_stats(m.to_dense()[np.asarray(m.perm)], m.block, threads)


# --------------------------------------------------------------------------
# the permutation


def _signatures(w: np.ndarray, bc: int) -> np.ndarray:
    """[M, B, words] uint64: the nonzero columns of each row within each block column."""
    m, k = w.shape
    blocks = -(-k // bc)
    words = -(-bc // 64)
    nz = np.zeros((m, blocks, words * 64), dtype=bool)
    padded = np.zeros((m, blocks * bc), dtype=bool)
    padded[:, :k] = w != 0
    nz[:, :, :bc] = padded.reshape(m, blocks, bc)
    bits = np.packbits(nz.reshape(m, blocks, words, 64), axis=-1, bitorder="little")
    return np.ascontiguousarray(bits).view(np.uint64).reshape(m, blocks, words)


def _popcount(x: np.ndarray) -> np.ndarray:
    return np.bitwise_count(x).sum(axis=-1, dtype=np.int64)


def _stored(sig: np.ndarray, rows: Sequence[int]) -> int:
    """Stored values of one stripe made of `rows` (kept rows x union of columns, per block)."""
    part = sig[list(rows)]
    kept_rows = (part != 0).any(axis=-1).sum(axis=0)
    union = np.bitwise_or.reduce(part, axis=0)
    return int((kept_rows * _popcount(union)).sum())


def _exact_groups(sig: np.ndarray) -> list[list[int]]:
    """Row indices grouped by identical signature, groups ordered by their first row."""
    flat = sig.reshape(len(sig), -1)
    _, inverse = np.unique(flat, axis=0, return_inverse=True)
    groups: dict[int, list[int]] = {}
    for row, label in enumerate(inverse.ravel().tolist()):
        groups.setdefault(label, []).append(row)
    return sorted(groups.values(), key=lambda g: g[0])


@dataclass(frozen=True)
class _Patterns:
    """Which rows share a (block column, column set) pattern: candidates worth trying.

    Rows of one BCR stripe keep the same columns in every block that keeps
    them, so a row that shares a pattern with a stripe's rows is likely to
    fit it. `group[r, b]` indexes `members[starts[i]:starts[i + 1]]`, the
    rows with row r's pattern in block column b (-1: r has none there).
    """

    group: np.ndarray
    starts: np.ndarray
    members: np.ndarray

    @classmethod
    def of(cls, sig: np.ndarray) -> _Patterns:
        m, b, words = sig.shape
        flat = sig.reshape(m * b, words)
        _, ids = np.unique(flat, axis=0, return_inverse=True)
        keys = np.where((flat != 0).any(axis=1), ids.ravel() * b + np.tile(np.arange(b), m), -1)
        live = np.flatnonzero(keys >= 0)
        uniq, group_of, counts = np.unique(keys[live], return_inverse=True, return_counts=True)
        group = np.full(m * b, -1, dtype=np.int64)
        group[live] = group_of.ravel()
        order = np.argsort(group_of.ravel(), kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)])
        return cls(group.reshape(m, b), starts, live[order] // b)

    def sharing(self, row: int, cap: int) -> np.ndarray:
        """Rows sharing a pattern with `row` (patterns shared by more than `cap` rows skipped)."""
        parts = [
            self.members[self.starts[g] : self.starts[g + 1]]
            for g in self.group[row][self.group[row] >= 0].tolist()
            if self.starts[g + 1] - self.starts[g] <= cap
        ]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _greedy_stripes(sig: np.ndarray, rows: list[int], height: int, window: int) -> list[list[int]]:
    """Pack `rows` into stripes of `height`, each time adding the row that stores least.

    A stripe starts from the first pending row in lexicographic order of its
    bitmap. Candidates are the pending rows sharing a pattern with the
    stripe's rows (`_Patterns`, at most 4*window of them), else the next
    `window` pending rows in that order.
    """
    if not rows:
        return []
    flat = sig[rows].reshape(len(rows), -1)
    lex = np.asarray(rows)[np.lexsort(flat.T[::-1]) if flat.shape[1] else np.arange(len(rows))]
    rank = np.full(len(sig), len(sig), dtype=np.int64)
    rank[lex] = np.arange(len(lex))
    pending = np.zeros(len(sig), dtype=bool)
    pending[lex] = True
    patterns = _Patterns.of(sig)
    stripes: list[list[int]] = []
    cursor = 0
    while True:
        while cursor < len(lex) and not pending[lex[cursor]]:
            cursor += 1
        if cursor == len(lex):
            return stripes
        seed = int(lex[cursor])
        pending[seed] = False
        stripe = [seed]
        union = sig[seed].copy()
        kept = (union != 0).any(axis=-1).astype(np.int64)
        related = patterns.sharing(seed, 4 * window)
        while len(stripe) < height:
            cands = np.unique(related[pending[related]])
            if len(cands) > 4 * window:
                cands = cands[np.argsort(rank[cands], kind="stable")[: 4 * window]]
            if not len(cands):
                cands = lex[cursor:][pending[lex[cursor:]]][:window]
                if not len(cands):
                    break
            nonzero = (sig[cands] != 0).any(axis=-1)
            grown = _popcount(sig[cands] | union)
            delta = ((kept + nonzero) * grown).sum(axis=1)
            best = np.flatnonzero(delta == delta.min())
            pick = int(best[np.argmin(rank[cands[best]])])
            row = int(cands[pick])
            pending[row] = False
            stripe.append(row)
            union |= sig[row]
            kept += nonzero[pick]
            related = np.concatenate([related, patterns.sharing(row, 4 * window)])
        stripes.append(stripe)


def _balance(stripes: list[list[int]], work: list[int], height: int, threads: int) -> list[list[int]]:
    """Lay stripes out so that the contiguous thread split gets equal work.

    Full stripes go longest-first to the least loaded of `threads` bins (LPT);
    the bins are then laid out one after another, each in formation order, so
    the split's cuts fall between bins. A short last stripe stays last.
    """
    if threads <= 1 or len(stripes) <= 1:
        return stripes
    short = [] if len(stripes[-1]) == height else [len(stripes) - 1]
    full = range(len(stripes) - len(short))
    load = [0] * threads
    if short:
        load[-1] += work[short[0]]
    bins: list[list[int]] = [[] for _ in range(threads)]
    for i in sorted(full, key=lambda i: (-work[i], i)):
        t = min(range(threads), key=lambda t: (load[t], t))
        bins[t].append(i)
        load[t] += work[i]
    return [stripes[i] for part in bins for i in sorted(part)] + [stripes[i] for i in short]


def reorder_permutation(w: np.ndarray, block: Block, threads: int = 1, window: int = 256) -> np.ndarray:
    """The row permutation of (M, K) matrix `w` for block shape `block` (steps 1-2 above)."""
    height = block[0]
    sig = _signatures(w, block[1])
    stripes: list[list[int]] = []
    leftover: list[int] = []
    for group in _exact_groups(sig):
        whole = len(group) // height * height
        stripes.extend(group[i : i + height] for i in range(0, whole, height))
        leftover.extend(group[whole:])
    stripes.extend(_greedy_stripes(sig, sorted(leftover), height, max(1, window)))
    stripes.sort(key=len, reverse=True)  # stable: at most one short stripe, moved last
    work = [_stored(sig, s) for s in stripes]
    stripes = _balance(stripes, work, height, threads)
    return np.array([r for s in stripes for r in s], dtype=np.int64)


def _score(stats: StripeStats) -> tuple[int, int, float]:
    return (stats.compact_bytes, stats.column_lists, round(stats.imbalance, 9))


@dataclass(frozen=True)
class MatrixResult:
    """The outcome for one matrix: its permutation and statistics."""

    perm: np.ndarray
    before: StripeStats
    after: StripeStats
    kept: bool


def reorder_dense(
    dense: np.ndarray, perm: np.ndarray, block: Block, threads: int = 1, window: int = 256
) -> MatrixResult:
    """Reorder one matrix (original row order, current permutation `perm`)."""
    before = grid_stats(dense[perm], block, threads)
    candidate = reorder_permutation(dense, block, threads, window)
    after = grid_stats(dense[candidate], block, threads)
    if _score(after) < _score(before):
        return MatrixResult(candidate, before, after, True)
    return MatrixResult(perm, before, before, False)


# --------------------------------------------------------------------------
# the pass


def _reorder_weight(
    store: WeightStore, prefix: str, encoding: EncodingAttr, threads: int, window: int
) -> tuple[str, EncodingAttr, list[MatrixResult]]:
    """Reorder every matrix of one packed weight; repack it under a new prefix if any changed."""
    packed = decode_packed(store, prefix, encoding)
    denses = [packed.dense(g) for g in range(len(packed.grids))]
    results = [
        reorder_dense(d, p, packed.block, threads, window)
        for d, p in zip(denses, packed.perms, strict=True)
    ]
    if not any(r.kept for r in results):
        return prefix, with_schedule(encoding, reorder=packed.permuted, threads=threads), results
    mats = [
        BCRMatrix.from_dense(d, packed.block, perm=r.perm)
        for d, r in zip(denses, results, strict=True)
    ]
    permuted = any(not np.array_equal(r.perm, np.arange(len(r.perm))) for r in results)
    schedule = schedule_with(encoding.schedule, reorder=permuted, threads=threads)
    return store.add_packed(prefix, pack(mats)), EncodingAttr.describe(mats, schedule), results


def reorder_module(module: ModuleOp, threads: int = 0, window: int = 256) -> list[ReorderStats]:
    """Reorder every packed weight of every bcr op in `module`; return the statistics.

    `threads` 0 balances for each op's `schedule.threads` and leaves it; a
    positive value balances for it and writes it into the schedules.
    """
    ops = list(bcr_ops(module))
    if not ops:
        return []
    store = store_for(module)
    done: dict[tuple[str, EncodingAttr, int], tuple[str, EncodingAttr]] = {}
    stats: list[ReorderStats] = []
    for op in ops:
        for ref in weight_refs(op):
            prefix, encoding = prefix_of(op, ref), encoding_of(op, ref)
            workers = threads or encoding.schedule.threads.data
            key = (prefix, encoding, workers)
            if key not in done:
                new_prefix, new_enc, results = _reorder_weight(
                    store, prefix, encoding, workers, window
                )
                done[key] = (new_prefix, new_enc)
                stats.extend(
                    ReorderStats(new_prefix, prefix, g, workers, r.before, r.after, r.kept)
                    for g, r in enumerate(results)
                )
            new_prefix, new_enc = done[key]
            op.properties[ref.key_prop] = StringAttr(new_prefix)
            op.properties[ref.encoding_prop] = new_enc
    return stats


def print_stats(stats: Sequence[ReorderStats], stream: TextIO) -> None:
    """The statistics as an MLIR-style report (one line per matrix)."""
    rule = "===" + "-" * 73 + "==="
    stream.write(f"{rule}\n{'... bcr-reorder statistics ...':^79}\n{rule}\n")
    stream.write(
        f"  {'weights':32s} {'grp':>3s} {'T':>2s} {'stripes':>7s} {'col-lists':>13s} "
        f"{'imbalance':>13s} {'bytes':>17s}  perm\n"
    )
    for s in stats:
        b, a = s.before, s.after
        stream.write(
            f"  {s.weights:32s} {s.group:3d} {s.threads:2d} {a.stripes:7d} "
            f"{b.column_lists:5d} -> {a.column_lists:<5d} {b.imbalance:5.2f} -> {a.imbalance:<5.2f} "
            f"{b.compact_bytes:7d} -> {a.compact_bytes:<7d}  {'kept' if s.kept else 'unchanged'}\n"
        )


@dataclass(frozen=True)
class BcrReorder(ModulePass):
    """Permute BCR weight rows so similar rows share stripes and threads get equal work."""

    name = "bcr-reorder"

    threads: int = 0
    window: int = 256
    stats: bool = False

    def __post_init__(self) -> None:
        if self.threads < 0:
            raise GrimcError(f"bcr-reorder: threads={self.threads} must be >= 0")
        if self.window < 1:
            raise GrimcError(f"bcr-reorder: window={self.window} must be >= 1")

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        result = reorder_module(op, self.threads, self.window)
        if self.stats:
            print_stats(result, sys.stderr)
