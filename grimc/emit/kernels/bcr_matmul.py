"""`bcr.matmul` (FC layers, batched RNN input projections): y[n] = act(W x[n] + b + res).

Two kernels, chosen by batch size:

- `bcr_gemv` (few batch rows, e.g. N = 1): vectorized over each register
  group's column list. Per group of R rows the kernel gathers the input at
  the group's columns once (into a stack buffer) and streams the group's
  weights, laid out [column chunk][row][lane], exactly once per pass: every
  gathered input vector feeds R FMAs (redundant-load elimination), and up to
  `nb_tile` batch rows share each weight load. Horizontal sums at the end.
- `bcr_spmm` in gemm mode (many batch rows): the conv kernel's register tile
  over batch rows instead of pixels; each tile of batch rows is transposed
  into a stack buffer [K][tile] so list entries are plain row offsets, and
  results are stored transposed (the permutation folds into the stores).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from grimc.dialects import bcr
from grimc.emit.kernel import KernelInstance, LoweringContext, act_params, lowers, shape
from grimc.emit.kernels.bcr import (
    balanced_bounds,
    choose_tile,
    float_blob,
    group_counts,
    int_blob,
    is_default,
    load_weight,
    param_overrides,
    row_groups,
    sparse_format,
    task_count,
)
from grimc.target import RegisterBudget, register_budget

STACK_BYTES = 256 * 1024
"""Largest stack buffer a kernel may use (transposed batch tile, gathered inputs)."""

GATHER_CHUNK = 2048
"""Entries gathered per pass of the GEMV kernel (a multiple of every vector width)."""

GATHER_CYCLES = 0.5
"""Modeled cost of gathering one input element (a scalar load and store)."""


def linear_shape(op: bcr.MatMulOp) -> tuple[int, int, int]:
    """(batch rows, K, M) of y[..., M] = x[..., K] W^T."""
    xs = shape(op.x)
    return math.prod(xs[:-1]), xs[-1], op.encoding.matrix_shape[0]


def use_gemm(nb: int, k: int, vw: int) -> bool:
    """Many batch rows: the transposed register tile beats re-streaming weights."""
    return nb >= 4 * vw and 4 * k * 2 * vw <= STACK_BYTES


def gemv_rows(grids: list[np.ndarray], vw: int, nb_tile: int, budget: RegisterBudget) -> int:
    """R minimizing modeled cycles: per chunk of vw columns, R weight loads and
    FMAs per batch row plus the gather, which R rows share."""
    costs = []
    for rows in range(1, budget.max_rows + 1):
        chunks = int(np.ceil(group_counts(grids, rows) / vw).sum())
        nbr = max(1, min(nb_tile, budget.accumulators // rows))
        per_chunk = max(rows * nbr / budget.fma_per_cycle, (rows + nbr) / budget.loads_per_cycle)
        costs.append((chunks * (per_chunk / nbr + vw * GATHER_CYCLES), -rows, rows))
    return min(costs)[2]


@lowers(bcr.MatMulOp)
def lower_bcr_matmul(op: bcr.MatMulOp, ctx: LoweringContext) -> KernelInstance:
    if sparse_format(op, ctx) == "csr":
        from grimc.emit.kernels.csr import lower_csr_matmul

        return lower_csr_matmul(op, ctx)
    nb, k, m = linear_shape(op)
    mats, grids = load_weight(ctx, op.weights.data, op.encoding)
    nnz = int(sum(np.count_nonzero(g) for g in grids))
    if use_gemm(nb, k, ctx.target.vw):
        params, inputs = _gemm(op, ctx, mats, grids, nb, k)
        kind = "bcr_spmm"
    else:
        params, inputs = _gemv(op, ctx, mats, grids, nb, k)
        kind = "bcr_gemv"
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
    op: bcr.MatMulOp, ctx: LoweringContext, mats: list, grids: list[np.ndarray], nb: int, k: int
) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    vw = ctx.target.vw
    budget = register_budget(ctx.target)
    sched = op.encoding.schedule
    auto = is_default(sched)
    fixed_rows = None if auto or sched.rows.data == 1 else sched.rows.data
    max_nv = max(1, min(budget.max_vectors, STACK_BYTES // (4 * k * vw)))
    budget = RegisterBudget(
        budget.accumulators,
        budget.max_rows,
        max_nv,
        budget.fma_per_cycle,
        budget.loads_per_cycle,
        budget.fma_latency,
    )
    rows, nv = choose_tile(
        grids,
        budget,
        op.encoding.block_shape[0],
        lambda nv: math.ceil(nb / (nv * vw)),
        rows=fixed_rows,
    )
    if not auto and sched.tile.data > 1:
        nv = max(1, min(max_nv, math.ceil(sched.tile.data / vw)))
    tile = nv * vw
    groups = row_groups(mats, rows, grids=grids)
    offsets = np.concatenate([c * tile for c in groups.cols] or [[]])
    counts = groups.entries()
    starts = np.concatenate([[0], np.cumsum(counts)])
    segs = np.stack([np.zeros(len(counts)), starts[:-1], starts[1:]], axis=1)
    nchunks = math.ceil(nb / tile)
    ntasks = task_count(sched, ctx, int(groups.total_entries() * rows * nb))
    if nchunks >= 2 * ntasks:
        split, bounds = "chunks", balanced_bounds([1] * nchunks, ntasks)
    else:
        split, bounds = "groups", balanced_bounds(counts + 1, ntasks)
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
    params = {
        "op": "gemm",
        "rows": rows,
        "nv": nv,
        "unroll": 1 if auto else sched.unroll.data,
        "rle": True if auto else bool(sched.rle.data),
        "pf": 0,
        "masked": False,
        "inb": False,
        "npos": 1,
        "ngroups": groups.count,
        "nchunks": nchunks,
        "split": split,
        "bounds": bounds,
        "entries": groups.total_entries(),
    }
    return params, inputs


def _gemv(
    op: bcr.MatMulOp, ctx: LoweringContext, mats: list, grids: list[np.ndarray], nb: int, k: int
) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    vw = ctx.target.vw
    budget = register_budget(ctx.target)
    sched = op.encoding.schedule
    auto = is_default(sched)
    knobs = param_overrides(op, ("rows", "nb_tile", "sets", "rle"))
    nb_cap = max(1, min(nb, 4))
    rows = gemv_rows(grids, vw, nb_cap, budget)
    if not auto and sched.rows.data > 1:
        rows = sched.rows.data
    rows = int(knobs.get("rows", rows))
    nb_tile = int(knobs.get("nb_tile", max(1, min(nb_cap, budget.accumulators // rows))))
    sets = max(1, min(4, math.ceil(2 * budget.fma_latency / (rows * nb_tile))))
    sets = int(knobs.get("sets", sets))
    groups = row_groups(mats, rows, grids=grids)
    counts = groups.entries()
    chunks = -(-counts // vw)
    panels = []
    for w, n in zip(groups.weights, chunks, strict=True):
        padded = np.zeros((n * vw, rows), dtype=np.float32)
        padded[: len(w)] = w
        panels.append(padded.reshape(n, vw, rows).transpose(0, 2, 1).ravel())
    ntasks = task_count(sched, ctx, int(counts.sum() * rows * nb))
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
        "rle": bool(knobs.get("rle", True if auto else sched.rle.data)),
        "nb_tile": nb_tile,
        "sets": sets,
        "chunk": min(GATHER_CHUNK, max(vw, int(chunks.max(initial=1)) * vw)),
        "ngroups": groups.count,
        "bounds": balanced_bounds(counts + 1, ntasks),
        "entries": groups.total_entries(),
    }
    return params, inputs
