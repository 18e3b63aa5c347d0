"""Data-movement ONNX ops: Slice, Split, Gather, Pad, Expand, Resize, DepthToSpace.

Slice/Split become `graph.slice` (clamped starts and steps per axis, Python
slice semantics, which are ONNX's); Gather of an activation by constant
indices is one strided `graph.slice` per run of evenly spaced indices, joined
by `graph.concat`, and by run-time indices (an int64/int32 graph input)
`graph.gather`; Pad, Expand and Resize keep their ONNX meaning in
`graph.pad`, `graph.expand`, `graph.resize`; DepthToSpace is a reshape ->
transpose -> reshape. All other index arguments must be constants.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from xdsl.dialects.builtin import ArrayAttr, StringAttr
from xdsl.ir import SSAValue

from grimc.dialects.graph import (
    PAD_MODES,
    RESIZE_COORDINATES,
    RESIZE_NEAREST,
    ConcatOp,
    ExpandOp,
    GatherOp,
    PadOp,
    ResizeOp,
    SliceOp,
    TransposeOp,
    broadcast_shapes,
    f32_attr,
    i64_array,
    shape_of,
)
from grimc.frontend.context import NodeContext, Value, build, converter, normalize_axis


def slice_range(ctx: NodeContext, x: SSAValue, ranges: Sequence[range]) -> SSAValue:
    """x[r0, r1, ...] for per-axis ranges (the identity when nothing is cut)."""
    dims = shape_of(x)
    if all(r == range(n) for r, n in zip(ranges, dims, strict=True)):
        return x
    if any(len(r) == 0 for r in ranges):
        raise ctx.fail("an empty slice (zero-size tensor) is not supported")
    props = {"starts": i64_array([r.start for r in ranges]), "steps": i64_array([r.step for r in ranges])}
    return ctx.emit(build(SliceOp, {"x": x}, {"y": [len(r) for r in ranges]}, props)).y


@converter("Slice")
def slice_(ctx: NodeContext) -> list[Value]:
    dims = ctx.shape(0)
    rank = len(dims)
    if ctx.has_attr("starts"):  # opset < 10
        starts, ends = ctx.ints_attr("starts"), ctx.ints_attr("ends")
        axes = ctx.ints_attr("axes", tuple(range(len(starts))))
        steps: tuple[int, ...] = (1,) * len(starts)
    else:
        starts, ends = ctx.int_const(1, "starts"), ctx.int_const(2, "ends")
        axes = ctx.int_const(3, "axes") if ctx.has_input(3) else tuple(range(len(starts)))
        steps = ctx.int_const(4, "steps") if ctx.has_input(4) else (1,) * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ctx.fail("starts, ends, axes and steps differ in length")
    ranges = [range(n) for n in dims]
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        if step == 0:
            raise ctx.fail("a step of 0")
        a = normalize_axis(ctx, axis, rank)
        ranges[a] = range(dims[a])[slice(start, end, step)]
    return [slice_range(ctx, ctx.value(0), ranges)]


@converter("Split")
def split(ctx: NodeContext) -> list[Value]:
    dims = ctx.shape(0)
    axis = normalize_axis(ctx, ctx.int_attr("axis", 0), len(dims))
    n = dims[axis]
    if ctx.has_input(1):
        sizes = ctx.int_const(1, "split")
    elif ctx.has_attr("split"):
        sizes = ctx.ints_attr("split")
    else:
        parts = ctx.int_attr("num_outputs", len(ctx.node.output))
        chunk = math.ceil(n / parts)
        sizes = tuple(min(chunk, n - i * chunk) for i in range(parts))
    if sum(sizes) != n or min(sizes) < 0 or len(sizes) != len(ctx.node.output):
        raise ctx.fail(f"split sizes {list(sizes)} do not cut axis {axis} of size {n}")
    x, outputs, begin = ctx.value(0), [], 0
    for size in sizes:
        ranges = [range(d) for d in dims]
        ranges[axis] = range(begin, begin + size)
        outputs.append(slice_range(ctx, x, ranges))
        begin += size
    return outputs


@converter("Gather")
def gather(ctx: NodeContext) -> list[Value]:
    """Gather by constant indices: strided slices (constant data folds); by
    run-time indices (an integer graph input): `graph.gather`."""
    dims = ctx.shape(0)
    axis = normalize_axis(ctx, ctx.int_attr("axis", 0), len(dims))
    if not ctx.is_const(1):
        return [ctx.emit(GatherOp(ctx.value(0), ctx.value(1), axis)).y]
    flat = ctx.int_const(1, "indices")
    indices = ctx.const(1, "indices")
    n = dims[axis]
    if not flat:
        raise ctx.fail("empty indices (a zero-size result) are not supported")
    bad = [i for i in flat if not -n <= i < n]
    if bad:
        raise ctx.fail(f"index {bad[0]} is out of range for axis {axis} of size {n}")
    x = ctx.value(0)
    pieces = []
    for run in index_runs([i % n for i in flat]):
        ranges = [range(d) for d in dims]
        ranges[axis] = run
        pieces.append(slice_range(ctx, x, ranges))
    y = pieces[0] if len(pieces) == 1 else ctx.emit(ConcatOp(pieces, axis)).y
    return [ctx.reshape(y, (*dims[:axis], *indices.shape, *dims[axis + 1 :]))]


def index_runs(indices: Sequence[int]) -> list[range]:
    """`indices` as few ranges as possible, each evenly spaced (greedy, in order)."""
    runs: list[range] = []
    i = 0
    while i < len(indices):
        start, end = indices[i], i + 1
        step = indices[end] - start if end < len(indices) else 1
        if step == 0:
            step = 1  # a repeated index starts a new run
        else:
            while end < len(indices) and indices[end] - indices[end - 1] == step:
                end += 1
        runs.append(range(start, start + step * (end - i), step))
        i = end
    return runs


@converter("Pad")
def pad(ctx: NodeContext) -> list[Value]:
    dims = ctx.shape(0)
    rank = len(dims)
    mode = ctx.str_attr("mode", "constant")
    if mode not in PAD_MODES:
        raise ctx.fail(f"mode '{mode}' is not supported (supported: {', '.join(PAD_MODES)})")
    raw = ctx.ints_attr("pads") if ctx.has_attr("pads") else ctx.int_const(1, "pads")
    axes = ctx.int_const(3, "axes") if ctx.has_input(3) else tuple(range(rank))
    if len(raw) != 2 * len(axes):
        raise ctx.fail(f"pads has {len(raw)} values for {len(axes)} axes")
    pads = [0] * (2 * rank)
    for i, axis in enumerate(axes):
        a = normalize_axis(ctx, axis, rank)
        pads[a], pads[a + rank] = raw[i], raw[i + len(axes)]
    if min(pads) < 0:
        raise ctx.fail("negative pads are not supported")
    value = ctx.float_attr("value", 0.0) if ctx.has_attr("value") else 0.0
    if ctx.has_input(2):
        value = float(ctx.float_const(2, "constant_value").reshape(-1)[0])
    if mode == "reflect" and any(pads[a] >= n or pads[a + rank] >= n for a, n in enumerate(dims)):
        raise ctx.fail("reflect pads must be smaller than the padded axis")
    out = [n + pads[a] + pads[a + rank] for a, n in enumerate(dims)]
    props = {"pads": i64_array(pads), "mode": StringAttr(mode), "value": f32_attr(value)}
    return [ctx.emit(build(PadOp, {"x": ctx.value(0)}, {"y": out}, props)).y]


@converter("Expand")
def expand(ctx: NodeContext) -> list[Value]:
    out = broadcast_shapes(ctx.shape(0), ctx.int_const(1, "shape"))
    if out == ctx.shape(0):
        return [ctx.value(0)]
    return [ctx.emit(build(ExpandOp, {"x": ctx.value(0)}, {"y": out}, {})).y]


@converter("Resize")
def resize(ctx: NodeContext) -> list[Value]:
    dims = ctx.shape(0)
    rank = len(dims)
    mode = ctx.str_attr("mode", "nearest")
    coords = ctx.str_attr("coordinate_transformation_mode", "half_pixel")
    nearest = ctx.str_attr("nearest_mode", "round_prefer_floor")
    if mode not in ("nearest", "linear"):
        raise ctx.fail(f"mode '{mode}' is not supported (nearest, linear)")
    if coords not in RESIZE_COORDINATES:
        raise ctx.fail(f"coordinate_transformation_mode '{coords}' is not supported")
    if nearest not in RESIZE_NEAREST:
        raise ctx.fail(f"nearest_mode '{nearest}' is not supported")
    if ctx.int_attr("antialias", 0) or ctx.int_attr("exclude_outside", 0):
        raise ctx.fail("antialias and exclude_outside are not supported")
    if ctx.str_attr("keep_aspect_ratio_policy", "stretch") != "stretch":
        raise ctx.fail("keep_aspect_ratio_policy other than 'stretch' is not supported")
    axes = ctx.ints_attr("axes", tuple(range(rank)))
    axes = tuple(normalize_axis(ctx, a, rank) for a in axes)
    scales, out = [1.0] * rank, list(dims)
    given_scales = ctx.has_input(2) and ctx.const(2, "scales").size > 0
    if given_scales:
        values = ctx.float_const(2, "scales").reshape(-1)
        if len(values) != len(axes):
            raise ctx.fail(f"scales has {len(values)} values for {len(axes)} axes")
        for a, sc in zip(axes, values, strict=True):
            scales[a], out[a] = float(sc), int(math.floor(dims[a] * float(sc)))
    elif ctx.has_input(3):
        sizes = ctx.int_const(3, "sizes")
        if len(sizes) != len(axes):
            raise ctx.fail(f"sizes has {len(sizes)} values for {len(axes)} axes")
        for a, size in zip(axes, sizes, strict=True):
            out[a], scales[a] = size, size / dims[a]
    else:
        raise ctx.fail("needs constant scales or sizes")
    if min(out) < 1 or min(scales) <= 0:
        raise ctx.fail(f"output shape {out} is empty")
    if mode == "linear" and any(out[a] != dims[a] for a in range(max(0, rank - 2))):
        raise ctx.fail("linear resize is supported on the last two axes only")
    props = {
        "mode": StringAttr(mode),
        "coordinate_mode": StringAttr(coords),
        "nearest_mode": StringAttr(nearest),
        "scales": ArrayAttr([f32_attr(s) for s in scales]),
    }
    return [ctx.emit(build(ResizeOp, {"x": ctx.value(0)}, {"y": out}, props)).y]


@converter("DepthToSpace")
def depth_to_space(ctx: NodeContext) -> list[Value]:
    dims = ctx.shape(0)
    if len(dims) != 4:
        raise ctx.fail("input must be 4-D (NCHW)")
    b, mode = ctx.int_attr("blocksize"), ctx.str_attr("mode", "DCR")
    n, c, h, w = dims
    if b < 1 or c % (b * b):
        raise ctx.fail(f"{c} channels are not divisible by blocksize^2 = {b * b}")
    if mode == "DCR":
        split_shape, perm = (n, b, b, c // (b * b), h, w), (0, 3, 4, 1, 5, 2)
    elif mode == "CRD":
        split_shape, perm = (n, c // (b * b), b, b, h, w), (0, 1, 4, 2, 5, 3)
    else:
        raise ctx.fail(f"mode must be DCR or CRD, got '{mode}'")
    moved = ctx.emit(TransposeOp(ctx.reshape(ctx.value(0), split_shape), perm)).y
    return [ctx.reshape(moved, (n, c // (b * b), h * b, w * b))]


