"""`graph.flatten`, `graph.reshape` (aliases: no code), `graph.concat`, `graph.transpose`.

Concat is a list of row copies: for each of the `outer` rows before the axis,
every input contributes one contiguous chunk. Transpose first merges the axes
that stay adjacent and in order under the permutation (NCHW -> NHWC becomes a
batch of 2-D transposes of [C, H*W]); the template then walks the output in
order, copying whole rows when the innermost axis is kept, and otherwise
transposing `tile x tile` blocks so both sides touch whole cache lines.
"""

from __future__ import annotations

import math

from grimc.dialects import graph
from grimc.emit.kernel import Alias, KernelInstance, LoweringContext, lowers, shape

TRANSPOSE_TILE = 16
"""Block edge of the 2-D tiled transpose (16 floats = one 64-byte line)."""


@lowers(graph.FlattenOp, graph.ReshapeOp)
def lower_reshape(op: graph.FlattenOp | graph.ReshapeOp, ctx: LoweringContext) -> Alias:
    """Row-major data is unchanged: the result is the operand's buffer."""
    return Alias(op.x)


@lowers(graph.ConcatOp)
def lower_concat(op: graph.ConcatOp, ctx: LoweringContext) -> KernelInstance:
    axis = op.axis.value.data
    ys = shape(op.y)
    outer, inner = math.prod(ys[:axis]), math.prod(ys[axis + 1 :])
    chunks = [shape(v)[axis] * inner for v in op.inputs]
    return KernelInstance(
        kind="concat",
        params={"outer": outer, "chunks": chunks, "row": sum(chunks)},
        inputs=[(f"x{i}", ctx.operand(v)) for i, v in enumerate(op.inputs)],
        outputs=[("y", ctx.result(op.y))],
        flops=0,
    )


def collapse_perm(
    in_shape: tuple[int, ...], perm: tuple[int, ...]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Drop unit axes and merge input axes that stay adjacent under `perm`.

    Returns (input shape, permutation) of the smallest equivalent transpose.
    """
    kept = [a for a in perm if in_shape[a] != 1]
    groups: list[list[int]] = []
    for a in kept:
        if groups and _only_units_between(in_shape, groups[-1][-1], a):
            groups[-1].append(a)
        else:
            groups.append([a])
    order = sorted(range(len(groups)), key=lambda g: groups[g][0])
    new_shape = tuple(math.prod(in_shape[a] for a in groups[g]) for g in order)
    rank_of = {g: i for i, g in enumerate(order)}
    new_perm = tuple(rank_of[g] for g in range(len(groups)))
    return new_shape or (1,), new_perm or (0,)


def _only_units_between(in_shape: tuple[int, ...], a: int, b: int) -> bool:
    return a < b and all(in_shape[i] == 1 for i in range(a + 1, b))


@lowers(graph.TransposeOp)
def lower_transpose(op: graph.TransposeOp, ctx: LoweringContext) -> KernelInstance:
    """Output-order walk of the collapsed transpose. `q` is the output axis read
    contiguously; when it is not the last one, axes q and last are tiled."""
    dims, perm = collapse_perm(shape(op.x), graph.ints(op.perm))
    rank = len(dims)
    in_strides = [math.prod(dims[i + 1 :]) for i in range(rank)]
    out_dims = [dims[a] for a in perm]
    src = [in_strides[a] for a in perm]
    q = src.index(1)
    outer = [a for a in range(rank - 1) if a != q]
    return KernelInstance(
        kind="transpose",
        params={
            "dims": out_dims,
            "src": src,
            "dst": [math.prod(out_dims[a + 1 :]) for a in range(rank)],
            "q": q,
            "outer": outer,
            "rows": math.prod(out_dims[a] for a in outer),
            "tile": TRANSPOSE_TILE,
        },
        inputs=[("x", ctx.operand(op.x))],
        outputs=[("y", ctx.result(op.y))],
        flops=0,
    )
