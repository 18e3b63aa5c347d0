"""BCRC, the compact storage of BCR-sparse weight matrices (pure numpy, no IR).

**The structure (docs/bcr.md).** A weight in its GEMM view is a matrix W of
shape (M, K), rows = outputs. Its rows may first be permuted by the reorder
pass: the grid below is laid over ``W[perm]`` (``perm`` is the identity unless
reordered). That matrix is cut into a grid of ``S x B`` blocks of ``br x bc``,
``S = ceil(M / br)`` block-row *stripes* and ``B = ceil(K / bc)`` block
columns; block (s, b) covers rows ``[s*br, min((s+1)*br, M))`` and columns
``[b*bc, min((b+1)*bc, K))``, so edge blocks may be partial. Each block keeps a
set of rows and a set of columns; all of its nonzeros lie in
``kept_rows x kept_cols``, which it stores as a small dense sub-matrix (zeros
inside it are stored explicitly). A block keeps rows iff it keeps columns: an
empty block keeps neither. `BCRMatrix.from_dense` detects the smallest sets.

In memory a `BCRMatrix` holds the kept sets as boolean masks over each block's
rows and columns plus the values in packing order, so building, packing,
unpacking and densifying are whole-array numpy operations (a 4096 x 25088 FC
layer has 10^5..10^6 blocks); `BCRMatrix.blocks` spells them out per block.

**Balance.** ``keep_counts()`` is the most rows and columns any block keeps,
the bound a register-blocked kernel sizes its tile by. The matrix is
*balanced* when every full block keeps exactly that many (partial edge blocks
keep at most as many, clipped to their extent).

**Packed layout, version 2** (`pack` / `unpack`): what the weight store holds
under ``<prefix>_<suffix>`` (see `store_keys`). G matrices of one shape and
block (conv groups, RNN directions) are packed one after another,
group-major. Block ``i = (g*S + s)*B + b`` enumerates groups, stripes top to
bottom, then blocks left to right. A block whose row extent is ``er`` and
column extent ``ec`` keeps ``(nr, nc)``; it is *row-full* when ``nr == er``
(it keeps every row of its span) and *column-full* when ``nc == ec``. Index
lists are stored only where they say something: a row-full block stores no
row indices, a column-full block no column indices. All arrays are 1-D:

=======  =======  ==========================================================
suffix   dtype    contents
=======  =======  ==========================================================
vals     float32  per block i, per kept column c (ascending), per kept row r
                  (ascending): ``W_g[perm_g[r], c]``. This is the order a
                  kernel reads them: one input row, then its weight for
                  every kept row (redundant-load elimination).
cols     idx(bc)  per block i that is not column-full, its kept column
                  indices relative to the block's first column, ascending.
rows     idx(br)  per block i that is not row-full, its kept row indices
                  relative to the block's first row (of the permuted row
                  space), ascending.
counts   idx(n)   empty, or ``G*S*B`` pairs ``(nr, nc)``; ``n = max(br, bc)``.
perm     int32    empty when every group keeps its rows in order, else
                  ``G*M``: row i of group g's grid is output row
                  ``perm[g*M + i]`` of group g.
head     int32    ``(2, G, M, K, br, bc, kr, kc)``: layout version, groups,
                  matrix and block shape, and the uniform keep counts:
                  ``kr, kc >= 0`` says block i keeps exactly
                  ``(min(kr, er), min(kc, ec))`` and ``counts`` is empty;
                  ``-1, -1`` says ``counts`` lists them.
=======  =======  ==========================================================

``idx(n)`` is the narrowest of uint8, uint16, int32 that holds ``n``, so 8x16
blocks index with single bytes. Block offsets into ``vals``/``cols``/``rows``
are prefix sums of the counts (a reader computes them; nothing stores them).
Packed alone, a matrix costs (`total_bytes`, `packed_bytes`)::

    32                                   head
  + 4 * sum(nr*nc)                       vals
  + |idx(bc)| * sum(nc, not column-full) + |idx(br)| * sum(nr, not row-full)
  + 2 * |idx(max(br, bc))| * S*B         unless uniform
  + 4 * M                                unless in row order

against ``4*M*K`` dense. A column-pruned 8x16 matrix at 8x (every block keeps
its 8 rows and 2 of 16 columns, K a multiple of 16) is uniform and row-full:
``32 + 66 * S*B`` bytes against ``512 * S*B``, 7.76x smaller. Per-weight
indices would cost 4 bytes per kept value.

============================  ===========  ===========  =========
64 x 576, 8x16, 8x col prune  version 1    version 2    dense
============================  ===========  ===========  =========
bytes                         33 676       19 040       147 456
vs dense                      4.38x        7.74x        1x
============================  ===========  ===========  =========
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from grimc.errors import GrimcError

SUFFIXES = ("vals", "cols", "rows", "counts", "perm", "head")
"""Weight-store key suffixes of one packed BCR weight, in layout order."""

VERSION = 2
"""Packed layout version, head[0]."""

_HEAD_WORDS = 8
_WORD = 4  # bytes per float32 value, int32 head word and int32 perm entry


class BCRFormatError(GrimcError):
    """A BCR matrix or packed arrays break the BCRC invariants."""


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise BCRFormatError(msg)


def store_keys(prefix: str) -> dict[str, str]:
    """Suffix -> weight-store key of the packed arrays under `prefix`."""
    return {suffix: f"{prefix}_{suffix}" for suffix in SUFFIXES}


def grid_of(shape: Sequence[int], block: Sequence[int]) -> tuple[int, int]:
    """(stripes, block columns) of an (M, K) matrix cut into (br, bc) blocks."""
    _check(
        len(shape) == len(block) == 2 and min(*shape, *block) >= 1,
        f"matrix {tuple(shape)} and block {tuple(block)} must be 2 positive ints each",
    )
    return -(-shape[0] // block[0]), -(-shape[1] // block[1])


def _spans(extent: int, step: int) -> list[tuple[int, int]]:
    """[start, stop) of each step-sized piece of range(extent); the last may be short."""
    return [(lo, min(lo + step, extent)) for lo in range(0, extent, step)]


def _extents(extent: int, step: int) -> np.ndarray:
    """Length of each step-sized piece of range(extent), as int64."""
    return np.minimum(step, extent - np.arange(0, extent, step, dtype=np.int64))


def index_dtype(bound: int) -> np.dtype:
    """The narrowest of uint8, uint16, int32 holding every integer in [0, bound]."""
    for dtype in (np.uint8, np.uint16):
        if bound <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int32)


@dataclass(frozen=True, eq=False)
class Block:
    """One block: kept row and column indices (absolute, ascending) and their values."""

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    """float32 [len(rows), len(cols)]: the dense kept sub-matrix."""

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Block)
            and np.array_equal(self.rows, other.rows)
            and np.array_equal(self.cols, other.cols)
            and np.array_equal(self.values, other.values, equal_nan=True)
        )

    @property
    def counts(self) -> tuple[int, int]:
        """(kept rows, kept columns)."""
        return len(self.rows), len(self.cols)


def _check_perm(perm: np.ndarray, m: int) -> None:
    _check(
        perm.shape == (m,) and np.array_equal(np.sort(perm), np.arange(m)),
        f"row permutation must be a permutation of range({m})",
    )


def _block_view(a: np.ndarray, s: int, b: int, br: int, bc: int) -> np.ndarray:
    """(S*br, B*bc) -> (S, B, bc, br): block (s, b) column-major, the packing order."""
    return a.reshape(s, br, b, bc).transpose(0, 2, 3, 1)


@dataclass(eq=False)
class BCRMatrix:
    """One (M, K) BCR matrix: kept-set masks per block, values, and row permutation."""

    shape: tuple[int, int]
    block: tuple[int, int]
    row_mask: np.ndarray
    """bool [S, B, br]: block (s, b) keeps grid row s*br + i; False past the matrix."""
    col_mask: np.ndarray
    """bool [S, B, bc]: block (s, b) keeps column b*bc + j; False past the matrix."""
    values: np.ndarray
    """float32, the packed `vals` of this matrix (block order, column-major per block)."""
    perm: np.ndarray
    """Row i of the grid is row perm[i] of the original matrix."""

    def __post_init__(self) -> None:
        self.validate()

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, BCRMatrix)
            and self.shape == other.shape
            and self.block == other.block
            and np.array_equal(self.perm, other.perm)
            and np.array_equal(self.row_mask, other.row_mask)
            and np.array_equal(self.col_mask, other.col_mask)
            and np.array_equal(self.values, other.values, equal_nan=True)
        )

    # ---------------------------------------------------------------- build

    @classmethod
    def from_dense(
        cls, w2d: np.ndarray, block: tuple[int, int], perm: np.ndarray | None = None
    ) -> BCRMatrix:
        """Detect the BCR structure present in `w2d` (its rows permuted by `perm`)."""
        w = np.asarray(w2d, dtype=np.float32)
        _check(w.ndim == 2, f"expected a 2-D matrix, got shape {w.shape}")
        s, b = grid_of(w.shape, block)
        (m, k), (br, bc) = w.shape, (int(block[0]), int(block[1]))
        perm = np.arange(m) if perm is None else np.asarray(perm)
        _check_perm(perm, m)
        grid = np.zeros((s * br, b * bc), dtype=np.float32)
        grid[:m, :k] = w[perm]
        nonzero = _block_view(grid != 0, s, b, br, bc)  # [S, B, bc, br]
        row_mask, col_mask = nonzero.any(axis=2), nonzero.any(axis=3)
        kept = col_mask[..., :, None] & row_mask[..., None, :]
        values = _block_view(grid, s, b, br, bc)[kept]
        return cls((m, k), (br, bc), row_mask, col_mask, values, perm)

    def to_dense(self) -> np.ndarray:
        """The (M, K) float32 matrix in original row order."""
        (s, b), (br, bc), (m, k) = self.grid, self.block, self.shape
        blocks = np.zeros((s, b, bc, br), dtype=np.float32)
        blocks[self.col_mask[..., :, None] & self.row_mask[..., None, :]] = self.values
        grid = blocks.transpose(0, 3, 1, 2).reshape(s * br, b * bc)[:m, :k]
        if not self.permuted():
            return np.ascontiguousarray(grid)
        dense = np.empty((m, k), dtype=np.float32)
        dense[self.perm] = grid
        return dense

    # ------------------------------------------------------------- geometry

    @property
    def grid(self) -> tuple[int, int]:
        """(stripes S, block columns B)."""
        return grid_of(self.shape, self.block)

    def row_spans(self) -> list[tuple[int, int]]:
        return _spans(self.shape[0], self.block[0])

    def col_spans(self) -> list[tuple[int, int]]:
        return _spans(self.shape[1], self.block[1])

    def kept(self) -> tuple[np.ndarray, np.ndarray]:
        """(kept rows, kept columns) per block, each int64 [S, B]."""
        return self.row_mask.sum(axis=2, dtype=np.int64), self.col_mask.sum(axis=2, dtype=np.int64)

    @property
    def blocks(self) -> list[list[Block]]:
        """[stripe][block column] as `Block` objects (slow on big matrices: for inspection)."""
        (s_count, b_count), (br, bc) = self.grid, self.block
        kr, kc = self.kept()
        ends = np.cumsum((kr * kc).ravel())
        out: list[list[Block]] = []
        for s in range(s_count):
            out.append([])
            for b in range(b_count):
                end = int(ends[s * b_count + b])
                start = end - int(kr[s, b] * kc[s, b])
                out[s].append(
                    Block(
                        np.flatnonzero(self.row_mask[s, b]) + s * br,
                        np.flatnonzero(self.col_mask[s, b]) + b * bc,
                        self.values[start:end].reshape(kc[s, b], kr[s, b]).T.copy(),
                    )
                )
        return out

    def iter_blocks(self) -> Iterator[Block]:
        """Blocks in packing order: stripes top to bottom, blocks left to right."""
        for stripe in self.blocks:
            yield from stripe

    def validate(self) -> None:
        """Raise BCRFormatError unless every BCRC invariant holds."""
        (s, b), (br, bc) = grid_of(self.shape, self.block), self.block
        _check_perm(np.asarray(self.perm), self.shape[0])
        er, ec = _extents(self.shape[0], br), _extents(self.shape[1], bc)
        for name, mask, size, extent in (
            ("row_mask", self.row_mask, br, er[:, None, None]),
            ("col_mask", self.col_mask, bc, ec[None, :, None]),
        ):
            _check(
                mask.dtype == np.bool_ and mask.shape == (s, b, size),
                f"{name} must be bool [{s}, {b}, {size}]",
            )
            _check(
                not (mask & (np.arange(size) >= extent)).any(),
                f"{name} keeps an index past the matrix edge",
            )
        kr, kc = self.kept()
        _check(
            np.array_equal(kr == 0, kc == 0),
            "a block keeps rows without columns or columns without rows",
        )
        _check(
            self.values.dtype == np.float32 and self.values.shape == (int((kr * kc).sum()),),
            "values must be 1-D float32, one per kept row x kept column",
        )

    # ------------------------------------------------------------ statistics

    def stored_values(self) -> int:
        """Values kept in BCRC, explicit zeros inside kept sub-blocks included."""
        return len(self.values)

    def density(self) -> float:
        """Stored values / (M*K): the fraction of dense work a BCR kernel does."""
        return self.stored_values() / (self.shape[0] * self.shape[1])

    def permuted(self) -> bool:
        """Are the rows reordered (perm is not the identity)?"""
        return not np.array_equal(self.perm, np.arange(self.shape[0]))

    def total_bytes(self) -> int:
        """Bytes of `pack([self])`; compare with 4*M*K for dense."""
        kr, kc = self.kept()
        return packed_bytes(kr[None], kc[None], self.shape, self.block, self.permuted())

    def index_bytes(self) -> int:
        """Bytes of everything `pack([self])` stores besides the values."""
        return self.total_bytes() - _WORD * self.stored_values()

    def keep_counts(self) -> tuple[int, int]:
        """Most (rows, columns) kept by any block."""
        kr, kc = self.kept()
        return int(kr.max()), int(kc.max())

    def is_balanced(self, keep: tuple[int, int] | None = None) -> bool:
        """Does every full block keep exactly `keep` (default: keep_counts()) rows and columns?"""
        want = self.keep_counts() if keep is None else tuple(keep)
        (br, bc), (m, k) = self.block, self.shape
        full = (_extents(m, br) == br)[:, None] & (_extents(k, bc) == bc)[None, :]
        kr, kc = self.kept()
        return bool(np.all(kr[full] == want[0]) and np.all(kc[full] == want[1]))


# ------------------------------------------------------------------ packing


@dataclass(frozen=True)
class _Plan:
    """What `pack` stores for per-block counts kr, kc [G, S, B] (see the module doc)."""

    uniform: tuple[int, int] | None
    """(kr, kc) of head when every block keeps its clipped uniform counts, else None."""
    partial_rows: np.ndarray
    """bool [G, S, B]: the block stores row indices (not row-full)."""
    partial_cols: np.ndarray

    @classmethod
    def of(
        cls, kr: np.ndarray, kc: np.ndarray, shape: tuple[int, int], block: tuple[int, int]
    ) -> _Plan:
        er = _extents(shape[0], block[0])[None, :, None]
        ec = _extents(shape[1], block[1])[None, None, :]
        keep = (int(kr.max()), int(kc.max()))
        uniform = bool(
            np.all(kr == np.minimum(keep[0], er)) and np.all(kc == np.minimum(keep[1], ec))
        )
        return cls(keep if uniform else None, kr < er, kc < ec)


def packed_bytes(
    kept_rows: np.ndarray,
    kept_cols: np.ndarray,
    shape: tuple[int, int],
    block: tuple[int, int],
    permuted: bool,
) -> int:
    """Bytes `pack` writes for G matrices keeping `kept_rows x kept_cols` ([G, S, B]) per block.

    `permuted`: whether any group reorders its rows. The exact size, so cost
    models can rank block shapes without packing.
    """
    kr, kc = np.asarray(kept_rows, dtype=np.int64), np.asarray(kept_cols, dtype=np.int64)
    plan = _Plan.of(kr, kc, shape, block)
    br, bc = block
    counts = 0 if plan.uniform else 2 * kr.size * index_dtype(max(br, bc)).itemsize
    return (
        _WORD * (_HEAD_WORDS + int((kr * kc).sum()) + (kr.shape[0] * shape[0] if permuted else 0))
        + index_dtype(br).itemsize * int(kr[plan.partial_rows].sum())
        + index_dtype(bc).itemsize * int(kc[plan.partial_cols].sum())
        + counts
    )


def _local_indices(masks: np.ndarray, stored: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Kept positions (ascending) of the blocks where `stored`, concatenated in block order."""
    return np.nonzero(masks[stored])[1].astype(dtype)


def pack(matrices: Sequence[BCRMatrix]) -> dict[str, np.ndarray]:
    """The BCRC arrays (keyed by suffix) of G same-shaped matrices, group-major."""
    _check(len(matrices) >= 1, "pack needs at least one matrix")
    first = matrices[0]
    for mat in matrices:
        _check(
            (mat.shape, mat.block) == (first.shape, first.block),
            f"cannot pack {mat.shape} blocks {mat.block} with {first.shape} blocks {first.block}",
        )
    (m, k), (br, bc) = first.shape, first.block
    row_mask = np.stack([mat.row_mask for mat in matrices])
    col_mask = np.stack([mat.col_mask for mat in matrices])
    kr, kc = row_mask.sum(axis=3, dtype=np.int64), col_mask.sum(axis=3, dtype=np.int64)
    plan = _Plan.of(kr, kc, first.shape, first.block)
    head = [VERSION, len(matrices), m, k, br, bc, *(plan.uniform or (-1, -1))]
    counts_dtype = index_dtype(max(br, bc))
    permuted = any(mat.permuted() for mat in matrices)
    return {
        "vals": np.concatenate([mat.values for mat in matrices]).astype(np.float32),
        "cols": _local_indices(col_mask, plan.partial_cols, index_dtype(bc)),
        "rows": _local_indices(row_mask, plan.partial_rows, index_dtype(br)),
        "counts": (
            np.zeros(0, counts_dtype)
            if plan.uniform
            else np.stack([kr, kc], axis=-1).ravel().astype(counts_dtype)
        ),
        "perm": (
            np.concatenate([mat.perm for mat in matrices]).astype(np.int32)
            if permuted
            else np.zeros(0, np.int32)
        ),
        "head": np.array(head, dtype=np.int32),
    }


# ---------------------------------------------------------------- unpacking


def _packed_array(arrays: Mapping[str, np.ndarray], suffix: str, kinds: str) -> np.ndarray:
    _check(suffix in arrays, f"packed BCR weight has no '{suffix}' array")
    arr = np.asarray(arrays[suffix])
    _check(
        arr.ndim == 1 and arr.dtype.kind in kinds,
        f"'{suffix}' must be a 1-D array of kind {' or '.join(repr(c) for c in kinds)}",
    )
    return arr


def _read_head(head: np.ndarray, shape: tuple[int, int], block: tuple[int, int]) -> int:
    """The group count, once `head` is checked against the expected geometry."""
    _check(len(head) == _HEAD_WORDS, f"'head' must hold {_HEAD_WORDS} words")
    _check(int(head[0]) == VERSION, f"packed BCR layout version {head[0]} (expected {VERSION})")
    found = tuple(int(x) for x in head[2:6])
    _check(
        found == (*shape, *block),
        f"'head' describes a {found[0]}x{found[1]} matrix in {found[2]}x{found[3]} blocks, "
        f"expected {shape[0]}x{shape[1]} in {block[0]}x{block[1]}",
    )
    _check(int(head[1]) >= 1, "'head' must give at least one group")
    return int(head[1])


def _read_counts(
    head: np.ndarray, counts: np.ndarray, groups: int, er: np.ndarray, ec: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-block (kept rows, kept cols), each int64 [G, S, B], checked against the extents."""
    s, b = len(er), len(ec)
    er3, ec3 = er[None, :, None], ec[None, None, :]
    uniform = (int(head[6]), int(head[7]))
    if uniform != (-1, -1):
        _check(
            min(uniform) >= 0 and not len(counts),
            "'head' keep counts must be -1, -1 or >= 0 with no 'counts'",
        )
        return (
            np.broadcast_to(np.minimum(uniform[0], er3), (groups, s, b)),
            np.broadcast_to(np.minimum(uniform[1], ec3), (groups, s, b)),
        )
    _check(len(counts) == 2 * groups * s * b, f"'counts' must hold {2 * groups * s * b} entries")
    pairs = counts.astype(np.int64).reshape(groups, s, b, 2)
    kr, kc = pairs[..., 0], pairs[..., 1]
    _check(
        bool(np.all((kr >= 0) & (kr <= er3) & (kc >= 0) & (kc <= ec3))),
        "'counts' exceed a block's extent",
    )
    return kr, kc


def _read_masks(
    local: np.ndarray,
    kept: np.ndarray,
    extent: np.ndarray,
    size: int,
    what: str,
    grid: tuple[int, ...],
) -> np.ndarray:
    """bool [G, S, B, size] masks from the stored local indices of the non-full blocks.

    `kept` and `extent` are [G, S, B]; a block keeping its whole extent stores
    no indices and keeps [0, extent).
    """
    stored = kept < extent
    lengths = kept[stored]
    _check(
        len(local) == int(lengths.sum()),
        f"'{what}' holds {len(local)} indices, the counts need {int(lengths.sum())}",
    )
    index = local.astype(np.int64)
    owner = np.repeat(np.arange(len(lengths)), lengths)
    bad = (index < 0) | (index >= extent[stored][owner])
    bad[1:] |= (owner[1:] == owner[:-1]) & (index[1:] <= index[:-1])
    if bad.any():
        g, s, b = (int(x) for x in np.argwhere(stored)[owner[np.argmax(bad)]])
        raise BCRFormatError(
            f"group {g}, block ({s}, {b}) {what}: indices must strictly increase within "
            f"[0, {int(extent[g, s, b])})"
        )
    masks = (~stored)[..., None] & (np.arange(size) < extent[..., None])
    masks.reshape(-1, size)[np.flatnonzero(stored)[owner], index] = True
    return masks.reshape(*grid, size)


def unpack(
    arrays: Mapping[str, np.ndarray], shape: tuple[int, int], block: tuple[int, int]
) -> list[BCRMatrix]:
    """Inverse of `pack`; checks every invariant, since the arrays may come from a file."""
    shape, block = (int(shape[0]), int(shape[1])), (int(block[0]), int(block[1]))
    grid_of(shape, block)
    head = _packed_array(arrays, "head", "i")
    groups = _read_head(head, shape, block)
    vals = _packed_array(arrays, "vals", "f").astype(np.float32)
    perm = _packed_array(arrays, "perm", "i").astype(np.int64)
    m = shape[0]
    _check(len(perm) in (0, groups * m), f"'perm' length must be 0 or {groups * m}")
    perms = perm.reshape(groups, m) if len(perm) else np.broadcast_to(np.arange(m), (groups, m))
    er, ec = _extents(shape[0], block[0]), _extents(shape[1], block[1])
    kr, kc = _read_counts(head, _packed_array(arrays, "counts", "iu"), groups, er, ec)
    _check(
        np.array_equal(kr == 0, kc == 0),
        "'counts' give a block rows without columns or columns without rows",
    )
    grid = (groups, len(er), len(ec))
    row_mask = _read_masks(
        _packed_array(arrays, "rows", "iu"),
        kr,
        np.broadcast_to(er[None, :, None], grid),
        block[0],
        "rows",
        grid,
    )
    col_mask = _read_masks(
        _packed_array(arrays, "cols", "iu"),
        kc,
        np.broadcast_to(ec[None, None, :], grid),
        block[1],
        "cols",
        grid,
    )
    per_group = (kr * kc).reshape(groups, -1).sum(axis=1)
    _check(
        len(vals) == int(per_group.sum()),
        f"'vals' holds {len(vals)} values, the counts need {int(per_group.sum())}",
    )
    ends = np.cumsum(per_group)
    return [
        BCRMatrix(
            shape,
            block,
            row_mask[g],
            col_mask[g],
            vals[ends[g] - per_group[g] : ends[g]],
            perms[g].copy(),
        )
        for g in range(groups)
    ]
