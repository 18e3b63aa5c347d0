"""Gemm and MatMul."""

from __future__ import annotations

from grimc.dialects.graph import GemmOp, MatMulOp
from grimc.frontend.context import NodeContext, Value, converter


@converter("Gemm")
def gemm(ctx: NodeContext) -> list[Value]:
    for index in (0, 1):
        if len(ctx.shape(index)) != 2:
            raise ctx.fail(f"{ctx.input_label(index)} must be 2-D, got {list(ctx.shape(index))}")
    op = GemmOp(
        ctx.value(0),
        ctx.value(1),
        ctx.optional_value(2),
        alpha=ctx.float_attr("alpha", 1.0),
        beta=ctx.float_attr("beta", 1.0),
        trans_a=ctx.int_attr("transA", 0),
        trans_b=ctx.int_attr("transB", 0),
    )
    return [ctx.emit(op).y]


@converter("MatMul")
def matmul(ctx: NodeContext) -> list[Value]:
    return [ctx.emit(MatMulOp(ctx.value(0), ctx.value(1))).y]
