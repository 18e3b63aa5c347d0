"""Dense `graph.gemm` and `graph.matmul`: one register-blocked, vectorized GEMM.

Both ops lower to the `gemm` template: y[b] = act(A[b] B[b] + beta C + residual)
over a batch of `nb` matrix products (matmul broadcasting is resolved here into
per-batch matrix offsets, so the template never sees a broadcast).

Schedule: the op's `#sched.gemm` (chosen by the schedule-select pass, read here):
- register tile `mr` rows x `nv` vectors of columns (`nr = nv * vw`): each B
  vector load feeds `mr` FMAs, each broadcast A value feeds `nv`;
- `kc`: the K chunk (one `kc x nr` B panel chunk stays in L1), `mcb`: mr-row
  blocks per L2 block of A;
- `ku`: K unrolled into independent accumulator sets (hides FMA latency when
  the tile is small, i.e. the GEMV case M = 1);
- `split` ("b" batches, "n" column panels, "m" row blocks) and `ntasks`.

Constant B (weights, the usual case) is packed at compile time into panels
`[batch][N/nr][K][nr]`, zero padded at the right edge and pre-scaled by alpha,
so the inner loop streams one contiguous array. For M = 1 (VGG's FC layers)
that *is* a memory-bound GEMV: the weights are read exactly once, in order,
each thread streaming its own contiguous range of panels. A non-constant B is
packed chunk by chunk at run time into a stack buffer of `kc x nr` floats.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from xdsl.ir import SSAValue

from grimc.dialects import graph
from grimc.dialects.graph import WeightOp
from grimc.dialects.sched import GemmSchedule, schedule_of
from grimc.emit.blob import Deferred
from grimc.emit.kernel import (
    KernelInstance,
    LoweringContext,
    Ref,
    act_params,
    lowers,
    shape,
)


@dataclass(frozen=True)
class Problem:
    """A batch of `nb` products of an M x K matrix by a K x N matrix."""

    m: int
    n: int
    k: int
    nb: int = 1
    b_const: bool = True


def gemm_problem(op: graph.GemmOp) -> Problem:
    """The product ONNX Gemm computes: (M x K) A times (K x N) B."""
    a_shape, b_shape = shape(op.a), shape(op.b)
    m, k = (a_shape[1], a_shape[0]) if op.trans_a.value.data else a_shape
    n = b_shape[0] if op.trans_b.value.data else b_shape[1]
    return Problem(m, n, k, 1, isinstance(op.b.owner, WeightOp))


def matmul_problem(op: graph.MatMulOp) -> tuple[Problem, list[int] | None, list[int] | None]:
    """numpy matmul as a batch of products (1-D operands promoted, batch dims broadcast),
    with A's element offset and B's matrix index per batch (None: no batch). When B has
    no batch, A's batch folds into M (A and Y are contiguous row blocks)."""
    a_shape, b_shape = shape(op.a), shape(op.b)
    a2 = (1, *a_shape) if len(a_shape) == 1 else a_shape
    b2 = (*b_shape, 1) if len(b_shape) == 1 else b_shape
    m, k, n = a2[-2], a2[-1], b2[-1]
    a_batch, b_batch = a2[:-2], b2[:-2]
    b_const = isinstance(op.b.owner, WeightOp)
    if math.prod(b_batch) == 1:
        return Problem(m * math.prod(a_batch), n, k, 1, b_const), None, None
    out_batch = graph.broadcast_shapes(a_batch, b_batch)
    abat = [i * m * k for i in _batch_map(a_batch, out_batch)]
    bbat = _batch_map(b_batch, out_batch)
    return Problem(m, n, k, math.prod(out_batch), b_const), abat, bbat


def panels(b: np.ndarray, nr: int, alpha: float = 1.0) -> Iterator[np.ndarray]:
    """The column panels of [..., K, N] in blob order: [K, nr] each, zero padded,
    times alpha. One at a time: a transposed or padded copy of a large B
    (VGG-16's fc6 is 411 MB) would double or triple its memory while compiling."""
    *_, k, n = b.shape
    for matrix in b.reshape(-1, k, n):
        for p in range(math.ceil(n / nr)):
            cols = matrix[:, p * nr : (p + 1) * nr]
            panel = np.zeros((k, nr), dtype=np.float32)
            panel[:, : cols.shape[-1]] = cols if alpha == 1.0 else cols.astype(np.float64) * alpha
            yield panel


def _packed_shape(b: np.ndarray, nr: int) -> tuple[int, ...]:
    *batch, k, n = b.shape
    return (*batch, math.ceil(n / nr), k, nr)


def pack_panels(b: np.ndarray, nr: int, alpha: float = 1.0) -> np.ndarray:
    """[..., K, N] -> [..., ceil(N/nr), K, nr]: column panels, zero padded, times alpha."""
    shape = _packed_shape(b, nr)
    out = np.empty(shape, dtype=np.float32)
    for dst, panel in zip(out.reshape(-1, *shape[-2:]), panels(b, nr, alpha), strict=True):
        dst[...] = panel
    return out


def deferred_panels(b: np.ndarray, nr: int, alpha: float = 1.0) -> Deferred:
    """`pack_panels` as a blob entry packed while the blob is written, so a
    constant B is in memory once (as itself), never beside its packed copy."""
    return Deferred(_packed_shape(b, nr), lambda: panels(b, nr, alpha))


@dataclass
class Operands:
    """Pointer operands of one gemm kernel and how the template addresses them."""

    a: Ref
    a_rs: int
    a_cs: int
    b: Ref
    b_rs: int = 0  # runtime B only: element (k, j) at b[k*b_rs + j*b_cs]
    b_cs: int = 0
    abat: list[int] | None = None  # element offset of A's matrix per batch
    bbat: list[int] | None = None  # matrix index of B per batch
    c: Ref | None = None
    c_rs: int = 0
    c_cs: int = 0
    beta: float = 1.0
    residual: Ref | None = None


def gemm_kernel(
    ctx: LoweringContext,
    prob: Problem,
    sched: GemmSchedule,
    ops: Operands,
    y: SSAValue,
    act: Any,
    alpha: float,
) -> KernelInstance:
    """The `gemm` KernelInstance for a problem whose B is already in the blob
    (packed with `sched`'s panel width when prob.b_const) or is an activation
    (addressed through ops.b_rs/b_cs)."""
    knobs = sched.knobs()
    nr = int(knobs["nv"]) * ctx.target.vw
    nb = prob.nb
    params: dict[str, Any] = {
        "M": prob.m,
        "N": prob.n,
        "K": prob.k,
        "nb": nb,
        "np": math.ceil(prob.n / nr),
        "b_packed": prob.b_const,
        "a_rs": ops.a_rs,
        "a_cs": ops.a_cs,
        "b_rs": ops.b_rs,
        "b_cs": ops.b_cs,
        "alpha": alpha,
        "abat": ops.abat or [0] * nb,
        "bbat": ops.bbat or [0] * nb,
        "c_rs": ops.c_rs,
        "c_cs": ops.c_cs,
        "beta": ops.beta,
        "act": act,
        **knobs,
    }
    inputs: list[tuple[str, Ref]] = [("a", ops.a), ("b", ops.b)]
    if ops.c is not None:
        inputs.append(("c", ops.c))
    if ops.residual is not None:
        inputs.append(("r", ops.residual))
    return KernelInstance(
        kind="gemm",
        params=params,
        inputs=inputs,
        outputs=[("y", ctx.result(y))],
        flops=2 * prob.m * prob.n * prob.k * nb,
    )


def _bias(ctx: LoweringContext, op: graph.GemmOp, m: int, n: int, ops: Operands) -> None:
    """Gemm's C: a blob pre-scaled by beta when constant, else beta at run time.
    Broadcasting is a row stride and a column stride of 0 or 1."""
    beta = float(op.beta.value.data)
    if op.c is None or beta == 0.0:
        return
    cs = shape(op.c)
    cm, cn = ((1, 1) + cs)[-2:]
    ops.c_rs = cn if cm == m and m > 1 else 0
    ops.c_cs = 1 if cn == n and n > 1 else 0
    const = ctx.const(op.c)
    if const is not None:
        scaled = const.astype(np.float64) * beta if beta != 1.0 else const
        ops.c = ctx.blob(np.asarray(scaled, dtype=np.float32).reshape(-1), "gemm_bias")
    else:
        ops.c, ops.beta = ctx.operand(op.c), beta


@lowers(graph.GemmOp)
def lower_gemm(op: graph.GemmOp, ctx: LoweringContext) -> KernelInstance:
    """ONNX Gemm: alpha folds into packed B (or the run-time pack), beta into C."""
    trans_a, trans_b = bool(op.trans_a.value.data), bool(op.trans_b.value.data)
    prob = gemm_problem(op)
    m, n, k = prob.m, prob.n, prob.k
    alpha = float(op.alpha.value.data)
    const_b = ctx.const(op.b)
    sched = schedule_of(op, GemmSchedule)
    a_rs, a_cs = (1, m) if trans_a else (k, 1)
    if const_b is not None:
        b_kn = const_b.T if trans_b else const_b
        packed = deferred_panels(b_kn, sched.nv.data * ctx.target.vw, alpha)
        ops = Operands(ctx.operand(op.a), a_rs, a_cs, ctx.blob(packed, "gemm_packed_b"))
        alpha = 1.0
    else:
        b_rs, b_cs = (1, k) if trans_b else (n, 1)
        ops = Operands(ctx.operand(op.a), a_rs, a_cs, ctx.operand(op.b), b_rs, b_cs)
    _bias(ctx, op, m, n, ops)
    if op.residual is not None:
        ops.residual = ctx.operand(op.residual)
    return gemm_kernel(ctx, prob, sched, ops, op.y, act_params(op.act), alpha)


def _batch_map(batch: tuple[int, ...], out_batch: tuple[int, ...]) -> list[int]:
    """For each output batch index, the flat index of the operand's matrix."""
    padded = (1,) * (len(out_batch) - len(batch)) + batch
    ids = np.arange(math.prod(batch), dtype=np.int64).reshape(padded)
    return [int(i) for i in np.broadcast_to(ids, out_batch).reshape(-1)]


@lowers(graph.MatMulOp)
def lower_matmul(op: graph.MatMulOp, ctx: LoweringContext) -> KernelInstance:
    """numpy matmul (see `matmul_problem`)."""
    prob, abat, bbat = matmul_problem(op)
    k, n = prob.k, prob.n
    const_b = ctx.const(op.b)
    sched = schedule_of(op, GemmSchedule)
    if const_b is not None:
        packed = deferred_panels(const_b.reshape(-1, k, n), sched.nv.data * ctx.target.vw)
        b_ref, b_rs, b_cs = ctx.blob(packed, "matmul_packed_b"), 0, 0
    else:
        b_ref, b_rs, b_cs = ctx.operand(op.b), n, 1
    ops = Operands(ctx.operand(op.a), k, 1, b_ref, b_rs, b_cs, abat, bbat)
    return gemm_kernel(ctx, prob, sched, ops, op.y, act_params(op.act), 1.0)
