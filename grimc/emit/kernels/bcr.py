"""BCR-sparse `bcr.conv2d` and `bcr.matmul`: decode BCRC, repack into kernel read order.

The weight store holds a BCR weight in its compact, block-ordered BCRC layout
(`grimc.bcr_format`). A register-blocked kernel reads it differently: one
*register group* of R consecutive output rows (of the reordered row space) at
a time, walking one list over the kept columns of all blocks those rows cross;
each list entry is the column's input offset plus its R weights, so one input
vector load feeds R FMAs (redundant-load elimination). This module turns BCRC
into those lists at compile time (`row_groups`) for the register grouping the
op's schedule names (chosen by the schedule-select pass), and splits groups
over threads by nonzeros (`balanced_bounds`). The per-op lowerings are in
`bcr_conv.py` and `bcr_matmul.py`; `csr.py` is the CSR baseline, which a
`#sched.csr` schedule selects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from grimc.bcr_format import BCRFormatError, BCRMatrix, store_keys, unpack
from grimc.dialects.bcr import EncodingAttr
from grimc.emit.kernel import BlobRef, CodegenError, LoweringContext


def load_matrices(ctx: LoweringContext, prefix: str, encoding: EncodingAttr) -> list[BCRMatrix]:
    """Decode `<prefix>_*` from the weight store, checking it against the encoding."""
    return load_weight(ctx, prefix, encoding)[0]


def load_weight(
    ctx: LoweringContext, prefix: str, encoding: EncodingAttr
) -> tuple[list[BCRMatrix], list[np.ndarray]]:
    """The decoded matrices (checked by `unpack`) and their `grid_dense` arrays."""
    keys = store_keys(prefix)
    present = set(ctx.store)  # iterate: the store's lookup raises on a missing key
    missing = [k for k in keys.values() if k not in present]
    if missing:
        raise CodegenError(f"packed weight '{prefix}' is missing {', '.join(missing)}")
    arrays = {suffix: np.asarray(ctx.store[key]) for suffix, key in keys.items()}
    m, k = encoding.matrix_shape
    try:
        mats = unpack(arrays, (m, k), encoding.block_shape)
    except BCRFormatError as exc:
        raise CodegenError(f"packed weight '{prefix}': {exc}") from None
    if len(mats) != encoding.num_groups:
        raise CodegenError(
            f"packed weight '{prefix}' holds {len(mats)} groups, encoding says {encoding.num_groups}"
        )
    if not np.all(np.isfinite(arrays["vals"])):
        raise CodegenError(f"packed weight '{prefix}' has non-finite values")
    return mats, [grid_dense(mat)[0] for mat in mats]


def grid_dense(mat: BCRMatrix) -> tuple[np.ndarray, np.ndarray]:
    """(W[perm], perm): the matrix in the reordered row space, and where each row goes."""
    perm = np.asarray(mat.perm, dtype=np.int64)
    return mat.to_dense()[perm], perm


# --------------------------------------------------------------------------
# register groups


@dataclass
class RowGroups:
    """Register groups of R rows over G matrices, each with its column list.

    Group i covers rows [a, a + R) of matrix `owner[i]`'s reordered row space;
    `orow[i*R + j]` is the output row (owner*M + perm[a + j]) or -1 past M.
    `cols[i]` are its columns (any nonzero in the R rows), in kernel order;
    `weights[i]` is [len(cols[i]), R].
    """

    rows: int
    owner: list[int]
    orow: np.ndarray
    cols: list[np.ndarray]
    weights: list[np.ndarray]

    @property
    def count(self) -> int:
        return len(self.owner)

    def entries(self) -> np.ndarray:
        """List length per group (the work of a group is proportional to it)."""
        return np.array([len(c) for c in self.cols], dtype=np.int64)

    def total_entries(self) -> int:
        return int(self.entries().sum())


ColumnKey = Callable[[np.ndarray], np.ndarray]
"""Sort key of a group's columns (e.g. conv: kernel position, then channel)."""


def _padded(wp: np.ndarray, rows: int) -> np.ndarray:
    m = wp.shape[0]
    pad = -m % rows
    return np.pad(wp, ((0, pad), (0, 0))) if pad else wp


def row_groups(
    mats: Sequence[BCRMatrix],
    rows: int,
    key: ColumnKey | None = None,
    grids: Sequence[np.ndarray] | None = None,
) -> RowGroups:
    """Cut each matrix's reordered rows into groups of `rows` and list their columns.

    `grids` are the matrices' `grid_dense` arrays when the caller has them already
    (densifying a large weight is the slow part of compiling it).
    """
    owner: list[int] = []
    orow: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    for g, mat in enumerate(mats):
        if grids is None:
            wp, perm = grid_dense(mat)
        else:
            wp, perm = grids[g], np.asarray(mat.perm, dtype=np.int64)
        m = wp.shape[0]
        padded = _padded(wp, rows)
        out = np.full(padded.shape[0], -1, dtype=np.int64)
        out[:m] = g * m + perm
        for a in range(0, padded.shape[0], rows):
            block = padded[a : a + rows]
            c = np.flatnonzero((block != 0).any(axis=0))
            if key is not None and len(c):
                c = c[np.argsort(key(c), kind="stable")]
            owner.append(g)
            orow.append(out[a : a + rows])
            cols.append(c)
            weights.append(np.ascontiguousarray(block[:, c].T, dtype=np.float32))
    return RowGroups(rows, owner, np.concatenate(orow).astype(np.int32), cols, weights)


def balanced_bounds(costs: Sequence[int] | np.ndarray, ntasks: int) -> list[int]:
    """Cut items into `ntasks` contiguous ranges of nearly equal total cost.

    Returns ntasks+1 increasing bounds from 0 to len(costs); fewer tasks when
    there are fewer items than tasks (every task gets at least one item).
    """
    n = len(costs)
    ntasks = max(1, min(ntasks, n))
    if n == 0:
        return [0, 0]
    cum = np.cumsum(np.asarray(costs, dtype=np.float64) + 1e-3)
    bounds = [0]
    for t in range(1, ntasks):
        cut = int(np.searchsorted(cum, cum[-1] * t / ntasks, side="left")) + 1
        cut = min(max(cut, bounds[-1] + 1), n - (ntasks - t))
        bounds.append(cut)
    bounds.append(n)
    return bounds


def int_blob(
    ctx: LoweringContext, values: Sequence[int] | np.ndarray, hint: str, pad: int = 0
) -> BlobRef:
    """An int32 blob (at least one element, `pad` zeros appended for read-ahead)."""
    arr = np.asarray(values, dtype=np.int64).ravel()
    if arr.size and (arr.max() > np.iinfo(np.int32).max or arr.min() < np.iinfo(np.int32).min):
        raise CodegenError(f"{hint}: index out of int32 range")
    arr = np.concatenate([arr, np.zeros(max(pad, 1 - arr.size), dtype=np.int64)])
    return ctx.blob(arr.astype(np.int32), hint, dtype=np.int32)


def float_blob(ctx: LoweringContext, values: np.ndarray, hint: str) -> BlobRef:
    """A float32 blob with at least one element."""
    arr = np.asarray(values, dtype=np.float32).ravel()
    if arr.size == 0:
        arr = np.zeros(1, dtype=np.float32)
    return ctx.blob(arr, hint)
