"""ONNX RNN, GRU and LSTM cells (`graph.rnn`, `graph.gru`, `graph.lstm`, layout 0).

One kernel per cell op, in two stages (docs/bcr.md, recurrent layers):

1. Input projection for all time steps and both directions at once: one GEMM
   `xp[seq*batch, dirs*G*Hp] = X[seq*batch, I] W^T + bias`, rendered from the
   `gemm` template as a nested kernel (`<fn>_proj`). The bias holds Wb and
   every Rb that adds outside a gate product (all but GRU's Rb_h when
   linear_before_reset = 1), so the recurrence never adds them again.
2. The recurrence: per time step only `R h_{t-1}` (a GEMV for batch 1) plus
   the gate math, fused per chunk of `u = nvg * vw` hidden units: the thread
   that owns a chunk streams the R rows of all gates of those units and
   finishes their h (and c) in registers. R is packed at compile time into
   gate-interleaved panels `[chunk][k][gate][u]` (zero rows pad H up to Hp),
   so each broadcast of h[k] feeds G*nvg FMAs and every weight is read once
   per step, in order. With `ntasks` > 1 threads split the chunks (of both
   directions of a bidirectional cell) with one `grimc_parallel_for` per
   step, which is the per-step barrier; GRU with linear_before_reset = 0
   needs two (r must be complete before (r . h) R_h^T), so its R is packed
   as two panel sets. With one task per direction the directions, which are
   independent, run their whole sequences in parallel with no barrier.

Scratch (from the arena, live only during the kernel): the projected inputs,
a zero initial state when initial_h is absent, and GRU's z and r . h.
Y is written in place, step by step; h_{t-1} is read back from Y. Y_c (LSTM)
holds the running cell state. Gate order follows ONNX: GRU z, r, h; LSTM i,
o, f, c; peepholes P are i, o, f.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from grimc.dialects import bcr, graph
from grimc.dialects.sched import (
    PROJECTION_ATTR,
    CellSchedule,
    GemmSchedule,
    SparseCellSchedule,
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
from grimc.emit.kernels import gemm

GATE_NAMES = {"rnn": ["h"], "gru": ["z", "r", "h"], "lstm": ["i", "o", "f", "c"]}
"""ONNX gate order of W, R and B; the templates name gate values after these."""

ALIGN_FLOATS = 16
"""Scratch regions start on 64-byte boundaries."""


CellOp = graph.RecurrentOp | bcr.RecurrentOp
"""A dense or BCR-sparse cell op: the same ONNX operands, results and attributes."""


@dataclass(frozen=True)
class Cell:
    """What differs between RNN, GRU and LSTM for the kernel's structure."""

    kind: str
    gates: int
    phases: tuple[tuple[int, ...], ...]
    """Gate indices (ONNX order) whose R rows each per-step phase streams."""
    rb_outside: tuple[int, ...]
    """Gates whose recurrence bias Rb stays out of the projection bias."""


CELLS = {
    ("rnn", False): Cell("rnn", 1, ((0,),), ()),
    ("gru", False): Cell("gru", 3, ((0, 1), (2,)), ()),
    ("gru", True): Cell("gru", 3, ((0, 1, 2),), (2,)),
    ("lstm", False): Cell("lstm", 4, ((0, 1, 2, 3),), ()),
}
"""Cells by kind and linear_before_reset: GRU's (r . h) R_h^T with 0 waits for r (two
phases); with 1 its Rb_h stays inside the product."""


def cell_of(op: CellOp) -> Cell:
    """The cell of a dense or sparse op (`graph.gru` and `bcr.gru` share one)."""
    lbr = getattr(op, "linear_before_reset", None)
    return CELLS[op.name.partition(".")[2], lbr is not None and bool(lbr.value.data)]


def cell_knobs(op: CellOp, batch: int, hidden: int, vw: int) -> dict[str, int]:
    """The op's recurrence schedule (`#sched.cell` or `#sched.sparse_cell`), checked against
    the op: a batch block no larger than the batch; tasks at most the hidden chunks (more
    are cut to that many)."""
    kind = SparseCellSchedule if isinstance(op, bcr.RecurrentOp) else CellSchedule
    knobs = {k: int(v) for k, v in schedule_of(op, kind).knobs().items()}
    if knobs["bb"] > batch:
        raise CodegenError(f"{op.name}: #{kind.name} bb = {knobs['bb']} exceeds the batch {batch}")
    u = knobs.get("nvg", 1) * vw
    knobs["ntasks"] = min(knobs["ntasks"], math.ceil(hidden / u))
    return knobs


def pad_gates(a: np.ndarray, gates: int, hidden: int, hp: int) -> np.ndarray:
    """[..., G*H, rest...] -> [..., G, Hp, rest...] with zero rows H..Hp."""
    lead = a.shape[:-2] if a.ndim > 2 else a.shape[:-1]
    tail = a.shape[-1:] if a.ndim > 2 else ()
    g = a.reshape(*lead, gates, hidden, *tail)
    pad = [(0, 0)] * g.ndim
    pad[len(lead) + 1] = (0, hp - hidden)
    return np.pad(g, pad)


def pack_recurrence(r: np.ndarray, cell: Cell, hidden: int, u: int) -> tuple[np.ndarray, list[int]]:
    """R [dirs, G*H, H] -> per direction, per phase, panels [chunk][k][gate][u].

    Returns the flat blob and the offset (floats) of each phase's panels in a
    direction's block (the block size is the last entry)."""
    hp = math.ceil(hidden / u) * u
    chunks = hp // u
    padded = pad_gates(r, cell.gates, hidden, hp)  # [dirs, G, Hp, H]
    dirs = r.shape[0]
    parts, offsets = [], [0]
    for gl in cell.phases:
        sel = padded[:, list(gl)]  # [dirs, GL, Hp, H]
        panels = sel.reshape(dirs, len(gl), chunks, u, hidden).transpose(0, 2, 4, 1, 3)
        parts.append(panels.reshape(dirs, -1))
        offsets.append(offsets[-1] + parts[-1].shape[1])
    return np.concatenate(parts, axis=1).reshape(-1), offsets


def const_operand(ctx: LoweringContext, op: CellOp, name: str) -> np.ndarray | None:
    """The array of an optional weight operand (B, P); one clear error if it is computed."""
    value = getattr(op, name, None)
    if value is None:
        return None
    arr = ctx.const(value)
    if arr is None:
        raise CodegenError(f"{op.name}: operand {name.upper()} must be a constant weight")
    return arr


def projection_bias(
    b: np.ndarray | None, cell: Cell, dirs: int, hidden: int, hp: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Wb plus the foldable Rb, [dirs*G*Hp]; and the Rb kept inside a gate [dirs, Hp]."""
    if b is None:
        return None, None
    g = cell.gates
    wb = b[:, : g * hidden].reshape(dirs, g, hidden).astype(np.float64)
    rb = b[:, g * hidden :].reshape(dirs, g, hidden).astype(np.float64)
    folded = wb.copy()
    inside = None
    for gate in range(g):
        if gate in cell.rb_outside:
            inside = np.pad(rb[:, gate], ((0, 0), (0, hp - hidden)))
        else:
            folded[:, gate] += rb[:, gate]
    bias = np.pad(folded, ((0, 0), (0, 0), (0, hp - hidden))).reshape(-1)
    return bias.astype(np.float32), None if inside is None else inside.astype(np.float32)


def _projection(
    ctx: LoweringContext,
    sched: GemmSchedule,
    x: Ref,
    w: np.ndarray,
    bias: np.ndarray | None,
    cell: Cell,
    rows: int,
    hidden: int,
    hp: int,
    scratch: ActRef,
) -> tuple[KernelInstance, list[tuple[str, Ref]]]:
    """The nested `gemm` kernel xp = X W^T + bias, writing the scratch's first region,
    and the parent kernel's arguments it needs (packed W^T and the bias)."""
    dirs, _, inp = w.shape
    n = dirs * cell.gates * hp
    w_kn = pad_gates(w, cell.gates, hidden, hp).reshape(n, inp).T
    prob = gemm.Problem(rows, n, inp, 1, True)
    packed = gemm.pack_panels(w_kn, sched.nv.data * ctx.target.vw)
    args: list[tuple[str, Ref]] = [("wp", ctx.blob(packed, "rnn_packed_w"))]
    ops = gemm.Operands(x, inp, 1, args[0][1])
    if bias is not None:
        args.append(("wb", ctx.blob(bias, "rnn_proj_bias")))
        ops.c, ops.c_cs = args[1][1], 1
    # gemm_kernel only asks its context for the target and the output buffer.
    shim = SimpleNamespace(target=ctx.target, result=lambda _value: scratch)
    kernel = gemm.gemm_kernel(shim, prob, sched, ops, None, None, 1.0)  # type: ignore[arg-type]
    return kernel, args


def scratch_layout(
    cell: Cell, seq: int, batch: int, dirs: int, hidden: int, hp: int, zero_h0: bool
) -> dict[str, int]:
    """Offsets (floats) of the scratch regions; "total" is the size."""
    sizes = {"xp": seq * batch * dirs * cell.gates * hp}
    if zero_h0:
        sizes["h0"] = dirs * batch * hidden
    if len(cell.phases) > 1:
        sizes["zs"] = dirs * batch * hp
        sizes["rh"] = dirs * batch * hidden
    layout, off = {}, 0
    for name, size in sizes.items():
        layout[name] = off
        off += math.ceil(size / ALIGN_FLOATS) * ALIGN_FLOATS
    layout["total"] = off
    return layout


def state_args(
    ctx: LoweringContext, op: CellOp, hidden: int, hp: int, rb_inside: np.ndarray | None,
    scratch: ActRef,
) -> tuple[list[tuple[str, Ref]], list[tuple[str, Ref]]]:
    """The arguments after the weights, shared by the dense and sparse cells: the Rb
    kept inside a gate, peepholes, initial states; and the outputs (scratch last)."""
    inputs: list[tuple[str, Ref]] = []
    if rb_inside is not None:
        inputs.append(("rb", ctx.blob(rb_inside, "rnn_rb_inside")))
    peep = const_operand(ctx, op, "p")
    if peep is not None:
        inputs.append(("pp", ctx.blob(pad_gates(peep, 3, hidden, hp).reshape(-1), "rnn_peepholes")))
    for name, value in (("h0", op.initial_h), ("c0", getattr(op, "initial_c", None))):
        if value is not None:
            inputs.append((name, ctx.operand(value)))
    outputs = [("y", ctx.result(op.y)), ("y_h", ctx.result(op.y_h))]
    if isinstance(op, graph.LSTMFields):
        outputs.append(("y_c", ctx.result(op.y_c)))
    outputs.append(("scratch", scratch))
    return inputs, outputs


def cell_params(
    ctx: LoweringContext, op: CellOp, cell: Cell, hp: int, layout: dict[str, int],
    proj: KernelInstance,
) -> dict[str, Any]:
    """The template parameters shared by the dense and sparse cells (their gate math,
    scratch and nested projection kernel)."""
    seq, batch, inp = shape(op.x)
    dirs = op.num_directions
    return {
        "cell": cell.kind,
        "seq": seq,
        "batch": batch,
        "input": inp,
        "hidden": op.hidden_size.value.data,
        "hp": hp,
        "dirs": dirs,
        "gates": cell.gates,
        "gate_names": GATE_NAMES[cell.kind],
        "direction": op.direction.data,  # checked by the op verifier: one of three words
        "reverse": [1] if op.direction.data == "reverse" else [0, 1][:dirs],
        "phases": [list(p) for p in cell.phases],
        "clip": op.clip.value.data if op.clip is not None else None,
        "input_forget": int(op.input_forget.value.data) if isinstance(op, graph.LSTMFields) else 0,
        "scratch": layout,
        "proj": proj,
        "proj_templates": [f"{family}/{proj.kind}.c.j2" for family in ctx.target.families],
    }


@lowers(graph.RNNOp, graph.GRUOp, graph.LSTMOp)
def lower_recurrent(op: graph.RecurrentOp, ctx: LoweringContext) -> KernelInstance:
    cell = cell_of(op)
    seq, batch, _ = shape(op.x)
    hidden = op.hidden_size.value.data
    dirs = op.num_directions
    vw = ctx.target.vw
    sched = cell_knobs(op, batch, hidden, vw)
    u = sched["nvg"] * vw
    hp = math.ceil(hidden / u) * u
    w, r = const_operand(ctx, op, "w"), const_operand(ctx, op, "r")
    assert w is not None and r is not None
    bias, rb_inside = projection_bias(const_operand(ctx, op, "b"), cell, dirs, hidden, hp)

    layout = scratch_layout(cell, seq, batch, dirs, hidden, hp, op.initial_h is None)
    scratch = ctx.scratch(4 * layout["total"])
    x = ctx.operand(op.x)
    proj_sched = schedule_of(op, GemmSchedule, PROJECTION_ATTR)
    proj, proj_args = _projection(
        ctx, proj_sched, x, w, bias, cell, seq * batch, hidden, hp, scratch
    )
    packed_r, phase_offsets = pack_recurrence(r, cell, hidden, u)

    inputs: list[tuple[str, Ref]] = [("x", x), *proj_args]
    inputs.append(("rp", ctx.blob(packed_r, "rnn_packed_r")))
    state_inputs, outputs = state_args(ctx, op, hidden, hp, rb_inside, scratch)
    params = {
        **cell_params(ctx, op, cell, hp, layout, proj),
        "phase_offsets": phase_offsets,
        "u": u,
        "chunks": hp // u,
        **sched,
    }
    rec_macs = seq * batch * dirs * cell.gates * hidden * hidden
    return KernelInstance(
        kind="rnn_cell",
        params=params,
        inputs=inputs + state_inputs,
        outputs=outputs,
        flops=proj.flops + 2 * rec_macs,
    )
