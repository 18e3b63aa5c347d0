"""BCR-sparse `bcr.conv2d` and `bcr.matmul`: decode BCRC, repack into kernel read order.

The weight store holds a BCR weight in its compact, block-ordered BCRC layout
(`grimc.bcr_format`). A register-blocked kernel reads it differently: one
*register group* of R consecutive output rows (of the reordered row space) at
a time, walking one list over the kept columns of all blocks those rows cross;
each list entry is the column's input offset plus its R weights, so one input
vector load feeds R FMAs (redundant-load elimination). This module turns BCRC
into those lists at compile time (`row_groups`), chooses the register group
and tile size from the sparsity actually present (`choose_tile`), and splits groups
over threads by nonzeros (`balanced_bounds`). The per-op lowerings are in
`bcr_conv.py` and `bcr_matmul.py`; `csr.py` is the CSR baseline, chosen with
`LoweringContext.sparse_format == "csr"` or a `sparse_format = "csr"`
attribute on the op.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.dialects.builtin import DictionaryAttr, IntegerAttr, StringAttr
from xdsl.ir import Operation

from grimc.bcr_format import BCRFormatError, BCRMatrix, store_keys, unpack
from grimc.dialects.bcr import EncodingAttr, ScheduleAttr
from grimc.emit.kernel import BlobRef, CodegenError, LoweringContext
from grimc.target import RegisterBudget

FORMATS = ("bcr", "csr")
FORMAT_ATTR = "sparse_format"
"""Discardable op attribute that overrides `LoweringContext.sparse_format`."""

PARAMS_ATTR = "kernel_params"
"""Discardable op attribute, a dictionary of schedule knobs (ints or strings) that
override the lowering's choices: what a tuner sets for knobs #bcr.schedule has
no field for (e.g. `{pf = 16, tblock = 8}`)."""

MAX_PARALLEL_GRAIN = 50_000
"""Below this many multiply-adds per thread, waking the pool costs more than it saves."""


def sparse_format(op: Operation, ctx: LoweringContext) -> str:
    """ "bcr" or "csr": the op's `sparse_format` attribute, else the context's option."""
    attr = op.attributes.get(FORMAT_ATTR)
    fmt = attr.data if isinstance(attr, StringAttr) else ctx.sparse_format
    if fmt not in FORMATS:
        raise CodegenError(f"{op.name}: unknown sparse format '{fmt}' (expected bcr or csr)")
    return fmt


def param_overrides(op: Operation, allowed: Iterable[str]) -> dict[str, int | str]:
    """The op's `kernel_params` overrides, checked against the knobs a kernel has."""
    attr = op.attributes.get(PARAMS_ATTR)
    if attr is None:
        return {}
    if not isinstance(attr, DictionaryAttr):
        raise CodegenError(f"{op.name}: {PARAMS_ATTR} must be a dictionary")
    allowed = set(allowed)
    out: dict[str, int | str] = {}
    for key, value in attr.data.items():
        if key not in allowed:
            raise CodegenError(
                f"{op.name}: unknown kernel parameter '{key}' (expected {', '.join(sorted(allowed))})"
            )
        if isinstance(value, IntegerAttr):
            out[key] = int(value.value.data)
        elif isinstance(value, StringAttr):
            out[key] = value.data
        else:
            raise CodegenError(f"{op.name}: kernel parameter '{key}' must be an integer or string")
    return out


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


def group_counts(grids: Sequence[np.ndarray], rows: int) -> np.ndarray:
    """List length of every register group if rows are grouped R at a time (no lists built)."""
    counts = [
        (_padded(wp, rows) != 0).reshape(-1, rows, wp.shape[1]).any(axis=1).sum(axis=1)
        for wp in grids
    ]
    return np.concatenate(counts).astype(np.int64)


def group_entries(grids: Sequence[np.ndarray], rows: int) -> int:
    """Total list entries if rows are grouped R at a time."""
    return int(group_counts(grids, rows).sum())


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


def entry_cycles(rows: int, nv: int, budget: RegisterBudget) -> float:
    """Modeled cycles of one list entry over one tile of nv vectors.

    R*nv FMAs, nv input loads + R weight broadcasts, and the FMA latency: each
    accumulator is updated once per entry, so an entry takes at least that long;
    plus a fixed cost per entry (its offset load, loop control, prefetch), which
    wider tiles amortize.
    """
    return budget.entry_overhead + max(
        rows * nv / budget.fma_per_cycle,
        (nv + rows) / budget.loads_per_cycle,
        budget.fma_latency,
    )


def choose_tile(
    grids: Sequence[np.ndarray],
    budget: RegisterBudget,
    block_rows: int,
    tiles: Callable[[int], int],
    rows: int | None = None,
) -> tuple[int, int]:
    """(R rows per register group, nv vectors per tile) minimizing modeled cycles.

    Cycles = list entries when grouping R rows (grouping more rows shares input
    loads but pays for the zeros of rows that do not keep a column) x tiles of
    nv vectors (`tiles(nv)`, padding included) x `entry_cycles`. R*nv
    accumulators must fit the register file. `rows` fixes R. Ties go to the
    larger R (fewer loads), then to R near the block's rows, then to wider tiles.
    """
    ranked = []
    for r in [rows] if rows else range(1, budget.max_rows + 1):
        entries = group_entries(grids, r)
        for nv in range(1, budget.max_vectors + 1):
            if r * nv > budget.accumulators and nv > 1:
                break
            cost = round(entries * tiles(nv) * entry_cycles(r, nv, budget), 6)
            ranked.append(((cost, -r, abs(r - block_rows), -nv), (r, nv)))
    return min(ranked)[1]


# --------------------------------------------------------------------------
# schedule and thread split


def is_default(schedule: ScheduleAttr) -> bool:
    """An untuned schedule: every knob is chosen by the lowering's heuristics."""
    return schedule == ScheduleAttr()


def task_count(schedule: ScheduleAttr, ctx: LoweringContext, work: int) -> int:
    """How many tasks a kernel of `work` multiply-adds splits into.

    A schedule that names threads > 1 is honoured as is (tuners, tests);
    otherwise the compile option's thread count, unless the work is too small
    to repay waking the pool (`MAX_PARALLEL_GRAIN` per thread).
    """
    if schedule.threads.data > 1:
        return schedule.threads.data
    if ctx.threads <= 1:
        return 1
    return max(1, min(ctx.threads, work // MAX_PARALLEL_GRAIN))


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
