"""Helpers shared by the BCR passes (not a pass: the name starts with `_`).

The three BCR passes all look at BCR weights the same way: as G same-shaped
GEMM-view matrices (conv groups, RNN directions) cut into `br x bc` blocks.
This module holds that view (weights -> matrices, packed store arrays ->
`BCRMatrix`), a fast vectorized summary of the block structure used to pick a
block shape without building Python objects per block, and the analytic cost
model the detector ranks candidates by.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.ir import Operation

from grimc.bcr_format import BCRFormatError, grid_of, packed_bytes, store_keys, unpack
from grimc.dialects.bcr import (
    BCROp,
    Conv2dOp,
    EncodingAttr,
    MatMulOp,
    RecurrentOp,
    ScheduleAttr,
    SparseLinearOp,
)
from grimc.dialects.graph import shape_of
from grimc.errors import GrimcError
from grimc.weights import WeightStore, store_for

Block = tuple[int, int]

# --------------------------------------------------------------------------
# cost model

BLOCK_OVERHEAD = 4.0
"""Vector-op slots a non-empty block costs besides its FMAs and input loads:
reading its bptr triple and index lists, pointer set-up, loop control."""

EMPTY_BLOCK = 1.0
"""Slots an empty block costs (one zero-trip loop)."""

DENSE_SLOTS_PER_WEIGHT = 1.2
"""Slots per weight of a register-blocked dense GEMM (one FMA plus its share of
loads). With the two constants above, the model predicts 7.0x (8x compression)
and 11.8x (16x) for 8x16 column-pruned 3x3 convs, where the prototype of
docs/bcr.md measured 5.8x and 10.5x: close enough to rank block shapes."""


@dataclass(frozen=True)
class BlockSummary:
    """The BCR structure of G matrices under one block shape (what `from_dense` finds).

    All counts are totals over the G matrices. `cost` is the predicted kernel
    cost in vector-op slots per output pixel vector (see `kernel_cost`).
    """

    block: Block
    size: int
    """G * M * K: the dense weight count."""
    nnz: int
    stored: int
    """Values kept in BCRC: sum over blocks of kept rows * kept columns."""
    kept_indices: int
    """Sum over blocks of kept rows + kept columns (the index arrays)."""
    blocks: int
    empty: int
    rows: int
    """G * M, the length of the perm arrays."""
    cost: float
    packed_bytes: int
    """Exact bytes of the packed BCRC arrays (`grimc.bcr_format.packed_bytes`)."""
    perms: tuple[np.ndarray, ...] | None = field(default=None, compare=False)
    """Per matrix, the row order the grid is laid over (BCRC `perm`); None: identity."""

    @property
    def permuted(self) -> bool:
        """Whether the structure was found under a non-identity row order."""
        return _permuted(self.perms)

    @property
    def density(self) -> float:
        """Stored values / dense size: the fraction of dense FMAs a kernel runs."""
        return self.stored / self.size if self.size else 0.0

    @property
    def fill(self) -> float:
        """Nonzeros / stored values: 1.0 when the zeros form exact BCR blocks."""
        return self.nnz / self.stored if self.stored else 1.0

    @property
    def compact_bytes(self) -> int:
        """Bytes of the packed BCRC arrays (same accounting as `BCRMatrix.total_bytes`)."""
        return self.packed_bytes

    @property
    def dense_cost(self) -> float:
        return DENSE_SLOTS_PER_WEIGHT * self.size

    @property
    def speedup(self) -> float:
        """Predicted dense / sparse kernel time."""
        return self.dense_cost / self.cost if self.cost else math.inf


def kernel_cost(kr: np.ndarray, kc: np.ndarray) -> float:
    """Predicted sparse kernel cost of blocks keeping `kr x kc` (arrays over blocks).

    The kernel (docs/bcr.md) loads each kept input column once per block
    (redundant-load elimination) and runs one FMA per stored value, so per
    output pixel vector a block costs `kr*kc` FMAs + `kc` loads +
    BLOCK_OVERHEAD, or EMPTY_BLOCK when it keeps nothing. Compare with
    `DENSE_SLOTS_PER_WEIGHT * M * K` for the dense kernel.
    """
    nonempty = kr > 0
    work = (kr * kc + kc)[nonempty].sum(dtype=np.int64)
    return float(work + BLOCK_OVERHEAD * nonempty.sum() + EMPTY_BLOCK * (~nonempty).sum())


def kept_counts(
    w: np.ndarray, block: Block, perm: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(kept rows, kept columns) per block of `w[perm]`, each [S, B]: vectorized `_detect`.

    A row's nonzero test inside a block reads its bc flags as gcd(bc, 8)-byte
    words, and a column's ORs whole rows: both stream memory in order (an
    FC layer of 10^8 weights takes ~0.3 s per block shape).
    """
    m, k = w.shape
    s, b = grid_of(w.shape, block)
    br, bc = block
    nz = np.ascontiguousarray(w != 0 if perm is None else (w != 0)[perm])  # w may be B^T
    if nz.shape != (s * br, b * bc):
        nz = np.pad(nz, ((0, s * br - m), (0, b * bc - k)))
    cols = nz.reshape(s, br, b * bc).any(axis=1).reshape(s, b, bc).sum(axis=2)
    word = np.dtype(f"u{math.gcd(bc, 8)}")
    rows = (nz.view(word).reshape(s, br, b, -1) != 0).any(axis=3).sum(axis=1)
    return rows, cols


def summarize(
    matrices: Sequence[np.ndarray], block: Block, perms: Sequence[np.ndarray] | None = None
) -> BlockSummary:
    """The BCR structure `BCRMatrix.from_dense(w, block, perm)` would find, without building it."""
    stored = kept = blocks = empty = nnz = 0
    krs, kcs = [], []
    for i, w in enumerate(matrices):
        kr, kc = kept_counts(w, block, None if perms is None else perms[i])
        krs.append(kr)
        kcs.append(kc)
        stored += int((kr * kc).sum())
        kept += int(kr.sum() + kc.sum())
        blocks += kr.size
        empty += int((kr == 0).sum())
        nnz += int(np.count_nonzero(w))
    return BlockSummary(
        block=block,
        size=sum(w.size for w in matrices),
        nnz=nnz,
        stored=stored,
        kept_indices=kept,
        blocks=blocks,
        empty=empty,
        rows=sum(w.shape[0] for w in matrices),
        cost=kernel_cost(np.concatenate(krs, axis=None), np.concatenate(kcs, axis=None)),
        packed_bytes=packed_bytes(
            np.stack(krs), np.stack(kcs), matrices[0].shape, block, _permuted(perms)
        ),
        perms=None if perms is None else tuple(perms),
    )


def _permuted(perms: Sequence[np.ndarray] | None) -> bool:
    return perms is not None and any(not np.array_equal(p, np.arange(len(p))) for p in perms)


# --------------------------------------------------------------------------
# recovering BCR rows that were shuffled

EXACT_FILL = 0.999
"""Fill at which a structure counts as exact BCR: trained weights kept by the
pruner are rarely, but sometimes, exactly zero (2 in 10^7 in a float32 normal
draw), so 1.0 would be too strict."""

_MIX = np.uint64(0x9E3779B97F4A7C15)
"""Odd 64-bit multiplier (golden ratio) that hashes (segment, pattern) keys."""

SEGMENT = 64
"""Widest column segment read as one exact bitmap."""

SAMPLED_COLUMNS = 8192
"""Columns (in whole segments, evenly spread) the stripe search reads: bounds its cost."""

PROBE = 256
"""Sampled segments a candidate pair is checked on (evenly spread; all when fewer)."""

PICKS = 2
"""Rarest shared keys per row whose rows become candidate stripe mates."""

CHUNK = 1 << 14
"""Candidate pairs checked at once (bounds the gathered bitmaps to ~32 MiB each)."""


def _spread(total: int, count: int) -> np.ndarray:
    """At most `count` (at least 1) of range(total), evenly spread, ascending."""
    return np.unique(np.linspace(0, total - 1, min(total, max(1, count))).astype(np.int64))


def segment_patterns(nonzero: np.ndarray, width: int) -> np.ndarray:
    """[M, P] uint64: each row's nonzero columns in P evenly spread segments of `width` <= 64.

    `nonzero` is the (M, K) mask `w != 0`. Segment j covers columns
    [j*width, (j+1)*width); P is at most SAMPLED_COLUMNS // width.
    """
    m, k = nonzero.shape
    total = -(-k // width)
    if total * width != k:
        nonzero = np.pad(nonzero, ((0, 0), (0, total * width - k)))
    picked = _spread(total, SAMPLED_COLUMNS // width)
    segments = nonzero.reshape(m, total, width)[:, picked]
    packed = np.packbits(segments, axis=2, bitorder="little")  # [M, P, ceil(width/8)]
    out = np.zeros((m, len(picked)), dtype=np.uint64)
    for i in range(packed.shape[2]):
        out |= packed[..., i].astype(np.uint64) << np.uint64(8 * i)
    return out


def _candidate_pairs(patterns: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, row) pairs sharing one of the first row's PICKS rarest keys.

    A key is a (segment, nonzero pattern); rows of one BCR stripe share the
    stripe's key in every block that keeps them, and in most blocks some key
    is rare (shared by no other stripe). Keys of 1 or more than `cap` rows
    are skipped.
    """
    rows, segs = np.nonzero(patterns)
    keys = patterns[rows, segs] * _MIX + segs.astype(np.uint64)
    order = np.argsort(keys)
    keys, rows = keys[order], rows[order]
    start = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    size = np.diff(np.r_[start, len(keys)])
    group = np.repeat(np.arange(len(start)), size)
    usable = np.flatnonzero((size[group] >= 2) & (size[group] <= cap))
    by_row = usable[np.argsort(rows[usable] * (cap + 1) + size[group[usable]])]
    owner = rows[by_row]
    first = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    rank = np.arange(len(by_row)) - np.repeat(first, np.diff(np.r_[first, len(by_row)]))
    chosen = by_row[rank < PICKS]
    counts = size[group[chosen]]
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    mates = rows[np.repeat(start[group[chosen]], counts) + offset]
    selves = np.repeat(rows[chosen], counts)
    distinct = selves != mates
    return selves[distinct], mates[distinct]


def _compatible(
    patterns: np.ndarray, a: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per pair: (nested, confirmed) over PROBE sampled segments.

    Nested: in every segment one row's columns contain the other's. Rows of
    one stripe always are (a row-pruned block is empty, a subset of
    anything); rows of different stripes almost never are where both are
    nonzero. Confirmed: nested, and both rows nonzero in at least two
    segments (one, when there is only one): evidence beyond the one key that
    paired them, since in a narrow matrix a wide pattern (a short edge
    segment keeping all its columns) can be shared across stripes, and one
    false pair would join two stripes.
    """
    probe = patterns[:, _spread(patterns.shape[1], PROBE)]
    evidence = min(2, probe.shape[1])
    nested = np.empty(len(a), dtype=bool)
    shared = np.empty(len(a), dtype=np.int64)
    for lo in range(0, len(a), CHUNK):
        pa, pb = probe[a[lo : lo + CHUNK]], probe[b[lo : lo + CHUNK]]
        both = pa & pb
        nested[lo : lo + CHUNK] = ((both == pa) | (both == pb)).all(axis=1)
        shared[lo : lo + CHUNK] = (both != 0).sum(axis=1)
    return nested, nested & (shared >= evidence)


def _components(m: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per node, the smallest node of its connected component (edges a-b)."""
    labels = np.arange(m)
    while True:
        low = np.minimum(labels[a], labels[b])
        new = labels.copy()
        np.minimum.at(new, a, low)
        np.minimum.at(new, b, low)
        new = new[new]
        if np.array_equal(new, labels):
            return labels
        labels = new


def stripe_labels(patterns: np.ndarray, cap: int) -> np.ndarray | None:
    """Per row, the smallest row of its presumed BCR stripe; None when no rows pair up.

    Candidate mates come from rare shared keys (`_candidate_pairs`), are
    confirmed by `_compatible`, and the confirmed pairs are joined into
    connected components; a row still alone joins a nested candidate's. Cost: reading M*SAMPLED_COLUMNS weights, two sorts
    of at most that many (row, segment) bitmaps, and O(M * PICKS * cap * PROBE)
    for the checks; no Python loop over rows.
    """
    a, b = _candidate_pairs(patterns, cap)
    nested, confirmed = _compatible(patterns, a, b)
    if not confirmed.any():
        return None
    labels = _components(patterns.shape[0], a[confirmed], b[confirmed])
    # A row left alone (kept in too few blocks for evidence) joins the
    # stripe of a nested candidate: it cannot join two stripes together.
    alone = np.bincount(labels, minlength=len(labels))[labels] == 1
    join = nested & alone[a] & ~alone[b]
    labels[a[join]] = labels[b[join]]
    return labels


def grouped_permutation(labels: np.ndarray, live: np.ndarray, height: int) -> np.ndarray:
    """Rows in stripes of `height`: whole stripes cut from each label group first.

    Then the rest of each group (by label, so partial groups stay together),
    then the all-zero rows (`live` False), which cost nothing anywhere and
    would only shift the stripes after them.
    """
    m = len(labels)
    order = np.lexsort((np.arange(m), labels))
    sorted_labels = labels[order]
    start = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    size = np.diff(np.r_[start, m])
    group = np.repeat(np.arange(len(start)), size)
    whole = (np.arange(m) - start[group]) < (size // height * height)[group]
    alive = live[order]
    return np.concatenate([order[whole & alive], order[~whole & alive], order[~alive]])


def recovered_summaries(
    matrices: Sequence[np.ndarray], blocks: Sequence[Block]
) -> list[BlockSummary | None]:
    """Per candidate block, the summary under the row order `stripe_labels` recovers.

    None where no rows pair up (nothing to recover). Labels are computed per
    distinct block width (keys shared by more than twice the tallest
    candidate's rows are skipped) until some candidate comes out exact
    (EXACT_FILL): its labels are the stripes, whatever the block width, so the
    remaining candidates reuse them.
    """
    cap = 2 * max(br for br, _ in blocks)
    masks = [w != 0 for w in matrices]
    live = [nz.any(axis=1) for nz in masks]
    by_width: dict[int, list[np.ndarray | None]] = {}
    exact: list[np.ndarray | None] | None = None
    out: list[BlockSummary | None] = []
    for br, bc in blocks:
        if exact is None and bc not in by_width:
            by_width[bc] = [
                stripe_labels(segment_patterns(nz, min(bc, SEGMENT)), cap) for nz in masks
            ]
        labels = by_width[bc] if exact is None else exact
        if all(lab is None for lab in labels):
            out.append(None)
            continue
        perms = [
            np.arange(len(alive)) if lab is None else grouped_permutation(lab, alive, br)
            for lab, alive in zip(labels, live, strict=True)
        ]
        summary = summarize(matrices, (br, bc), perms)
        if summary.fill >= EXACT_FILL:
            exact = labels
        out.append(summary)
    return out


def parse_blocks(text: str, owner: str) -> tuple[Block, ...]:
    """`"8x16,4x16"` -> ((8, 16), (4, 16)); a bad entry is a user error naming `owner`."""
    blocks: list[Block] = []
    for item in (part.strip() for part in text.split(",")):
        rows, sep, cols = item.lower().partition("x")
        if not (sep and rows.isdigit() and cols.isdigit() and int(rows) >= 1 and int(cols) >= 1):
            raise GrimcError(
                f"{owner}: block {item!r} in blocks={text!r} is not ROWSxCOLS with positive "
                "integers, e.g. 8x16"
            )
        blocks.append((int(rows), int(cols)))
    return tuple(dict.fromkeys(blocks))


# --------------------------------------------------------------------------
# GEMM views of dense weights


def conv_matrices(w: np.ndarray, group: int) -> list[np.ndarray]:
    """Conv weight [Cout, Cin/g, kh, kw] -> g matrices (Cout/g, Cin/g*kh*kw)."""
    per = w.shape[0] // group
    return [w[g * per : (g + 1) * per].reshape(per, -1) for g in range(group)]


def stacked_matrices(w: np.ndarray) -> list[np.ndarray]:
    """RNN weight [dirs, G*H, X] -> one (G*H, X) matrix per direction."""
    return [w[d] for d in range(w.shape[0])]


# --------------------------------------------------------------------------
# packed weights of bcr ops


@dataclass(frozen=True)
class WeightRef:
    """One packed weight of a bcr op: the property names that hold its key and encoding."""

    key_prop: str
    encoding_prop: str
    label: str
    """Short name for reports: `weights`, `W` or `R`."""


LINEAR_REFS = (WeightRef("weights", "encoding", "weights"),)
RECURRENT_REFS = (
    WeightRef("w_weights", "w_encoding", "W"),
    WeightRef("r_weights", "r_encoding", "R"),
)


def weight_refs(op: BCROp) -> tuple[WeightRef, ...]:
    return RECURRENT_REFS if isinstance(op, RecurrentOp) else LINEAR_REFS


def prefix_of(op: Operation, ref: WeightRef) -> str:
    attr = op.properties[ref.key_prop]
    assert isinstance(attr, StringAttr)
    return attr.data


def encoding_of(op: Operation, ref: WeightRef) -> EncodingAttr:
    attr = op.properties[ref.encoding_prop]
    assert isinstance(attr, EncodingAttr)
    return attr


@dataclass(frozen=True)
class PackedWeight:
    """A packed BCR weight decoded for analysis, without per-block Python objects.

    `grids[g]` is matrix g in the kernel's row order (W_g[perm_g]): grid row i
    is output row `perms[g, i]`. Explicit zeros inside kept sub-blocks read as
    zeros, so the grids carry the nonzero structure, not the kept sets.
    """

    grids: np.ndarray
    """float32 [G, M, K]."""
    perms: np.ndarray
    """int64 [G, M]."""
    block: Block

    def dense(self, g: int) -> np.ndarray:
        """Matrix g in its original row order."""
        out = np.empty_like(self.grids[g])
        out[self.perms[g]] = self.grids[g]
        return out

    @property
    def permuted(self) -> bool:
        return not all(np.array_equal(p, np.arange(len(p))) for p in self.perms)


def decode_packed(store: WeightStore, prefix: str, encoding: EncodingAttr) -> PackedWeight:
    """A packed weight as dense grids: `grimc.bcr_format.unpack`, checked against `encoding`."""
    keys = store_keys(prefix)
    present = set(store)
    missing = [key for key in keys.values() if key not in present]
    where = f"packed weight '{prefix}'"
    if missing:
        raise GrimcError(f"{where} is missing {', '.join(missing)}")
    arrays = {suffix: np.asarray(store[key]) for suffix, key in keys.items()}
    try:
        mats = unpack(arrays, encoding.matrix_shape, encoding.block_shape)
    except BCRFormatError as exc:
        raise GrimcError(f"{where}: {exc}") from None
    if len(mats) != encoding.num_groups:
        raise GrimcError(
            f"{where}: holds {len(mats)} groups, its encoding says {encoding.num_groups}"
        )
    grids = np.stack([mat.to_dense()[mat.perm] for mat in mats])
    perms = np.stack([mat.perm for mat in mats]).astype(np.int64)
    return PackedWeight(grids, perms, encoding.block_shape)


def schedule_with(schedule: ScheduleAttr, **changes: object) -> ScheduleAttr:
    """`schedule` with some fields replaced (keyword names as in ScheduleAttr's builder)."""
    fields: dict[str, object] = {
        "reorder": bool(schedule.reorder.data),
        "threads": schedule.threads.data,
    }
    fields.update(changes)
    return ScheduleAttr(**fields)  # type: ignore[arg-type]


def with_schedule(encoding: EncodingAttr, **changes: object) -> EncodingAttr:
    """`encoding` with some schedule fields replaced."""
    return EncodingAttr(
        matrix=encoding.matrix_shape,
        groups=encoding.num_groups,
        block=encoding.block_shape,
        keep=encoding.keep_counts,
        balanced=encoding.is_balanced,
        density=encoding.density.data,
        schedule=schedule_with(encoding.schedule, **changes),
    )


def bcr_ops(module: ModuleOp) -> Iterator[BCROp]:
    """All bcr ops of `module`, in program order (a list: callers may rewrite)."""
    yield from [op for op in module.walk() if isinstance(op, BCROp)]


def module_of(op: Operation) -> ModuleOp:
    top = op.get_toplevel_object()
    if not isinstance(top, ModuleOp):
        raise GrimcError(f"{op.name} is not inside a module, so it has no weight store")
    return top


def store_of(op: Operation) -> WeightStore:
    """The weight store of the module that holds `op`."""
    return store_for(module_of(op))


def pixels(op: BCROp, ref: WeightRef) -> int:
    """Output columns one application of the weight computes (its GEMM 'N').

    conv: batch * OH * OW output pixels; matmul: the batch rows (all leading
    dims of x); RNN W: seq * batch (one GEMM over all time steps); RNN R:
    batch (one GEMV-like product per step).
    """
    if isinstance(op, Conv2dOp):
        ys = shape_of(op.y)
        return ys[0] * ys[2] * ys[3]
    if isinstance(op, MatMulOp | SparseLinearOp):
        return math.prod(shape_of(op.x)[:-1])
    seq, batch, _ = shape_of(op.x)  # type: ignore[attr-defined]
    return seq * batch if ref.label == "W" else batch
