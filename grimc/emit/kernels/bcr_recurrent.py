"""BCR-sparse ONNX RNN, GRU and LSTM cells (`bcr.rnn`, `bcr.gru`, `bcr.lstm`, layout 0).

Same semantics, scratch and gate math as the dense cells (`recurrent.py`);
only the two matrix products are sparse:

1. **Input projection** of all time steps and directions at once, a nested
   sparse kernel: `xp[seq*batch, dirs*G*H] = X W^T + bias`, rendered by
   the `bcr.matmul` machinery (`bcr_spmm` in GEMM mode for many rows,
   `bcr_gemv` for few; `csr_matmul` for the CSR format). The W matrices of
   the directions are its groups, so its output row `d*G*H + g*H + j` is
   exactly the projected input of gate g, unit j. The bias holds Wb and the
   foldable Rb, as in the dense kernel.
2. **Recurrence**, per step: `R h_{t-1}` as a register-blocked sparse GEMV
   fused with the gate math. Hidden units are cut into chunks of vw units
   (one vector); the thread that owns a chunk computes the recurrent rows of
   every gate of its units and finishes their h (and c) in registers. The
   rows of one gate in a chunk form q *register groups* of p = vw/q
   consecutive units. A group has one list over the columns any of its p
   rows keeps (in BCR, the kept columns of the block stripe the rows lie
   in), padded to a multiple of q; each list entry is q columns and one
   weight vector whose lane i*q + s holds row i's weight for column s. The
   input vector of an entry is h at its q columns, repeated p times (q = 1:
   one broadcast of h[col]; q = 2: two broadcasts merged; more: q loads and
   one block broadcast), so each h value is loaded once per entry and feeds
   the p rows of the block stripe in its lanes (redundant-load elimination);
   the weights stream once per step in read order. At the end the q
   accumulators of a chunk's gate fold (sums of q adjacent lanes) into one
   vector of vw units: no horizontal sum per row. q follows the block
   height: p rows of one block stripe share their columns, more rows add
   zeros, fewer cost more input loads per FMA (`choose_q` models both from
   the lists actually built). Loading h straight from the state beat
   gathering each list into a buffer first (hardware or scalar gathers, then
   block broadcasts) on AVX-512 and AVX2 by 30-50%.
   Threads split the chunks of a step, balanced by list entries.

The CSR variant (`sparse_format = "csr"`, the baseline) keeps the structure
and the gate math but computes each recurrent row as a scalar sparse dot
product over its own nonzeros (no register blocking, no load reuse).

The bcr-reorder permutation of R is not used: the gate math needs the rows
of all gates of one unit together, so groups are built from R's rows in
their original (unit) order, which is also where pruning puts the blocks.
The recurrence's knobs (q, bb, sets, ntasks) are the op's `#sched.sparse_cell`
schedule, chosen by the schedule-select pass (`choose_q` there models q).
The projection kernel runs the op's `sched.proj` schedule (`#sched.spmm`,
`#sched.gemv` or `#sched.csr`, chosen by schedule-select) as for a `bcr.matmul`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from grimc.dialects import bcr
from grimc.dialects.sched import (
    PROJECTION_ATTR,
    CsrSchedule,
    GemvSchedule,
    SpmmSchedule,
    schedule_of,
)
from grimc.emit.kernel import (
    ActRef,
    CodegenError,
    KernelInstance,
    LoweringContext,
    Ref,
    lowers,
    shape,
)
from grimc.emit.kernels.bcr import (
    balanced_bounds,
    float_blob,
    grid_dense,
    int_blob,
    load_matrices,
)
from grimc.emit.kernels.bcr_matmul import _gemm, _gemv
from grimc.emit.kernels.csr import csr_arrays
from grimc.emit.kernels.recurrent import (
    Cell,
    cell_knobs,
    cell_of,
    cell_params,
    const_operand,
    pad_gates,
    projection_bias,
    scratch_layout,
    state_args,
)

# --------------------------------------------------------------------------
# register groups of the recurrence


@dataclass
class RecGroups:
    """The recurrent lists of all groups, in kernel order.

    Group ((d * chunks + c) * G + g) * q + j holds units c*vw + j*p + [0, p) of
    gate g, direction d. `gptr` are entry offsets (weights at gptr*vw, columns
    at gptr*q); `weights` [entries, vw] with lane i*q + s = row i, column s.
    """

    q: int
    weights: np.ndarray
    cols: np.ndarray
    gptr: np.ndarray

    @property
    def entries(self) -> np.ndarray:
        return np.diff(self.gptr)


def group_rows(r: np.ndarray, gates: int, hidden: int, vw: int, q: int) -> np.ndarray:
    """R [dirs, G*H, H] -> [groups, p, H] in kernel group order (zero rows past H)."""
    dirs = r.shape[0]
    chunks = math.ceil(hidden / vw)
    padded = pad_gates(r, gates, hidden, chunks * vw)  # [dirs, G, Hp, H]
    p = vw // q
    grouped = padded.reshape(dirs, gates, chunks, q, p, hidden).transpose(0, 2, 1, 3, 4, 5)
    return grouped.reshape(-1, p, hidden)


def list_lengths(r: np.ndarray, gates: int, hidden: int, vw: int, q: int) -> np.ndarray:
    """Entries of every group (columns any of its rows keeps, / q rounded up)."""
    nz = (group_rows(r, gates, hidden, vw, q) != 0).any(axis=1).sum(axis=1)
    return -(-nz // q)


def pack_groups(r: np.ndarray, gates: int, hidden: int, vw: int, q: int) -> RecGroups:
    """The lists of every group: columns ascending, padded to q with the last one
    (zero weight, a valid address to load)."""
    p = vw // q
    weights, cols, counts = [], [], []
    for block in group_rows(r, gates, hidden, vw, q):
        c = np.flatnonzero((block != 0).any(axis=0))
        n = -(-len(c) // q)
        pad = n * q - len(c)
        w = np.zeros((p, n * q), dtype=np.float32)
        w[:, : len(c)] = block[:, c]
        if pad:
            c = np.concatenate([c, np.full(pad, c[-1])])
        weights.append(w.reshape(p, n, q).transpose(1, 0, 2).reshape(n, p * q))
        cols.append(c)
        counts.append(n)
    gptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return RecGroups(
        q,
        np.concatenate(weights) if weights else np.zeros((0, vw), np.float32),
        np.concatenate(cols).astype(np.int64) if cols else np.zeros(0, np.int64),
        gptr,
    )


def q_choices(vw: int) -> list[int]:
    """Powers of two dividing the vector width: 1, 2, ..., vw."""
    return [1 << i for i in range(vw.bit_length()) if (1 << i) <= vw]


def phase_bounds(costs: np.ndarray, cell: Cell, dirs: int, chunks: int, ntasks: int) -> list:
    """Per phase, per direction: ntasks+1 chunk bounds balanced by the chunk costs.

    `costs` [dirs, chunks, G]: work of each gate's rows of a chunk."""
    out = []
    for gl in cell.phases:
        per = costs[:, :, list(gl)].sum(axis=2)
        bounds = [balanced_bounds(per[d] + 1, ntasks) for d in range(dirs)]
        out.append([b + [b[-1]] * (ntasks + 1 - len(b)) for b in bounds])
    return out


# --------------------------------------------------------------------------
# the input projection (a nested kernel)


def _weights(ctx: LoweringContext, op: bcr.RecurrentOp, which: str) -> list:
    return load_matrices(ctx, getattr(op, f"{which}_weights").data, getattr(op, f"{which}_encoding"))


def projection_kernel(
    op: bcr.RecurrentOp, ctx: LoweringContext, nb: int, bias: np.ndarray | None, scratch: ActRef,
) -> KernelInstance:
    """xp = X W^T + bias over all steps and directions: the W matrices of the
    directions are the groups of one sparse linear kernel (rows d*G*H + g*H + j)."""
    mats = _weights(ctx, op, "w")
    m, k = op.w_encoding.matrix_shape
    mtot = m * len(mats)
    x = ctx.operand(op.x)
    sched = op.attributes.get(PROJECTION_ATTR)
    if isinstance(sched, CsrSchedule):
        row_ptr, cols, vals, _ = csr_arrays([mat.to_dense() for mat in mats])
        nnz = len(vals)
        inputs: list[tuple[str, Any]] = [
            ("x", x),
            ("val", float_blob(ctx, vals, "csr_val")),
            ("col", int_blob(ctx, cols, "csr_col")),
            ("ptr", int_blob(ctx, row_ptr, "csr_ptr")),
        ]
        ntasks = sched.threads.data
        params: dict[str, Any] = {"bounds": balanced_bounds(np.diff(row_ptr) + 1, ntasks)}
        kind = "csr_matmul"
    else:
        grids = [grid_dense(mat)[0] for mat in mats]
        nnz = int(sum(np.count_nonzero(g) for g in grids))
        if isinstance(sched, GemvSchedule):
            params, inputs = _gemv(op, sched, ctx, mats, grids, nb)
            kind = "bcr_gemv"
        else:
            spmm = schedule_of(op, SpmmSchedule, PROJECTION_ATTR)
            params, inputs = _gemm(op, spmm, ctx, mats, grids, nb, k)
            kind = "bcr_spmm"
    if bias is not None:
        inputs.append(("b", ctx.blob(bias, "rnn_proj_bias")))
    params.update(nb=nb, k=k, mtot=mtot, nnz=nnz, act=None)
    return KernelInstance(kind, params, inputs, [("y", scratch)], flops=2 * nnz * nb)


# --------------------------------------------------------------------------
# the lowering


def _dense_r(ctx: LoweringContext, op: bcr.RecurrentOp) -> np.ndarray:
    """R [dirs, G*H, H] in original row order (the decoded BCR matrices)."""
    return np.stack([mat.to_dense() for mat in _weights(ctx, op, "r")])


def _recurrence_inputs(
    ctx: LoweringContext, r: np.ndarray, cell: Cell, hidden: int, vw: int, q: int,
) -> tuple[list[tuple[str, Ref]], np.ndarray, dict[str, Any]]:
    """The recurrent weight arrays, the per-chunk costs [dirs, chunks, G] and params."""
    dirs = r.shape[0]
    chunks = math.ceil(hidden / vw)
    if q == 0:
        row_ptr, cols, vals, _ = csr_arrays(list(r))
        inputs = [
            ("rval", float_blob(ctx, vals, "csr_rval")),
            ("rcol", int_blob(ctx, cols, "csr_rcol")),
            ("rptr", int_blob(ctx, row_ptr, "csr_rptr")),
        ]
        row_nnz = np.diff(row_ptr).reshape(dirs, cell.gates, hidden)
        row_nnz = np.pad(row_nnz, ((0, 0), (0, 0), (0, chunks * vw - hidden)))
        costs = row_nnz.reshape(dirs, cell.gates, chunks, vw).sum(axis=3).transpose(0, 2, 1)
        return inputs, costs, {"nnz": int(len(vals)), "entries": int(len(vals))}
    groups = pack_groups(r, cell.gates, hidden, vw, q)
    inputs = [
        ("rv", float_blob(ctx, groups.weights, "bcr_rnn_w")),
        ("rc", int_blob(ctx, groups.cols, "bcr_rnn_cols")),
        ("rg", int_blob(ctx, groups.gptr, "bcr_rnn_gptr")),
    ]
    costs = groups.entries.reshape(dirs, chunks, cell.gates, q).sum(axis=3)
    info = {"nnz": int(np.count_nonzero(r)), "entries": int(groups.entries.sum())}
    return inputs, costs, info


@lowers(bcr.RNNOp, bcr.GRUOp, bcr.LSTMOp)
def lower_bcr_recurrent(op: bcr.RecurrentOp, ctx: LoweringContext) -> KernelInstance:
    cell = cell_of(op)
    seq, batch, _ = shape(op.x)
    hidden = op.hidden_size.value.data
    dirs = op.num_directions
    vw = ctx.target.vw
    chunks = math.ceil(hidden / vw)
    hp = chunks * vw
    csr = isinstance(op.attributes.get(PROJECTION_ATTR), CsrSchedule)
    r = _dense_r(ctx, op)
    sched = cell_knobs(op, batch, hidden, vw)
    if (sched["q"] == 0) != csr or (sched["q"] and sched["q"] not in q_choices(vw)):
        want = "0 (the CSR projection's baseline)" if csr else f"a power of two <= {vw}"
        raise CodegenError(f"{op.name}: #sched.sparse_cell q = {sched['q']} must be {want}")

    b = const_operand(ctx, op, "b")
    bias, _ = projection_bias(b, cell, dirs, hidden, hidden)
    _, rb_inside = projection_bias(b, cell, dirs, hidden, hp)
    # xp uses the first seq*batch*dirs*G*H floats of its (hp-sized) region.
    layout = scratch_layout(cell, seq, batch, dirs, hidden, hp, op.initial_h is None)
    scratch = ctx.scratch(4 * layout["total"])
    proj = projection_kernel(op, ctx, seq * batch, bias, scratch)

    inputs: list[tuple[str, Ref]] = [("x", proj.inputs[0][1])]
    inputs += [(f"p{name}", ref) for name, ref in proj.inputs[1:]]
    q = sched["q"]
    rec_inputs, costs, info = _recurrence_inputs(ctx, r, cell, hidden, vw, q)
    state_inputs, outputs = state_args(ctx, op, hidden, hp, rb_inside, scratch)
    params = {
        **cell_params(ctx, op, cell, hp, layout, proj),
        "format": "csr" if csr else "bcr",
        "chunks": chunks,
        "p": vw // q if q else 1,
        "qlevels": q.bit_length() - 1 if q else 0,
        **sched,
        **info,
        "bounds": phase_bounds(costs, cell, dirs, chunks, sched["ntasks"]),
        "proj_args": [name for name, _ in inputs[1 : len(proj.inputs)]],
    }
    rec_macs = seq * batch * info["nnz"]
    return KernelInstance(
        kind="bcr_recurrent",
        params=params,
        inputs=inputs + rec_inputs + state_inputs,
        outputs=outputs,
        flops=proj.flops + 2 * rec_macs,
    )
