"""CSR baseline kernels for BCR ops (`--sparse-format=csr`): what BCR is measured against.

The same weights (decoded from BCRC, in original row order, no reordering) in
plain compressed sparse rows: per output row, its nonzeros as (column, value).

- `csr_conv`: one output row at a time, vectorized over a tile of output
  pixels; every nonzero loads its own input vector (no register blocking
  across rows, so no load reuse). Like the BCR kernel it needs no im2col: a
  nonzero's column k = (ci, r, s) is stored as its input offset, and padding
  uses the same compile-time lane masks, looked up per nonzero since CSR
  columns are in column order, not grouped by kernel position.
- `csr_matmul`: scalar sparse dot products, one output row and batch row at
  a time (two partial sums).

Threads split output rows balanced by nonzeros, into the tasks of the op's
`#sched.csr` (which also sets csr_conv's pixel tile).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grimc.dialects import bcr
from grimc.dialects.sched import CsrSchedule, schedule_of
from grimc.emit.kernel import KernelInstance, LoweringContext, act_params
from grimc.emit.kernels.bcr import (
    balanced_bounds,
    float_blob,
    int_blob,
    load_weight,
)
from grimc.emit.kernels.bcr_conv import ConvGeometry
from grimc.emit.kernels.bcr_matmul import linear_shape


def csr_arrays(dense: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(row_ptr, cols, vals, owner group per row) over all groups' rows."""
    rows = [r for d in dense for r in d]
    cols = [np.flatnonzero(r) for r in rows]
    row_ptr = np.concatenate([[0], np.cumsum([len(c) for c in cols])])
    vals = np.concatenate([r[c] for r, c in zip(rows, cols, strict=True)] or [[]])
    owner = np.repeat(np.arange(len(dense)), [d.shape[0] for d in dense])
    return row_ptr, np.concatenate(cols or [[]]).astype(np.int64), vals, owner


def original_order(ctx: LoweringContext, op: bcr.SparseLinearOp) -> list[np.ndarray]:
    """Each group's weight matrix in its original row order (CSR does not reorder)."""
    mats, grids = load_weight(ctx, op.weights.data, op.encoding)
    dense = []
    for mat, grid in zip(mats, grids, strict=True):
        w = np.empty_like(grid)
        w[np.asarray(mat.perm)] = grid
        dense.append(w)
    return dense


def _common(
    op: bcr.SparseLinearOp,
    ctx: LoweringContext,
    inputs: list[tuple[str, Any]],
    row_nnz: np.ndarray,
) -> tuple[list[tuple[str, Any]], list[int]]:
    if op.b is not None:
        inputs.append(("b", ctx.operand(op.b)))
    if op.residual is not None:
        inputs.append(("res", ctx.operand(op.residual)))
    ntasks = schedule_of(op, CsrSchedule).threads.data
    return inputs, balanced_bounds(row_nnz + 1, ntasks)


def lower_csr_conv(op: bcr.Conv2dOp, ctx: LoweringContext) -> KernelInstance:
    geo = ConvGeometry.of(op)
    dense = original_order(ctx, op)
    row_ptr, cols, vals, owner = csr_arrays(dense)
    vw = ctx.target.vw
    nv = schedule_of(op, CsrSchedule).nv.data
    masks = geo.lane_masks(nv * vw, vw)
    masked = bool((masks != (1 << vw) - 1).any())
    entry_owner = np.repeat(owner, np.diff(row_ptr))
    offsets = geo.input_offset(cols, 0) + entry_owner * geo.cin_g * geo.h * geo.w
    nnz = len(vals)
    pixels = geo.oh * geo.ow
    inputs: list[tuple[str, Any]] = [
        ("x", ctx.operand(op.x)),
        ("val", float_blob(ctx, vals, "csr_val")),
        ("off", int_blob(ctx, offsets, "csr_off")),
        ("ptr", int_blob(ctx, row_ptr, "csr_ptr")),
    ]
    if masked:
        inputs.append(("pos", int_blob(ctx, geo.position(cols), "csr_pos")))
        inputs.append(("mask", int_blob(ctx, masks, "csr_mask")))
    inputs, bounds = _common(op, ctx, inputs, np.diff(row_ptr))
    ntiles, per_row = geo.tiles(nv * vw)
    params = {
        "n": geo.n,
        "cin": geo.cin,
        "cout": geo.cout,
        "h": geo.h,
        "w": geo.w,
        "oh": geo.oh,
        "ow": geo.ow,
        "kh": geo.kh,
        "kw": geo.kw,
        "sh": geo.sh,
        "sw": geo.sw,
        "pt": geo.pt,
        "pl": geo.pl,
        "groups": geo.groups,
        "nv": nv,
        "mode": "flat" if geo.is_linear else "rows",
        "masked": masked,
        "npos": geo.npos,
        "ntiles": ntiles,
        "per_row": per_row,
        "xs": geo.cin * geo.h * geo.w,
        "ys": geo.cout * pixels,
        "ohw": pixels,
        "base0": -(geo.pt * geo.w + geo.pl),
        "nnz": nnz,
        "bounds": bounds,
        "act": act_params(op.act),
    }
    return KernelInstance(
        kind="csr_conv",
        params=params,
        inputs=inputs,
        outputs=[("y", ctx.result(op.y))],
        flops=2 * nnz * pixels * geo.n,
    )


def lower_csr_matmul(op: bcr.MatMulOp, ctx: LoweringContext) -> KernelInstance:
    nb, k, m = linear_shape(op)
    dense = original_order(ctx, op)
    row_ptr, cols, vals, _ = csr_arrays(dense)
    nnz = len(vals)
    inputs: list[tuple[str, Any]] = [
        ("x", ctx.operand(op.x)),
        ("val", float_blob(ctx, vals, "csr_val")),
        ("col", int_blob(ctx, cols, "csr_col")),
        ("ptr", int_blob(ctx, row_ptr, "csr_ptr")),
    ]
    inputs, bounds = _common(op, ctx, inputs, np.diff(row_ptr))
    params = {"nb": nb, "k": k, "mtot": m, "nnz": nnz, "bounds": bounds, "act": act_params(op.act)}
    return KernelInstance(
        kind="csr_matmul",
        params=params,
        inputs=inputs,
        outputs=[("y", ctx.result(op.y))],
        flops=2 * nnz * nb,
    )
