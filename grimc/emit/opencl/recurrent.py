"""ONNX RNN / GRU / LSTM on OpenCL, dense (graph.*) and BCR (bcr.*).

Two kernels per op: the input projection of all steps at once (the `linear`
kernel: one GEMM over seq*batch rows, Wb folded in) into a scratch buffer,
then the recurrence (`recurrent.cl.j2`): one work-group per direction steps
through time, each step a sparse (or dense) GEMV of h_{t-1} by R in register
groups, fused with the gate math. R's rows are grouped per phase: GRU with
linear_before_reset = 0 multiplies its h-gate rows by r . h_{t-1}, so those
rows form a second list; every other row is in the first.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from grimc.dialects import bcr, graph
from grimc.dialects.sched import PROJECTION_ATTR, ClCellSchedule, schedule_of
from grimc.emit.kernel import CodegenError, KernelInstance, LoweringContext, Ref, shape
from grimc.emit.kernels.bcr import float_blob, grid_dense, int_blob, load_weight
from grimc.emit.opencl.linear import Lists, dense_lists, sparse_lists
from grimc.emit.opencl.lowering import cl_kernel, cl_lowers, linear_mapping

CELLS = {graph.RNNOp: "rnn", graph.GRUOp: "gru", graph.LSTMOp: "lstm",
         bcr.RNNOp: "rnn", bcr.GRUOp: "gru", bcr.LSTMOp: "lstm"}  # fmt: skip


def phase_lists(
    ctx: LoweringContext,
    grids: list[tuple[np.ndarray, np.ndarray]],
    rows: int,
    keep: Callable[[np.ndarray], np.ndarray],
    tag: str,
) -> list[tuple[str, Ref]]:
    """Register groups of `rows` rows of each direction's R, over the rows `keep` selects.

    `grids[d]` is (R_d in kernel row order, the output row of each). Groups
    follow that order (the reorder pass's, for BCR), so rows with similar
    kept columns share one list; `<tag>dir` gives each direction's groups.
    """
    weights, cols, counts, orow, dirs = [], [], [], [], [0]
    for wp, out in grids:
        sel = np.flatnonzero(keep(out))
        for a in range(0, len(sel), rows):
            idx = sel[a : a + rows]
            block = np.zeros((rows, wp.shape[1]), dtype=np.float32)
            block[: len(idx)] = wp[idx]
            c = np.flatnonzero((block != 0).any(axis=0))
            weights.append(block[:, c].T.ravel())
            cols.append(c)
            counts.append(len(c))
            orow.append(np.concatenate([out[idx], np.full(rows - len(idx), -1)]))
        dirs.append(len(counts))
    return [
        (f"{tag}w", float_blob(ctx, np.concatenate(weights or [np.zeros(0)]), f"cl_rnn_{tag}w")),
        (f"{tag}cols", int_blob(ctx, np.concatenate(cols or [np.zeros(0)]), f"cl_rnn_{tag}cols")),
        (
            f"{tag}gptr",
            int_blob(ctx, np.concatenate([[0], np.cumsum(counts)]), f"cl_rnn_{tag}gptr"),
        ),
        (f"{tag}orow", int_blob(ctx, np.concatenate(orow or [np.zeros(0)]), f"cl_rnn_{tag}orow")),
        (f"{tag}dir", int_blob(ctx, dirs, f"cl_rnn_{tag}dir")),
    ]


@cl_lowers(graph.RNNOp, graph.GRUOp, graph.LSTMOp, bcr.RNNOp, bcr.GRUOp, bcr.LSTMOp)
def lower_recurrent(op, ctx: LoweringContext) -> list[KernelInstance]:
    cell = CELLS[type(op)]
    seq, batch, inp = shape(op.x)
    hidden = op.hidden_size.value.data
    dirs = op.num_directions
    gh = op.GATES * hidden
    sparse = isinstance(op, bcr.RecurrentOp)
    if sparse:
        w_mats, w_grids = load_weight(ctx, op.w_weights.data, op.w_encoding)
        r_mats, _ = load_weight(ctx, op.r_weights.data, op.r_encoding)
        r_rows = [grid_dense(mat) for mat in r_mats]
    else:
        w, r = ctx.const(op.w), ctx.const(op.r)
        if w is None or r is None:
            raise CodegenError(f"{op.name} on opencl: W and R must be constant")
        w_grids = list(w)
        r_rows = [(rd, np.arange(gh)) for rd in r]
    bias = ctx.const(op.b) if op.b is not None else np.zeros((dirs, 2 * gh), np.float32)
    if bias is None:
        raise CodegenError(f"{op.name} on opencl: B must be constant")

    # input projection of every step: proj[t*batch + b][d*GH + row]
    sched = linear_mapping(op, PROJECTION_ATTR)
    lists: Lists = (
        sparse_lists(ctx, w_mats, w_grids, sched.rows) if sparse
        else dense_lists(ctx, w_grids, sched.rows)
    )  # fmt: skip
    proj = ctx.scratch(4 * seq * batch * dirs * gh)
    dims = sched.dims(["n"])
    size = {"n": seq * batch, "g": lists.ngroups}
    projection = cl_kernel(
        "linear",
        {"NB": seq * batch, "K": inp, "M": dirs * gh, "KG": inp, "NGROUPS": lists.ngroups},
        [size[name] for name in sorted(dims, key=dims.get)],
        [("x", ctx.operand(op.x)), *lists.inputs,
         ("b", float_blob(ctx, bias[:, :gh].reshape(-1), "cl_rnn_wb"))],
        [("y", proj)],
        sched.local_for(len(dims)),
        2 * lists.entries * sched.rows * seq * batch,
        rows=sched.rows, sparse=sparse, dims=dims, act=None, entries=lists.entries,
    )  # fmt: skip

    # the recurrence
    cell_sched = schedule_of(op, ClCellSchedule)
    rows = cell_sched.rows.data
    lbr = bool(op.linear_before_reset.value.data) if cell == "gru" else True
    two_phase = cell == "gru" and not lbr
    inputs: list[tuple[str, Ref]] = [("proj", proj)]
    inputs += phase_lists(
        ctx, r_rows, rows, lambda o: (o < 2 * hidden) if two_phase else o >= 0, "a"
    )
    if two_phase:
        inputs += phase_lists(ctx, r_rows, rows, lambda o: o >= 2 * hidden, "b")
    if np.any(bias[:, gh:]):
        inputs.append(("rb", float_blob(ctx, bias[:, gh:].reshape(-1), "cl_rnn_rb")))
    if op.initial_h is not None:
        inputs.append(("h0", ctx.operand(op.initial_h)))
    outputs = [("y", ctx.result(op.y)), ("y_h", ctx.result(op.y_h))]
    if cell == "lstm":
        if op.initial_c is not None:
            inputs.append(("c0", ctx.operand(op.initial_c)))
        if op.p is not None:
            inputs.append(("peep", ctx.operand(op.p)))
        outputs.append(("y_c", ctx.result(op.y_c)))
        outputs.append(("cst", ctx.scratch(4 * dirs * batch * hidden)))
    outputs.append(("rh", ctx.scratch(4 * dirs * batch * gh)))
    if two_phase:
        outputs.append(("rin", ctx.scratch(4 * dirs * batch * hidden)))
    local = cell_sched.local.data
    clip = op.clip.value.data if op.clip is not None else None
    step = cl_kernel(
        "recurrent",
        {"SEQ": seq, "BATCH": batch, "H": hidden, "GH": gh, "DIRS": dirs},
        [local, dirs],
        inputs,
        outputs,
        [local, 1],
        2 * seq * batch * sum(int(np.count_nonzero(g)) for g, _ in r_rows),
        cell=cell, rows=rows, lbr=lbr, clip=clip, direction=op.direction.data,
        input_forget=bool(op.input_forget.value.data) if cell == "lstm" else False,
        sparse=sparse,
    )  # fmt: skip
    return [projection, step]
