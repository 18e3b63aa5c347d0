"""Data movement: `graph.slice`, `graph.pad`, `graph.expand` and nearest
`graph.resize` as one `axis_gather` kernel; linear `graph.resize` as `resize_linear`;
`graph.gather` (run-time indices) as `index_gather`.

Each of the gather ops reads, for output index i on axis a, input index
src_a(i) (or none: the pad value). The lowering computes those per-axis tables
at compile time (ONNX semantics live here, in numpy), premultiplies them by the
input strides and puts them in the blob; the template only sums table entries
and copies, with a memcpy per row when the last axis is read contiguously.
Linear Resize interpolates over the last two axes (the spatial ones of NCHW;
the other scales must be 1) from per-axis index pairs and weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from grimc.dialects import graph
from grimc.emit.kernel import CodegenError, KernelInstance, LoweringContext, Ref, lowers, shape


def row_strides(dims: Sequence[int]) -> list[int]:
    strides, step = [0] * len(dims), 1
    for axis in reversed(range(len(dims))):
        strides[axis] = step
        step *= dims[axis]
    return strides


@dataclass(frozen=True)
class Gather:
    """y[i0, i1, ...] = x[offsets[0][i0] + offsets[1][i1] + ...], or `value` where
    an offset is -1: per output axis, the input offset (index x input stride)."""

    offsets: list[np.ndarray]
    value: float = 0.0


def gather_of(
    op: graph.SingleInputOp,
    tables: Sequence[np.ndarray],
    value: float = 0.0,
    in_dims: tuple[int, ...] | None = None,
) -> Gather:
    """y[i0, i1, ...] = x[t0[i0], t1[i1], ...], or `value` where a table holds -1;
    `in_dims` views x with the result's rank (leading unit axes) for Expand."""
    in_dims = in_dims or shape(op.x)
    offsets = [
        np.where(t < 0, -1, t * s).astype(np.int32)
        for t, s in zip(tables, row_strides(in_dims), strict=True)
    ]
    return Gather(offsets, value)


def axis_gather(ctx: LoweringContext, op: graph.SingleInputOp, gather: Gather) -> KernelInstance:
    """The `axis_gather` kernel of `gather`."""
    offsets, value, out_dims = gather.offsets, gather.value, shape(op.y)
    last = offsets[-1]
    contiguous = bool((last >= 0).all() and (np.diff(last) == 1).all())
    bases = np.cumsum([0] + [len(t) for t in offsets[:-1]]).tolist()
    return KernelInstance(
        kind="axis_gather",
        params={
            "dims": list(out_dims),
            "bases": bases,
            "rows": math.prod(out_dims[:-1]),
            "contiguous": contiguous,
            "first": int(last[0]),
            "value": value,
        },
        inputs=[("x", ctx.operand(op.x)), ("tab", ctx.blob(np.concatenate(offsets), "gather", np.int32))],
        outputs=[("y", ctx.result(op.y))],
        flops=0,
    )


def slice_gather(op: graph.SliceOp) -> Gather:
    tables = [
        start + step * np.arange(n)
        for start, step, n in zip(graph.ints(op.starts), graph.ints(op.steps), shape(op.y), strict=True)
    ]
    return gather_of(op, tables)


def pad_table(n: int, before: int, after: int, mode: str) -> np.ndarray:
    """Source index of each padded position on one axis (-1: the constant).

    reflect mirrors without repeating the edge (period 2 (n - 1))."""
    i = np.arange(-before, n + after)
    if mode == "edge":
        return np.clip(i, 0, n - 1)
    if mode == "reflect":
        period = 2 * (n - 1) if n > 1 else 1
        r = np.mod(i, period)
        return np.where(r < n, r, period - r) if n > 1 else np.zeros_like(i)
    return np.where((i >= 0) & (i < n), i, -1)


def pad_gather(op: graph.PadOp) -> Gather:
    dims, pads = shape(op.x), graph.ints(op.pads)
    rank = len(dims)
    tables = [pad_table(n, pads[a], pads[a + rank], op.mode.data) for a, n in enumerate(dims)]
    return gather_of(op, tables, op.value.value.data)


def expand_gather(op: graph.ExpandOp) -> Gather:
    out_dims = shape(op.y)
    in_dims = (1,) * (len(out_dims) - len(shape(op.x))) + shape(op.x)
    tables = [np.arange(m) if n == m else np.zeros(m, np.int64) for n, m in zip(in_dims, out_dims, strict=True)]
    return gather_of(op, tables, in_dims=in_dims)


GATHERS: dict[type[graph.SingleInputOp], Callable[..., Gather]] = {
    graph.SliceOp: slice_gather,
    graph.PadOp: pad_gather,
    graph.ExpandOp: expand_gather,
}
"""The ops that are one gather on every target, and their tables."""


@lowers(*GATHERS)
def lower_gather(op: graph.SingleInputOp, ctx: LoweringContext) -> KernelInstance:
    return axis_gather(ctx, op, GATHERS[type(op)](op))


def source_coordinates(n_in: int, n_out: int, scale: float, mode: str) -> np.ndarray:
    """ONNX Resize coordinate transformation: input coordinate of each output index.

    As in the ONNX reference, the resized length in the formulas is the
    unrounded n_in * scale; when that is n_out up to float32 rounding (sizes
    were given, or the scale is exact) it is n_out, as onnxruntime has it."""
    i = np.arange(n_out, dtype=np.float64)
    length = n_in * scale
    if abs(length - n_out) <= 1e-5 * n_out:
        length = float(n_out)
    if mode == "align_corners":
        return np.zeros(n_out) if length == 1 else i * (n_in - 1) / (length - 1)
    if mode == "asymmetric":
        return i / scale
    if mode == "pytorch_half_pixel":
        return (i + 0.5) / scale - 0.5 if length > 1 else np.zeros(n_out)
    if mode == "half_pixel_symmetric":
        adjustment = n_out / (scale * n_in)
        center = n_in / 2
        return center * (1 - adjustment) + (i + 0.5) / scale - 0.5
    return (i + 0.5) / scale - 0.5  # half_pixel


def nearest_index(x: np.ndarray, n_in: int, mode: str) -> np.ndarray:
    if mode == "floor":
        r = np.floor(x)
    elif mode == "ceil":
        r = np.ceil(x)
    elif mode == "round_prefer_ceil":
        r = np.floor(x + 0.5)
    else:  # round_prefer_floor
        r = np.ceil(x - 0.5)
    return np.clip(r, 0, n_in - 1).astype(np.int64)


def resize_coordinates(op: graph.ResizeOp) -> list[np.ndarray]:
    """Per axis, the input coordinate of each output index."""
    in_dims, out_dims, scales = shape(op.x), shape(op.y), op.scale_values()
    return [
        source_coordinates(n, m, float(np.float32(sc)), op.coordinate_mode.data)
        for n, m, sc in zip(in_dims, out_dims, scales, strict=True)
    ]


def nearest_gather(op: graph.ResizeOp) -> Gather:
    """Nearest Resize as a gather of the rounded coordinates."""
    tables = [
        nearest_index(c, n, op.nearest_mode.data)
        for c, n in zip(resize_coordinates(op), shape(op.x), strict=True)
    ]
    return gather_of(op, tables)


@dataclass(frozen=True)
class LinearResize:
    """Linear Resize of the last two axes: `outer` planes h_in x w_in -> h_out x w_out;
    per output row its two input row offsets (hidx) and the second's weight (hw),
    per output column likewise (widx, ww)."""

    outer: int
    h_in: int
    w_in: int
    h_out: int
    w_out: int
    hidx: np.ndarray
    widx: np.ndarray
    hw: np.ndarray
    ww: np.ndarray


def linear_resize_of(op: graph.ResizeOp) -> LinearResize:
    in_dims, out_dims = shape(op.x), shape(op.y)
    coords = resize_coordinates(op)
    rank = len(in_dims)
    lead = [a for a in range(max(0, rank - 2)) if in_dims[a] != out_dims[a]]
    if lead:
        raise CodegenError(f"graph.resize: linear resize of axis {lead[0]} (only the last two axes)")
    h_in, w_in = (in_dims[-2] if rank >= 2 else 1), in_dims[-1]
    h_out, w_out = (out_dims[-2] if rank >= 2 else 1), out_dims[-1]
    rows = coords[-2] if rank >= 2 else np.zeros(1)
    h0, h1, hw = _linear_taps(rows, h_in)
    w0, w1, ww = _linear_taps(coords[-1], w_in)
    return LinearResize(
        outer=math.prod(out_dims[:-2]) if rank >= 2 else 1,
        h_in=h_in, w_in=w_in, h_out=h_out, w_out=w_out,
        hidx=np.stack([h0 * w_in, h1 * w_in], axis=1).reshape(-1),
        widx=np.stack([w0, w1], axis=1).reshape(-1),
        hw=hw.astype(np.float32),
        ww=ww.astype(np.float32),
    )  # fmt: skip


def linear_resize_inputs(
    op: graph.ResizeOp, ctx: LoweringContext, r: LinearResize
) -> list[tuple[str, Ref]]:
    """The arguments of a linear resize kernel on any target: x, then the taps."""
    return [
        ("x", ctx.operand(op.x)),
        ("hi", ctx.blob(r.hidx, "resize_rows", np.int32)),
        ("wi", ctx.blob(r.widx, "resize_cols", np.int32)),
        ("hw", ctx.blob(r.hw, "resize_row_weights")),
        ("ww", ctx.blob(r.ww, "resize_col_weights")),
    ]


@lowers(graph.ResizeOp)
def lower_resize(op: graph.ResizeOp, ctx: LoweringContext) -> KernelInstance:
    if op.mode.data == "nearest":
        return axis_gather(ctx, op, nearest_gather(op))
    r = linear_resize_of(op)
    return KernelInstance(
        kind="resize_linear",
        params={
            "outer": r.outer, "h_in": r.h_in, "w_in": r.w_in, "h_out": r.h_out, "w_out": r.w_out,
        },  # fmt: skip
        inputs=linear_resize_inputs(op, ctx, r),
        outputs=[("y", ctx.result(op.y))],
        flops=6 * math.prod(shape(op.y)),
    )


def _linear_taps(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two neighbours and the weight of the second, coordinates clamped to [0, n-1]."""
    x = np.clip(x, 0, n - 1)
    i0 = np.floor(x).astype(np.int64)
    i1 = np.minimum(i0 + 1, n - 1)
    return i0, i1, x - i0


@lowers(graph.GatherOp)
def lower_index_gather(op: graph.GatherOp, ctx: LoweringContext) -> KernelInstance:
    """Gather by run-time indices: x viewed as [outer, n, inner], one row of
    `inner` floats copied per (outer, index). The indices come from an integer
    input whose range `<prefix>_run` checked on entry (`input_bounds`)."""
    xs, axis = shape(op.x), op.axis.value.data
    return KernelInstance(
        kind="index_gather",
        params={
            "outer": math.prod(xs[:axis]),
            "n": xs[axis],
            "inner": math.prod(xs[axis + 1 :]),
            "count": math.prod(shape(op.indices)),
        },
        inputs=[("x", ctx.operand(op.x)), ("idx", ctx.operand(op.indices))],
        outputs=[("y", ctx.result(op.y))],
        flops=0,
    )


@lowers(graph.GatherElementsOp)
def lower_gather_elements(op: graph.GatherElementsOp, ctx: LoweringContext) -> KernelInstance:
    """y[e] = x[offset of e's coordinates with idx[e] on `axis`]: one element per
    output element (indices from the blob, or an integer input checked on entry)."""
    xs, ys, axis = shape(op.x), shape(op.y), op.axis.value.data
    return KernelInstance(
        kind="gather_elements",
        params={"dims": list(ys), "strides": row_strides(xs), "axis": axis, "n": xs[axis]},
        inputs=[("x", ctx.operand(op.x)), ("idx", ctx.operand(op.indices))],
        outputs=[("y", ctx.result(op.y))],
        flops=0,
    )
