"""BCRC, the compact storage of BCR-sparse weight matrices (pure numpy, no IR).

**The structure (DESIGN.md §1).** A weight in its GEMM view is a matrix W of
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

**Balance.** ``keep_counts()`` is the most rows and columns any block keeps,
the bound a register-blocked kernel sizes its tile by. The matrix is
*balanced* when every full block keeps exactly that many (partial edge blocks
keep at most as many, clipped to their extent).

**Packed layout** (`pack` / `unpack`): what the weight store holds under
``<prefix>_<suffix>`` (see `store_keys`). G matrices of one shape and block
(conv groups, RNN directions) are packed one after another, group-major. Block
``i = (g*S + s)*B + b`` enumerates groups, stripes top to bottom, then blocks
left to right. All arrays are 1-D:

=======  =======  ==========================================================
suffix   dtype    contents
=======  =======  ==========================================================
vals     float32  per block i, per kept column c (ascending), per kept row r
                  (ascending): ``W_g[perm_g[r], c]``. This is the order a
                  kernel reads them: one input row, then its weight for
                  every kept row (redundant-load elimination).
cols     int32    per block i, its kept column indices, absolute in [0, K).
rows     int32    per block i, its kept row indices, absolute in the
                  permuted row space [0, M).
bptr     int32    ``G*S*B + 1`` triples ``(col_off, row_off, val_off)``:
                  block i owns ``cols[c0:c1]``, ``rows[r0:r1]``, ``vals[v0:v1]``
                  where ``(c0, r0, v0)`` is triple i and ``(c1, r1, v1)``
                  triple i+1, and ``v1 - v0 == (c1 - c0) * (r1 - r0)``.
perm     int32    ``G*M``: row i of group g's grid is output row
                  ``perm[g*M + i]`` of group g.
=======  =======  ==========================================================

So a matrix costs ``4 * (values + kept cols + kept rows + 3*(S*B + 1) + M)``
bytes (`total_bytes`), against ``4*M*K`` dense: no per-weight index.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from grimc.errors import GrimcError

SUFFIXES = ("vals", "cols", "rows", "bptr", "perm")
"""Weight-store key suffixes of one packed BCR weight, in layout order."""

_WORD = 4  # bytes per float32 value and per int32 index


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


def _detect(sub: np.ndarray, row0: int, col0: int) -> Block:
    """The smallest kept sets covering the nonzeros of one block `sub`."""
    nonzero = sub != 0
    rows = np.flatnonzero(nonzero.any(axis=1))
    cols = np.flatnonzero(nonzero.any(axis=0))
    return Block(rows + row0, cols + col0, sub[np.ix_(rows, cols)])


def _check_kept(
    kept: Sequence[np.ndarray], spans: np.ndarray, grid_cols: int, what: str
) -> None:
    """Each block's kept `what` lie in its span [lo, hi) and strictly increase.

    Vectorized over all blocks (kept[i] and spans[i] belong to block i), since
    validation runs on every matrix built or loaded.
    """
    _check(all(k.ndim == 1 for k in kept), f"kept {what} must be 1-D index arrays")
    owner = np.repeat(np.arange(len(kept)), [len(k) for k in kept])
    flat = np.concatenate(kept)
    bad = (flat < spans[owner, 0]) | (flat >= spans[owner, 1])
    bad[1:] |= (owner[1:] == owner[:-1]) & (flat[1:] <= flat[:-1])
    if bad.any():
        i = owner[np.argmax(bad)]
        lo, hi = spans[i]
        raise BCRFormatError(
            f"block ({i // grid_cols}, {i % grid_cols}) {what}: indices must strictly "
            f"increase within [{lo}, {hi})"
        )


def _check_perm(perm: np.ndarray, m: int) -> None:
    _check(
        perm.shape == (m,) and np.array_equal(np.sort(perm), np.arange(m)),
        f"row permutation must be a permutation of range({m})",
    )


@dataclass(eq=False)
class BCRMatrix:
    """One (M, K) BCR matrix: its blocks, row-major over the grid, and row permutation."""

    shape: tuple[int, int]
    block: tuple[int, int]
    blocks: list[list[Block]]
    """[stripe][block column]."""
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
            and self.blocks == other.blocks
        )

    # ---------------------------------------------------------------- build

    @classmethod
    def from_dense(
        cls, w2d: np.ndarray, block: tuple[int, int], perm: np.ndarray | None = None
    ) -> BCRMatrix:
        """Detect the BCR structure present in `w2d` (its rows permuted by `perm`)."""
        w = np.asarray(w2d, dtype=np.float32)
        _check(w.ndim == 2, f"expected a 2-D matrix, got shape {w.shape}")
        grid_of(w.shape, block)
        m, k = w.shape
        perm = np.arange(m) if perm is None else np.asarray(perm)
        _check_perm(perm, m)
        wp = w[perm]
        blocks = [
            [_detect(wp[r0:r1, c0:c1], r0, c0) for c0, c1 in _spans(k, block[1])]
            for r0, r1 in _spans(m, block[0])
        ]
        return cls((m, k), (int(block[0]), int(block[1])), blocks, perm)

    def to_dense(self) -> np.ndarray:
        """The (M, K) float32 matrix in original row order."""
        grid = np.zeros(self.shape, dtype=np.float32)
        for blk in self.iter_blocks():
            grid[np.ix_(blk.rows, blk.cols)] = blk.values
        dense = np.empty_like(grid)
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

    def iter_blocks(self) -> Iterator[Block]:
        """Blocks in packing order: stripes top to bottom, blocks left to right."""
        for stripe in self.blocks:
            yield from stripe

    def validate(self) -> None:
        """Raise BCRFormatError unless every BCRC invariant holds."""
        grid_of(self.shape, self.block)
        _check_perm(np.asarray(self.perm), self.shape[0])
        rows, cols = self.row_spans(), self.col_spans()
        _check(
            len(self.blocks) == len(rows) and all(len(s) == len(cols) for s in self.blocks),
            f"block grid must be {len(rows)} x {len(cols)}",
        )
        blocks = list(self.iter_blocks())
        n_cols = len(cols)
        owned_rows = np.repeat(np.array(rows), n_cols, axis=0)
        owned_cols = np.tile(np.array(cols), (len(rows), 1))
        _check_kept([blk.rows for blk in blocks], owned_rows, n_cols, "rows")
        _check_kept([blk.cols for blk in blocks], owned_cols, n_cols, "cols")
        for i, blk in enumerate(blocks):
            where = f"block ({i // n_cols}, {i % n_cols})"
            _check(
                blk.values.shape == blk.counts and blk.values.dtype == np.float32,
                f"{where}: values must be float32 {list(blk.counts)}",
            )
            _check(
                (len(blk.rows) == 0) == (len(blk.cols) == 0),
                f"{where}: keeps rows without columns or columns without rows",
            )

    # ------------------------------------------------------------ statistics

    def stored_values(self) -> int:
        """Values kept in BCRC, explicit zeros inside kept sub-blocks included."""
        return sum(blk.values.size for blk in self.iter_blocks())

    def density(self) -> float:
        """Stored values / (M*K): the fraction of dense work a BCR kernel does."""
        return self.stored_values() / (self.shape[0] * self.shape[1])

    def index_bytes(self) -> int:
        """Bytes of cols, rows, bptr and perm when this matrix is packed alone."""
        kept = sum(len(blk.rows) + len(blk.cols) for blk in self.iter_blocks())
        s, b = self.grid
        return _WORD * (kept + 3 * (s * b + 1) + self.shape[0])

    def total_bytes(self) -> int:
        """Bytes of `pack([self])`; compare with 4*M*K for dense."""
        return _WORD * self.stored_values() + self.index_bytes()

    def keep_counts(self) -> tuple[int, int]:
        """Most (rows, columns) kept by any block."""
        counts = [blk.counts for blk in self.iter_blocks()]
        return max(r for r, _ in counts), max(c for _, c in counts)

    def is_balanced(self, keep: tuple[int, int] | None = None) -> bool:
        """Does every full block keep exactly `keep` (default: keep_counts()) rows and columns?"""
        want = self.keep_counts() if keep is None else tuple(keep)
        rows, cols = self.row_spans(), self.col_spans()
        return all(
            blk.counts == want
            for s, stripe in enumerate(self.blocks)
            for b, blk in enumerate(stripe)
            if rows[s][1] - rows[s][0] == self.block[0] and cols[b][1] - cols[b][0] == self.block[1]
        )


# ------------------------------------------------------------------ packing


def pack(matrices: Sequence[BCRMatrix]) -> dict[str, np.ndarray]:
    """The BCRC arrays (keyed by suffix) of G same-shaped matrices, group-major."""
    _check(len(matrices) >= 1, "pack needs at least one matrix")
    first = matrices[0]
    for mat in matrices:
        _check(
            (mat.shape, mat.block) == (first.shape, first.block),
            f"cannot pack {mat.shape} blocks {mat.block} with {first.shape} blocks {first.block}",
        )
    blocks = [blk for mat in matrices for blk in mat.iter_blocks()]
    sizes = np.array([(len(b.cols), len(b.rows), b.values.size) for b in blocks], dtype=np.int64)
    bptr = np.zeros((len(blocks) + 1, 3), dtype=np.int64)
    bptr[1:] = np.cumsum(sizes, axis=0)
    return {
        "vals": np.concatenate([b.values.T.ravel() for b in blocks]).astype(np.float32),
        "cols": np.concatenate([b.cols for b in blocks]).astype(np.int32),
        "rows": np.concatenate([b.rows for b in blocks]).astype(np.int32),
        "bptr": bptr.astype(np.int32).ravel(),
        "perm": np.concatenate([mat.perm for mat in matrices]).astype(np.int32),
    }


def _packed_array(arrays: Mapping[str, np.ndarray], suffix: str, kind: str) -> np.ndarray:
    _check(suffix in arrays, f"packed BCR weight has no '{suffix}' array")
    arr = np.asarray(arrays[suffix])
    _check(arr.ndim == 1 and arr.dtype.kind == kind, f"'{suffix}' must be a 1-D array of kind {kind!r}")
    return arr


def unpack(
    arrays: Mapping[str, np.ndarray], shape: tuple[int, int], block: tuple[int, int]
) -> list[BCRMatrix]:
    """Inverse of `pack`; checks every invariant, since the arrays may come from a file."""
    vals = _packed_array(arrays, "vals", "f").astype(np.float32)
    cols = _packed_array(arrays, "cols", "i").astype(np.int64)
    rows = _packed_array(arrays, "rows", "i").astype(np.int64)
    perm = _packed_array(arrays, "perm", "i").astype(np.int64)
    flat_ptr = _packed_array(arrays, "bptr", "i").astype(np.int64)
    s_count, b_count = grid_of(shape, block)
    m, per_group = shape[0], s_count * b_count
    _check(len(perm) >= m and len(perm) % m == 0, f"'perm' length must be a multiple of {m}")
    groups = len(perm) // m
    _check(len(flat_ptr) == 3 * (groups * per_group + 1), "'bptr' length does not match the grid")
    ptr = flat_ptr.reshape(-1, 3)
    _check(
        not ptr[0].any() and bool(np.all(np.diff(ptr, axis=0) >= 0)),
        "'bptr' must start at 0 and never decrease",
    )
    _check(tuple(ptr[-1]) == (len(cols), len(rows), len(vals)), "'bptr' must end at the array lengths")
    sizes = np.diff(ptr, axis=0)
    _check(bool(np.all(sizes[:, 2] == sizes[:, 0] * sizes[:, 1])), "'bptr' value counts != cols x rows")

    def block_at(i: int) -> Block:
        (c0, r0, v0), (c1, r1, v1) = ptr[i], ptr[i + 1]
        values = vals[v0:v1].reshape(c1 - c0, r1 - r0).T.copy()
        return Block(rows[r0:r1], cols[c0:c1], values)

    return [
        BCRMatrix(
            (shape[0], shape[1]),
            (block[0], block[1]),
            [
                [block_at(g * per_group + s * b_count + b) for b in range(b_count)]
                for s in range(s_count)
            ],
            perm[g * m : (g + 1) * m],
        )
        for g in range(groups)
    ]
