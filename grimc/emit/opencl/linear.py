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
from grimc.emit.kernels.bcr import float_blob, int_blob, load_weight, row_groups
from grimc.emit.kernels.bcr_matmul import linear_shape
from grimc.emit.opencl.lowering import ClMapping, cl_kernel, cl_lowers, linear_mapping
from grimc.emit.opencl.tensor_ops import broadcast_strides, row_major_strides


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


def _grouped(
    kind: str,
    ctx: LoweringContext,
    op: Operation,
    lists: Lists,
    sched: ClMapping,
    defines: dict[str, int],
    sizes: dict[str, int],
    x: Ref,
    extra: list[tuple[str, Ref]],
    sparse: bool,
    flops: int,
) -> KernelInstance:
    """A kernel over register groups (`linear`, `conv`): an NDRange axis per data
    index of `sizes` (in the order the schedule's `dims` takes them) and one for
    the groups; arguments x, the weights' lists, then the epilogue's `extra`."""
    dims = sched.dims(list(sizes))
    size = {**sizes, "g": lists.ngroups}
    return cl_kernel(
        kind,
        {**defines, "NGROUPS": lists.ngroups},
        [size[name] for name in sorted(dims, key=dims.get)],
        [("x", x), *lists.inputs, *extra],
        [("y", ctx.result(op.y))],
        sched.local_for(len(dims)),
        flops,
        rows=sched.rows,
        sparse=sparse,
        dims=dims,
        act=act_params(op.act),
        entries=lists.entries,
    )


def _linear(
    ctx: LoweringContext,
    op: Operation,
    lists: Lists,
    sched: ClMapping,
    x: Ref,
    nb: int,
    k: int,
    m: int,
    extra: list[tuple[str, Ref]],
    sparse: bool,
    flops: int,
) -> KernelInstance:
    """y[nb, m] = x[nb, k] W^T: a work-item per (batch row, register group)."""
    defines = {"NB": nb, "K": k, "M": m, "KG": k}
    return _grouped("linear", ctx, op, lists, sched, defines, {"n": nb}, x, extra, sparse, flops)


@cl_lowers(bcr.MatMulOp)
def lower_bcr_matmul(op: bcr.MatMulOp, ctx: LoweringContext) -> KernelInstance:
    nb, k, m = linear_shape(op)
    mats, grids = load_weight(ctx, op.weights.data, op.encoding)
    sched = linear_mapping(op)
    lists = sparse_lists(ctx, mats, grids, sched.rows)
    nnz = int(sum(np.count_nonzero(g) for g in grids))
    return _linear(
        ctx, op, lists, sched, ctx.operand(op.x), nb, k, m, _epilogue(ctx, op), True, 2 * nnz * nb
    )


def _dense_linear(
    op: Operation, ctx: LoweringContext, w_mk: np.ndarray, x: Ref, nb: int, bias: Ref | None
) -> KernelInstance:
    m, k = w_mk.shape
    sched = linear_mapping(op)
    lists = dense_lists(ctx, [w_mk], sched.rows)
    extra = [("b", bias)] if bias is not None else []
    if getattr(op, "residual", None) is not None:
        extra.append(("res", ctx.operand(op.residual)))
    return _linear(ctx, op, lists, sched, x, nb, k, m, extra, False, 2 * m * k * nb)


@cl_lowers(graph.GemmOp)
def lower_gemm(op: graph.GemmOp, ctx: LoweringContext) -> KernelInstance:
    """Constant B, A not transposed, C absent or a [N] bias: the linear kernel
    (alpha folds into W, beta into the bias); any other Gemm: `matmul`."""
    w = ctx.const(op.b)
    nb, k = shape(op.a)
    c = ctx.const(op.c) if op.c is not None else None
    beta = float(op.beta.value.data)
    n_out = shape(op.b)[0 if op.trans_b.value.data else 1]
    bias_ok = op.c is None or beta == 0.0 or (c is not None and c.size == n_out)
    if w is None or op.trans_a.value.data or not bias_ok:
        return _matmul(op, ctx, bool(op.trans_a.value.data), bool(op.trans_b.value.data))
    w_mk = (w if op.trans_b.value.data else w.T) * float(op.alpha.value.data)
    bias = None
    if op.c is not None and beta != 0.0:
        bias = float_blob(ctx, c.reshape(-1).astype(np.float64) * beta, "cl_gemm_bias")
    return _dense_linear(op, ctx, np.asarray(w_mk, dtype=np.float32), ctx.operand(op.a), nb, bias)


@cl_lowers(graph.MatMulOp)
def lower_matmul(op: graph.MatMulOp, ctx: LoweringContext) -> KernelInstance:
    """x[..., K] @ W[K, N] with constant 2-D W: the linear kernel over x's rows;
    anything else (both operands activations, batch broadcasting): `matmul`."""
    w = ctx.const(op.b)
    xs = shape(op.a)
    if w is not None and w.ndim == 2 and len(xs) >= 2:
        x_rows = math.prod(xs[:-1])
        return _dense_linear(op, ctx, np.ascontiguousarray(w.T), ctx.operand(op.a), x_rows, None)
    return _matmul(op, ctx, False, False)


def _matmul(op: Operation, ctx: LoweringContext, trans_a: bool, trans_b: bool) -> KernelInstance:
    """The general `matmul` kernel (numpy broadcasting; Gemm transposes, alpha, beta C)."""
    xs, bs = shape(op.a), shape(op.b)
    a2 = (1, *xs) if len(xs) == 1 else xs
    b2 = (*bs, 1) if len(bs) == 1 else bs
    m, k = (a2[-1], a2[-2]) if trans_a else (a2[-2], a2[-1])
    n = b2[-2] if trans_b else b2[-1]
    batch = list(graph.broadcast_shapes(a2[:-2], b2[:-2])) or [1]
    nbatch = math.prod(batch)
    defines = {
        "M": m, "N": n, "K": k, "NBATCH": nbatch,
        "A_RS": 1 if trans_a else k, "A_CS": m if trans_a else 1,
        "B_RS": 1 if trans_b else n, "B_CS": k if trans_b else 1, "C_RS": 0, "C_CS": 0,
    }  # fmt: skip
    inputs = [("a", ctx.operand(op.a)), ("b", ctx.operand(op.b))]
    alpha, beta = 1.0, 0.0
    if isinstance(op, graph.GemmOp):
        alpha, beta = float(op.alpha.value.data), float(op.beta.value.data)
        if op.c is not None and beta != 0.0:
            cm, cn = ((1, 1) + shape(op.c))[-2:]
            defines["C_RS"] = cn if cm == m and m > 1 else 0
            defines["C_CS"] = 1 if cn == n and n > 1 else 0
            inputs.append(("c", ctx.operand(op.c)))
        if op.residual is not None:
            inputs.append(("res", ctx.operand(op.residual)))
    return cl_kernel(
        "matmul",
        defines,
        [n, m, nbatch],
        inputs,
        [("y", ctx.result(op.y))],
        flops=2 * m * n * k * nbatch,
        batch=batch,
        batch_strides=row_major_strides(batch),
        a_strides=[s * m * k for s in broadcast_strides(list(a2[:-2]) or [1], batch)],
        b_strides=[s * k * n for s in broadcast_strides(list(b2[:-2]) or [1], batch)],
        alpha=alpha,
        beta=beta,
        act=act_params(op.act),
    )


# --------------------------------------------------------------------------
# convolution


def _conv(
    ctx: LoweringContext,
    op: Operation,
    lists: Lists,
    sched: ClMapping,
    geometry: dict[str, int],
    groups: int,
    extra: list[tuple[str, Ref]],
    sparse: bool,
    flops: int,
) -> KernelInstance:
    """Implicit-GEMM convolution: a work-item per (output pixel, register group, image)."""
    n = geometry.pop("N")
    defines = {**geometry, "NB": n, "GPM": lists.ngroups // groups}
    sizes = {"p": geometry["OH"] * geometry["OW"], "n": n}
    x = ctx.operand(op.x)
    return _grouped("conv", ctx, op, lists, sched, defines, sizes, x, extra, sparse, flops)


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
    sched = linear_mapping(op)
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
    sched = linear_mapping(op)
    lists = dense_lists(ctx, mats, sched.rows)
    flops = 2 * w.size * geo["N"] * geo["OH"] * geo["OW"]
    return _conv(ctx, op, lists, sched, geo, groups, _epilogue(ctx, op), False, flops)
