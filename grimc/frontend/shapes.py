"""Data-movement ops: Flatten, Reshape, Squeeze/Unsqueeze, Transpose, Concat, Shape.

Squeeze/Unsqueeze/Reshape of activations become `graph.reshape`; on constants
they are folded before reaching these converters. Shape/Size of an activation
yield constants (static shapes), so exporter shape arithmetic folds away.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from xdsl.ir import SSAValue

from grimc.dialects.graph import ConcatOp, FlattenOp, TransposeOp, i64_attr, shape_of
from grimc.frontend.context import NodeContext, Value, build, converter, normalize_axis


def flatten(ctx: NodeContext, x: SSAValue, axis: int) -> SSAValue:
    """`graph.flatten` at a normalized axis in [0, rank]."""
    shape = shape_of(x)
    out = (math.prod(shape[:axis]), math.prod(shape[axis:]))
    return ctx.emit(build(FlattenOp, {"x": x}, {"y": out}, {"axis": i64_attr(axis)})).y


@converter("Flatten")
def flatten_op(ctx: NodeContext) -> list[Value]:
    rank = len(ctx.shape(0))
    axis = ctx.int_attr("axis", 1)
    # Flatten accepts axis == rank (everything goes to the first dimension).
    axis = rank if axis == rank else normalize_axis(ctx, axis, rank)
    return [flatten(ctx, ctx.value(0), axis)]


def reshape_target(
    ctx: NodeContext, shape: Sequence[int], spec: Sequence[int], allowzero: bool
) -> tuple[int, ...]:
    """ONNX Reshape: 0 copies the input dim (unless allowzero), -1 is inferred."""
    out: list[int] = []
    for i, dim in enumerate(spec):
        if dim == 0 and not allowzero:
            if i >= len(shape):
                raise ctx.fail(f"shape {list(spec)}: 0 at position {i} has no input dim to copy")
            out.append(shape[i])
        elif dim < -1:
            raise ctx.fail(f"shape {list(spec)}: invalid dim {dim}")
        else:
            out.append(dim)
    known = math.prod(d for d in out if d != -1)
    total = math.prod(shape)
    if out.count(-1) > 1:
        raise ctx.fail(f"shape {list(spec)} has more than one -1")
    if -1 in out:
        if known == 0 or total % known:
            raise ctx.fail(f"cannot reshape {list(shape)} to {list(spec)}")
        out[out.index(-1)] = total // known
    if math.prod(out) != total or 0 in out:
        raise ctx.fail(f"cannot reshape {list(shape)} to {list(spec)}")
    return tuple(out)


@converter("Reshape")
def reshape(ctx: NodeContext) -> list[Value]:
    """The target comes from the `shape` input, or the attribute before opset 5."""
    spec = ctx.ints_attr("shape") if ctx.has_attr("shape") else ctx.int_const(1, "shape")
    target = reshape_target(ctx, ctx.shape(0), spec, bool(ctx.int_attr("allowzero", 0)))
    return [ctx.reshape(ctx.value(0), target)]


def _axes(ctx: NodeContext) -> tuple[int, ...] | None:
    """Squeeze/Unsqueeze axes: attribute before opset 13, input from 13 on."""
    if ctx.has_attr("axes"):
        return ctx.ints_attr("axes")
    return ctx.int_const(1, "axes") if ctx.has_input(1) else None


@converter("Squeeze")
def squeeze(ctx: NodeContext) -> list[Value]:
    shape = ctx.shape(0)
    axes = _axes(ctx)
    if axes is None:
        drop = {i for i, dim in enumerate(shape) if dim == 1}
    else:
        drop = {normalize_axis(ctx, a, len(shape)) for a in axes}
        if any(shape[a] != 1 for a in drop):
            raise ctx.fail(f"cannot squeeze axes {list(axes)} of shape {list(shape)}")
    out = [dim for i, dim in enumerate(shape) if i not in drop]
    return [ctx.reshape(ctx.value(0), out)]


@converter("Unsqueeze")
def unsqueeze(ctx: NodeContext) -> list[Value]:
    shape = ctx.shape(0)
    axes = _axes(ctx)
    if axes is None:
        raise ctx.fail("missing axes")
    rank = len(shape) + len(axes)
    inserted = {normalize_axis(ctx, a, rank) for a in axes}
    if len(inserted) != len(axes):
        raise ctx.fail(f"repeated axes {list(axes)}")
    dims = iter(shape)
    out = [1 if i in inserted else next(dims) for i in range(rank)]
    return [ctx.reshape(ctx.value(0), out)]


@converter("Transpose")
def transpose(ctx: NodeContext) -> list[Value]:
    rank = len(ctx.shape(0))
    perm = ctx.ints_attr("perm", tuple(reversed(range(rank))))
    if sorted(perm) != list(range(rank)):
        raise ctx.fail(f"perm {list(perm)} is not a permutation of {rank} axes")
    return [ctx.emit(TransposeOp(ctx.value(0), perm)).y]


@converter("Concat")
def concat(ctx: NodeContext) -> list[Value]:
    inputs = ctx.values()
    ranks = {len(shape_of(v)) for v in inputs}
    if len(ranks) != 1:
        raise ctx.fail(f"inputs must have one common rank, got ranks {sorted(ranks)}")
    axis = normalize_axis(ctx, ctx.int_attr("axis"), ranks.pop())
    return [ctx.emit(ConcatOp(inputs, axis)).y]


@converter("Shape")
def shape(ctx: NodeContext) -> list[Value]:
    """A constant: activations have static shapes (start/end slice as in opset 15)."""
    dims = ctx.shape(0)
    start, end = ctx.int_attr("start", 0), ctx.int_attr("end", len(dims))
    return [np.array(dims[start:end], dtype=np.int64)]


@converter("Size")
def size(ctx: NodeContext) -> list[Value]:
    return [np.array(math.prod(ctx.shape(0)), dtype=np.int64)]
