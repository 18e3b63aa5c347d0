"""`bcr.matmul` (FC layers, batched RNN input projections): y[n] = act(W x[n] + b + res).

Two kernels, chosen by the schedule-select pass by batch size (a `#sched.gemv`
or `#sched.spmm` schedule on the op, read here; `#sched.csr` selects the CSR
baseline):

- `bcr_gemv` (few batch rows, e.g. N = 1): vectorized over each register
  group's column list. Per group of R rows the kernel gathers the input at
  the group's columns once (into a stack buffer) and streams the group's
  weights, laid out [column chunk][row][lane], exactly once per pass: every
  gathered input vector feeds R FMAs (redundant-load elimination), and up to
  `nb_tile` batch rows share each weight load. Horizontal sums at the end.
- `bcr_spmm` in gemm mode (many batch rows): the conv kernel's register tile
  over batch rows instead of pixels; each tile of batch rows is transposed
  into a stack buffer [K][tile] so list entries are plain row offsets, and
  results are stored transposed (the permutation folds into the stores). Both
  transposes go by VW x VW register blocks (`gv_transpose`): on the output
  side for each block of VW group rows that are consecutive output rows (the
  `contig` table, usually all of them), else row by row.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from grimc.dialects import bcr
from grimc.dialects.sched import SCHEDULE_ATTR, CsrSchedule, GemvSchedule, SpmmSchedule, schedule_of
from grimc.emit.kernel import (
    CodegenError,
    KernelInstance,
    LoweringContext,
    act_params,
    lowers,
    shape,
)
from grimc.emit.kernels.bcr import (
    balanced_bounds,
    float_blob,
    int_blob,
    load_weight,
    row_groups,
)

STACK_BYTES = 256 * 1024
"""Largest stack buffer a kernel may use (transposed batch tile, gathered inputs)."""


def linear_shape(op: bcr.MatMulOp) -> tuple[int, int, int]:
    """(batch rows, K, M) of y[..., M] = x[..., K] W^T."""
    xs = shape(op.x)
    return math.prod(xs[:-1]), xs[-1], op.encoding.matrix_shape[0]


@lowers(bcr.MatMulOp)
def lower_bcr_matmul(op: bcr.MatMulOp, ctx: LoweringContext) -> KernelInstance:
    sched = op.attributes.get(SCHEDULE_ATTR)
    if isinstance(sched, CsrSchedule):
        from grimc.emit.kernels.csr import lower_csr_matmul

        return lower_csr_matmul(op, ctx)
    nb, k, m = linear_shape(op)
    mats, grids = load_weight(ctx, op.weights.data, op.encoding)
    nnz = int(sum(np.count_nonzero(g) for g in grids))
    if isinstance(sched, GemvSchedule):
        params, inputs = _gemv(op, sched, ctx, mats, grids, nb)
        kind = "bcr_gemv"
    else:
        params, inputs = _gemm(op, schedule_of(op, SpmmSchedule), ctx, mats, grids, nb, k)
        kind = "bcr_spmm"
    if op.b is not None:
        inputs.append(("b", ctx.operand(op.b)))
    if op.residual is not None:
        inputs.append(("res", ctx.operand(op.residual)))
    params.update(nb=nb, k=k, mtot=m, nnz=nnz, act=act_params(op.act))
    return KernelInstance(
        kind=kind,
        params=params,
        inputs=inputs,
        outputs=[("y", ctx.result(op.y))],
        flops=2 * nnz * nb,
    )


def _gemm(
    op: Any, sched: SpmmSchedule, ctx: LoweringContext, mats: list, grids: list[np.ndarray],
    nb: int, k: int,
) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """bcr_spmm in gemm mode for `op`'s x and weights (a bcr.matmul or an RNN's W)."""
    knobs = sched.knobs()
    vw = ctx.target.vw
    rows, nv = int(knobs["rows"]), int(knobs["nv"])
    tile = nv * vw
    if 4 * k * tile > STACK_BYTES or knobs["split"] == "tiles":
        raise CodegenError(
            f"{op.name}: {sched} does not fit: a tile of {tile} rows x K = {k} over "
            f"{STACK_BYTES} bytes of stack, or a split other than groups or chunks"
        )
    groups = row_groups(mats, rows, grids=grids)
    offsets = np.concatenate([c * tile for c in groups.cols] or [[]])
    counts = groups.entries()
    starts = np.concatenate([[0], np.cumsum(counts)])
    segs = np.stack([np.zeros(len(counts)), starts[:-1], starts[1:]], axis=1)
    nchunks = math.ceil(nb / tile)
    ntasks = int(knobs["threads"])
    if knobs["split"] == "chunks":
        bounds = balanced_bounds([1] * nchunks, ntasks)
    else:
        bounds = balanced_bounds(counts + 1, ntasks)
    inputs: list[tuple[str, Any]] = [
        ("x", ctx.operand(op.x)),
        (
            "wv",
            float_blob(ctx, np.concatenate([w.ravel() for w in groups.weights] or [[]]), "bcr_w"),
        ),
        ("off", int_blob(ctx, offsets, "bcr_off")),
        ("seg", int_blob(ctx, segs, "bcr_seg")),
        ("gseg", int_blob(ctx, np.arange(groups.count + 1), "bcr_gseg")),
        ("orow", int_blob(ctx, groups.orow, "bcr_orow")),
    ]
    gblock, contig = _flush_blocks(groups.orow, rows, vw)
    params = {
        "op": "gemm",
        "gblock": gblock,
        "contig": contig,
        "rows": rows,
        "nv": nv,
        "unroll": knobs["unroll"],
        "rle": knobs["rle"],
        "pf": knobs["pf"],
        "masked": False,
        "inb": False,
        "npos": 1,
        "ngroups": groups.count,
        "nchunks": nchunks,
        "split": knobs["split"],
        "bounds": bounds,
        "entries": groups.total_entries(),
    }
    return params, inputs


def _flush_blocks(orow: np.ndarray, rows: int, vw: int) -> tuple[int, list[int]]:
    """How bcr_spmm stores its results: groups per flush block, and per block of vw
    group rows whether they are vw consecutive output rows (then one vw x vw
    register transpose and vector stores; else stores row by row). Empty when
    R does not divide the vector width: every block goes row by row."""
    if vw % rows:
        return 1, []
    blocks = orow[: len(orow) - len(orow) % vw].reshape(-1, vw).astype(np.int64)
    ok = (blocks[:, 0] >= 0) & np.all(np.diff(blocks, axis=1) == 1, axis=1)
    return vw // rows, [int(b) for b in ok]


def _gemv(
    op: Any, sched: GemvSchedule, ctx: LoweringContext, mats: list, grids: list[np.ndarray],
    nb: int,
) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """bcr_gemv for `op`'s x and weights (a bcr.matmul or an RNN's W)."""
    knobs = sched.knobs()
    vw = ctx.target.vw
    rows = int(knobs["rows"])
    if int(knobs["gather"]) % vw:
        raise CodegenError(f"{op.name}: {sched}: gather must be a multiple of the vector width {vw}")
    if int(knobs["nb_tile"]) > nb:
        raise CodegenError(f"{op.name}: {sched}: nb_tile exceeds the {nb} batch row(s)")
    groups = row_groups(mats, rows, grids=grids)
    counts = groups.entries()
    chunks = -(-counts // vw)
    panels = []
    for w, n in zip(groups.weights, chunks, strict=True):
        padded = np.zeros((n * vw, rows), dtype=np.float32)
        padded[: len(w)] = w
        panels.append(padded.reshape(n, vw, rows).transpose(0, 2, 1).ravel())
    inputs: list[tuple[str, Any]] = [
        ("x", ctx.operand(op.x)),
        ("wv", float_blob(ctx, np.concatenate(panels or [[]]), "bcr_w")),
        ("cols", int_blob(ctx, np.concatenate(groups.cols or [[]]), "bcr_cols")),
        ("gptr", int_blob(ctx, np.concatenate([[0], np.cumsum(counts)]), "bcr_gptr")),
        ("gw", int_blob(ctx, np.concatenate([[0], np.cumsum(chunks * vw * rows)]), "bcr_gw")),
        ("orow", int_blob(ctx, groups.orow, "bcr_orow")),
    ]
    params = {
        "rows": rows,
        "rle": knobs["rle"],
        "nb_tile": knobs["nb_tile"],
        "sets": knobs["sets"],
        "chunk": knobs["gather"],
        "ngroups": groups.count,
        "bounds": balanced_bounds(counts + 1, int(knobs["threads"])),
        "entries": groups.total_entries(),
    }
    return params, inputs
