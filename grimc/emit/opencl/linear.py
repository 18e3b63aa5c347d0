"""GEMM, GEMV and convolution on OpenCL, BCR-sparse and dense (templates linear, conv).

BCR weights are decoded from the same BCRC arrays as on the CPU
(`grimc.emit.kernels.bcr.load_weight`) and cut into the same register groups
(`row_groups`): R consecutive rows of the reordered row space share one list
of their kept columns, each entry holding R weights. A work-item runs one
group at one batch row / output pixel, so every input element it loads
feeds R FMAs through one `floatR` weight load, and the row permutation
folds into the output index (`orow`). Dense weights use the same kernels
with an implicit list of every column (no index table).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from xdsl.ir import Operation

from grimc.dialects import bcr, graph
from grimc.dialects.graph import ints
from grimc.emit.kernel import CodegenError, KernelInstance, LoweringContext, Ref, act_params, shape
from grimc.emit.kernels.bcr import float_blob, int_blob, load_weight, param_overrides, row_groups
from grimc.emit.kernels.bcr_matmul import linear_shape
from grimc.emit.opencl.lowering import cl_kernel, cl_lowers
from grimc.emit.opencl.schedule import KNOBS, ClSchedule, choose_linear


@dataclass(frozen=True)
class Lists:
    """Kernel inputs describing the weights: (name, ref) pairs and the group count."""

    inputs: list[tuple[str, Ref]]
    ngroups: int
    entries: int


def sparse_lists(ctx: LoweringContext, mats: list, grids: list[np.ndarray], rows: int) -> Lists:
    """BCR register groups: weights [entry][R], column per entry, group starts, output rows."""
    groups = row_groups(mats, rows, grids=grids)
    counts = groups.entries()
    weights = np.concatenate([w.ravel() for w in groups.weights] or [np.zeros(0)])
    return Lists(
        [
            ("w", float_blob(ctx, weights, "cl_bcr_w")),
            ("cols", int_blob(ctx, np.concatenate(groups.cols or [np.zeros(0)]), "cl_bcr_cols")),
            ("gptr", int_blob(ctx, np.concatenate([[0], np.cumsum(counts)]), "cl_bcr_gptr")),
            ("orow", int_blob(ctx, groups.orow, "cl_bcr_orow")),
        ],
        groups.count,
        groups.total_entries(),
    )


def dense_lists(ctx: LoweringContext, mats: list[np.ndarray], rows: int) -> Lists:
    """G dense (M, K) matrices as register-group panels [group][K][R], zero-padded rows."""
    m, k = mats[0].shape
    per = math.ceil(m / rows)
    panels = np.zeros((len(mats), per * rows, k), dtype=np.float32)
    panels[:, :m] = np.stack(mats)
    weights = panels.reshape(len(mats), per, rows, k).transpose(0, 1, 3, 2)
    orow = np.full((len(mats), per * rows), -1, dtype=np.int64)
    orow[:, :m] = np.arange(len(mats))[:, None] * m + np.arange(m)[None, :]
    return Lists(
        [("w", float_blob(ctx, weights, "cl_dense_w")), ("orow", int_blob(ctx, orow, "cl_orow"))],
        len(mats) * per,
        len(mats) * per * k,
    )


def _epilogue(ctx: LoweringContext, op: Operation) -> list[tuple[str, Ref]]:
    out = []
    if getattr(op, "b", None) is not None:
        out.append(("b", ctx.operand(op.b)))
    if op.residual is not None:
        out.append(("res", ctx.operand(op.residual)))
    return out


def _linear(
    ctx: LoweringContext,
    op: Operation,
    lists: Lists,
    sched: ClSchedule,
    x: Ref,
    nb: int,
    k: int,
    m: int,
    extra: list[tuple[str, Ref]],
    sparse: bool,
    flops: int,
) -> KernelInstance:
    dims = sched.dims(["n"])
    size = {"n": nb, "g": lists.ngroups}
    return cl_kernel(
        "linear",
        {"NB": nb, "K": k, "M": m, "KG": k, "NGROUPS": lists.ngroups},
        [size[name] for name in sorted(dims, key=dims.get)],
        [("x", x), *lists.inputs, *extra],
        [("y", ctx.result(op.y))],
        sched.local,
        flops,
        rows=sched.rows,
        sparse=sparse,
        dims=dims,
        act=act_params(op.act),
        entries=lists.entries,
    )


@cl_lowers(bcr.MatMulOp)
def lower_bcr_matmul(op: bcr.MatMulOp, ctx: LoweringContext) -> KernelInstance:
    nb, k, m = linear_shape(op)
    mats, grids = load_weight(ctx, op.weights.data, op.encoding)
    sched = choose_linear(grids, param_overrides(op, KNOBS))
    lists = sparse_lists(ctx, mats, grids, sched.rows)
    nnz = int(sum(np.count_nonzero(g) for g in grids))
    return _linear(
        ctx, op, lists, sched, ctx.operand(op.x), nb, k, m, _epilogue(ctx, op), True, 2 * nnz * nb
    )


def _dense_linear(
    op: Operation, ctx: LoweringContext, w_mk: np.ndarray, x: Ref, nb: int, bias: Ref | None
) -> KernelInstance:
    m, k = w_mk.shape
    sched = choose_linear([w_mk], param_overrides(op, KNOBS))
    lists = dense_lists(ctx, [w_mk], sched.rows)
    extra = [("b", bias)] if bias is not None else []
    if op.residual is not None:
        extra.append(("res", ctx.operand(op.residual)))
    return _linear(ctx, op, lists, sched, x, nb, k, m, extra, False, 2 * m * k * nb)


@cl_lowers(graph.GemmOp)
def lower_gemm(op: graph.GemmOp, ctx: LoweringContext) -> KernelInstance:
    """Gemm with constant B and A not transposed: alpha folds into W, beta into the bias."""
    w = ctx.const(op.b)
    if w is None or op.trans_a.value.data:
        raise CodegenError("graph.gemm on opencl: needs a constant B and trans_a = 0")
    nb, k = shape(op.a)
    w_mk = (w if op.trans_b.value.data else w.T) * float(op.alpha.value.data)
    m = w_mk.shape[0]
    bias = None
    beta = float(op.beta.value.data)
    if op.c is not None and beta != 0.0:
        c = ctx.const(op.c)
        if c is None or c.size != m:
            raise CodegenError("graph.gemm on opencl: C must be a constant [N] bias")
        bias = float_blob(ctx, c.reshape(-1).astype(np.float64) * beta, "cl_gemm_bias")
    return _dense_linear(op, ctx, np.asarray(w_mk, dtype=np.float32), ctx.operand(op.a), nb, bias)


@cl_lowers(graph.MatMulOp)
def lower_matmul(op: graph.MatMulOp, ctx: LoweringContext) -> KernelInstance:
    """x[..., K] @ B[K, N] with constant 2-D B: leading dims of x are batch rows."""
    w = ctx.const(op.b)
    xs = shape(op.a)
    if w is None or w.ndim != 2 or len(xs) < 2:
        raise CodegenError("graph.matmul on opencl: needs a constant 2-D right operand")
    return _dense_linear(
        op, ctx, np.ascontiguousarray(w.T), ctx.operand(op.a), math.prod(xs[:-1]), None
    )


# --------------------------------------------------------------------------
# convolution


def _conv(
    ctx: LoweringContext,
    op: Operation,
    lists: Lists,
    sched: ClSchedule,
    geometry: dict[str, int],
    groups: int,
    extra: list[tuple[str, Ref]],
    sparse: bool,
    flops: int,
) -> KernelInstance:
    n = geometry.pop("N")
    dims = sched.dims(["p", "n"])
    size = {"p": geometry["OH"] * geometry["OW"], "g": lists.ngroups, "n": n}
    return cl_kernel(
        "conv",
        {**geometry, "NB": n, "GPM": lists.ngroups // groups, "NGROUPS": lists.ngroups},
        [size[name] for name in sorted(dims, key=dims.get)],
        [("x", ctx.operand(op.x)), *lists.inputs, *extra],
        [("y", ctx.result(op.y))],
        sched.local,
        flops,
        rows=sched.rows,
        sparse=sparse,
        dims=dims,
        act=act_params(op.act),
        entries=lists.entries,
    )


def conv_geometry(op: Operation, kernel: tuple[int, int]) -> dict[str, int]:
    n, cin, h, w = shape(op.x)
    _, cout, oh, ow = shape(op.y)
    (sh, sw), (dh, dw) = ints(op.strides), ints(op.dilations)
    pt, pl = ints(op.pads)[:2]
    groups = op.group.value.data
    kh, kw = kernel
    return dict(
        N=n, CIN=cin, H=h, W=w, COUT=cout, OH=oh, OW=ow, KH=kh, KW=kw, SH=sh, SW=sw,
        PT=pt, PL=pl, DH=dh, DW=dw, CIN_G=cin // groups, KG=cin // groups * kh * kw,
    )  # fmt: skip


@cl_lowers(bcr.Conv2dOp)
def lower_bcr_conv(op: bcr.Conv2dOp, ctx: LoweringContext) -> KernelInstance:
    kh, kw = ints(op.kernel_shape)
    geo = conv_geometry(op, (kh, kw))
    mats, grids = load_weight(ctx, op.weights.data, op.encoding)
    sched = choose_linear(grids, param_overrides(op, KNOBS))
    lists = sparse_lists(ctx, mats, grids, sched.rows)
    nnz = int(sum(np.count_nonzero(g) for g in grids))
    flops = 2 * nnz * geo["N"] * geo["OH"] * geo["OW"]
    groups = op.group.value.data
    return _conv(ctx, op, lists, sched, geo, groups, _epilogue(ctx, op), True, flops)


@cl_lowers(graph.ConvOp)
def lower_conv(op: graph.ConvOp, ctx: LoweringContext) -> KernelInstance:
    w = ctx.const(op.w)
    if w is None:
        raise CodegenError("graph.conv on opencl: the weight must be constant")
    cout, cin_g, kh, kw = w.shape
    groups = op.group.value.data
    geo = conv_geometry(op, (kh, kw))
    mats = list(w.reshape(groups, cout // groups, cin_g * kh * kw))
    sched = choose_linear(mats, param_overrides(op, KNOBS))
    lists = dense_lists(ctx, mats, sched.rows)
    flops = 2 * w.size * geo["N"] * geo["OH"] * geo["OW"]
    return _conv(ctx, op, lists, sched, geo, groups, _epilogue(ctx, op), False, flops)
