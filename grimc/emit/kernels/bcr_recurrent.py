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
R's `#bcr.schedule` (tile knobs of the spmm kernel) is not read either; the
op's `kernel_params` attribute overrides the knobs here: q, bb, sets, ntasks.
W's schedule drives the projection kernel as for a `bcr.matmul`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from types import SimpleNamespace
from typing import Any

import numpy as np

from grimc.dialects import bcr
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
    PARAMS_ATTR,
    balanced_bounds,
    float_blob,
    grid_dense,
    int_blob,
    load_matrices,
    sparse_format,
    task_count,
)
from grimc.emit.kernels.bcr_matmul import _gemm, _gemv, use_gemm
from grimc.emit.kernels.csr import csr_arrays
from grimc.emit.kernels.recurrent import (
    Cell,
    cell_of,
    cell_overrides,
    cell_params,
    const_operand,
    pad_gates,
    projection_bias,
    scratch_layout,
    state_args,
)

MIN_PARALLEL_ENTRIES = 4096
"""Per-step list entries (per direction, times batch rows) below which one task
runs a step. An entry costs about a cycle (a weight vector load, an input
broadcast, an FMA); a grimc_parallel_for round trip (~0.5 us, `recurrent.py`)
is worth ~2k of them, so splitting pays from about twice that."""

ENTRY_BYTES_PER_CYCLE = 26.0
"""Bandwidth the weight stream gets from L2 (bytes per cycle; measured ~93 GB/s on
the 3.5 GHz Zen 5 host): a layer's recurrent weights stay in L2 for the whole
sequence, and an entry of vw floats costs vw * 4 / 26 cycles at least."""

INPUT_CYCLES = {1: 0.0, 2: 0.5}
"""Extra cycles per entry and batch row to form the input vector of q columns
(q = 2: a second broadcast merged in); larger q: about q (lane loads and
inserts). Measured per entry on the host: AVX-512 q=1 0.70 ns, q=2 0.80 ns,
q=4 1.7 ns; AVX2 q=1 0.44 ns, q=2 0.64 ns."""

MAX_SETS = 4
"""Accumulator sets per group (hides the FMA latency when few batch rows)."""


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


def q_cost(entries: int, q: int, vw: int, bb: int) -> float:
    """Modeled cycles of one step per batch block: per entry the weight stream
    (vw floats from L2) or bb FMAs (two per cycle), whichever bounds it, plus forming the
    input vector of each of the bb batch rows."""
    per_entry = max(vw * 4 / ENTRY_BYTES_PER_CYCLE, bb / 2) + bb * INPUT_CYCLES.get(q, float(q))
    return entries * per_entry


def choose_q(r: np.ndarray, gates: int, hidden: int, vw: int, bb: int) -> int:
    """The q of fewest modeled cycles (ties: the smaller q)."""
    costs = [
        (q_cost(int(list_lengths(r, gates, hidden, vw, q).sum()), q, vw, bb), q)
        for q in q_choices(vw)
    ]
    return min(costs)[1]


# --------------------------------------------------------------------------
# schedule


@dataclass(frozen=True)
class SparseRnnSchedule:
    """The tunable knobs of the sparse recurrence (`kernel_params` overrides)."""

    q: int
    """Columns per vector (p = vw / q rows per register group); 0 for CSR."""
    bb: int
    """Batch rows per register block (each weight vector feeds bb FMAs)."""
    sets: int
    """Accumulator sets per group (independent FMA chains)."""
    ntasks: int
    """Tasks per direction per step (contiguous chunk ranges, balanced by entries)."""


def default_batch_block(batch: int) -> int:
    """Up to 4 batch rows share each weight vector load (a tail block takes the rest)."""
    return min(batch, 4)


def default_sets(bb: int) -> int:
    """Enough independent FMA chains (sets x batch rows >= 4)."""
    return max(1, min(MAX_SETS, math.ceil(MAX_SETS / bb)))


def default_tasks(threads: int, dirs: int, chunks: int, step_entries: int) -> int:
    if threads <= 1 or step_entries < MIN_PARALLEL_ENTRIES:
        return 1
    return min(chunks, math.ceil(threads / dirs))  # threads <= dirs: one per direction


def schedule_for(
    op: bcr.RecurrentOp, r: np.ndarray, cell: Cell, batch: int, hidden: int, vw: int,
    threads: int, csr: bool,
) -> SparseRnnSchedule:
    """Defaults from the cost model, then the op's `kernel_params` overrides."""
    dirs = r.shape[0]
    over = cell_overrides(op, ("q", "bb", "sets", "ntasks"), batch)
    bb = over.get("bb", default_batch_block(batch))
    if csr:
        q = 0
        step = int(np.count_nonzero(r)) * batch // dirs
    else:
        q = over.get("q", 0) or choose_q(r, cell.gates, hidden, vw, bb)
        if q not in q_choices(vw):
            raise CodegenError(f"{op.name}: {PARAMS_ATTR} 'q' = {q} must be a power of two <= {vw}")
        step = int(list_lengths(r, cell.gates, hidden, vw, q).sum()) * batch // dirs
    chunks = math.ceil(hidden / vw)
    ntasks = default_tasks(threads, dirs, chunks, step)
    sched = SparseRnnSchedule(q, bb, default_sets(bb), ntasks)
    sched = replace(sched, **{k: v for k, v in over.items() if k in ("sets", "ntasks")})
    return replace(sched, ntasks=min(sched.ntasks, chunks))


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
    op: bcr.RecurrentOp, ctx: LoweringContext, csr: bool, nb: int, bias: np.ndarray | None,
    scratch: ActRef,
) -> KernelInstance:
    """xp = X W^T + bias over all steps and directions: the W matrices of the
    directions are the groups of one sparse linear kernel (rows d*G*H + g*H + j)."""
    mats = _weights(ctx, op, "w")
    m, k = op.w_encoding.matrix_shape
    mtot = m * len(mats)
    x = ctx.operand(op.x)
    if csr:
        row_ptr, cols, vals, _ = csr_arrays([mat.to_dense() for mat in mats])
        nnz = len(vals)
        inputs: list[tuple[str, Any]] = [
            ("x", x),
            ("val", float_blob(ctx, vals, "csr_val")),
            ("col", int_blob(ctx, cols, "csr_col")),
            ("ptr", int_blob(ctx, row_ptr, "csr_ptr")),
        ]
        ntasks = task_count(op.w_encoding.schedule, ctx, nnz * nb)
        params: dict[str, Any] = {"bounds": balanced_bounds(np.diff(row_ptr) + 1, ntasks)}
        kind = "csr_matmul"
    else:
        grids = [grid_dense(mat)[0] for mat in mats]
        nnz = int(sum(np.count_nonzero(g) for g in grids))
        # _gemm/_gemv read only these fields of a bcr.matmul op (no kernel_params here:
        # the cell's own kernel_params are the recurrence's knobs).
        view = SimpleNamespace(encoding=op.w_encoding, x=op.x, attributes={})
        if use_gemm(nb, k, ctx.target.vw):
            params, inputs = _gemm(view, ctx, mats, grids, nb, k)  # type: ignore[arg-type]
            kind = "bcr_spmm"
        else:
            params, inputs = _gemv(view, ctx, mats, grids, nb, k)  # type: ignore[arg-type]
            kind = "bcr_gemv"
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
    ctx: LoweringContext, r: np.ndarray, cell: Cell, hidden: int, vw: int, sched: SparseRnnSchedule,
) -> tuple[list[tuple[str, Ref]], np.ndarray, dict[str, Any]]:
    """The recurrent weight arrays, the per-chunk costs [dirs, chunks, G] and params."""
    dirs = r.shape[0]
    chunks = math.ceil(hidden / vw)
    if sched.q == 0:
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
    groups = pack_groups(r, cell.gates, hidden, vw, sched.q)
    inputs = [
        ("rv", float_blob(ctx, groups.weights, "bcr_rnn_w")),
        ("rc", int_blob(ctx, groups.cols, "bcr_rnn_cols")),
        ("rg", int_blob(ctx, groups.gptr, "bcr_rnn_gptr")),
    ]
    costs = groups.entries.reshape(dirs, chunks, cell.gates, sched.q).sum(axis=3)
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
    csr = sparse_format(op, ctx) == "csr"
    r = _dense_r(ctx, op)
    sched = schedule_for(op, r, cell, batch, hidden, vw, ctx.threads, csr)

    b = const_operand(ctx, op, "b")
    bias, _ = projection_bias(b, cell, dirs, hidden, hidden)
    _, rb_inside = projection_bias(b, cell, dirs, hidden, hp)
    # xp uses the first seq*batch*dirs*G*H floats of its (hp-sized) region.
    layout = scratch_layout(cell, seq, batch, dirs, hidden, hp, op.initial_h is None)
    scratch = ctx.scratch(4 * layout["total"])
    proj = projection_kernel(op, ctx, csr, seq * batch, bias, scratch)

    inputs: list[tuple[str, Ref]] = [("x", proj.inputs[0][1])]
    inputs += [(f"p{name}", ref) for name, ref in proj.inputs[1:]]
    rec_inputs, costs, info = _recurrence_inputs(ctx, r, cell, hidden, vw, sched)
    state_inputs, outputs = state_args(ctx, op, hidden, hp, rb_inside, scratch)
    params = {
        **cell_params(ctx, op, cell, hp, layout, proj),
        "format": "csr" if csr else "bcr",
        "chunks": chunks,
        "p": vw // sched.q if sched.q else 1,
        "qlevels": sched.q.bit_length() - 1 if sched.q else 0,
        **asdict(sched),
        **info,
        "bounds": phase_bounds(costs, cell, dirs, chunks, sched.ntasks),
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
