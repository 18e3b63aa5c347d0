"""Slice, Pad, Expand and Resize, the reductions and layer norm on OpenCL.

The decisions are the CPU lowerings': the per-axis offset tables of a gather
(`grimc.emit.kernels.gather`: slice, pad, expand, nearest resize), the row
and column taps of a linear resize, the output and reduced offsets of a
reduction (`grimc.emit.kernels.reduce`). They reach the device as the same
blob entries; a work-item computes one output element (one row for layer norm).
"""

from __future__ import annotations

import numpy as np

from grimc.dialects import graph
from grimc.emit.kernel import KernelInstance, LoweringContext, numel, shape
from grimc.emit.kernels.gather import (
    GATHERS,
    Gather,
    linear_resize_inputs,
    linear_resize_of,
    nearest_gather,
)
from grimc.emit.kernels.layer_norm import layer_norm_args
from grimc.emit.kernels.reduce import reduce_offsets
from grimc.emit.opencl.lowering import cl_kernel, cl_lowers
from grimc.emit.opencl.tensor_ops import COMBINE


def _gather(op: graph.SingleInputOp, ctx: LoweringContext, gather: Gather) -> KernelInstance:
    n = numel(op.y)
    return cl_kernel(
        "gather",
        {"N": n},
        [n],
        [
            ("x", ctx.operand(op.x)),
            ("tab", ctx.blob(np.concatenate(gather.offsets), "gather", np.int32)),
        ],
        [("y", ctx.result(op.y))],
        dims=list(shape(op.y)),
        bases=np.cumsum([0] + [len(t) for t in gather.offsets[:-1]]).tolist(),
        value=gather.value,
    )


@cl_lowers(*GATHERS)
def lower_gather(op: graph.SingleInputOp, ctx: LoweringContext) -> KernelInstance:
    return _gather(op, ctx, GATHERS[type(op)](op))


@cl_lowers(graph.ResizeOp)
def lower_resize(op: graph.ResizeOp, ctx: LoweringContext) -> KernelInstance:
    if op.mode.data == "nearest":
        return _gather(op, ctx, nearest_gather(op))
    r = linear_resize_of(op)
    return cl_kernel(
        "resize_linear",
        {"OUTER": r.outer, "H_IN": r.h_in, "W_IN": r.w_in, "H_OUT": r.h_out, "W_OUT": r.w_out},
        [r.w_out, r.h_out, r.outer],
        linear_resize_inputs(op, ctx, r),
        [("y", ctx.result(op.y))],
        flops=6 * numel(op.y),
    )


REDUCE = {"max": ("-INFINITY", "max"), "min": ("INFINITY", "min"), "sum": ("0.0f", "add"),
          "mean": ("0.0f", "add")}  # fmt: skip
"""Per reduction kind: the initial value and the COMBINE kind folding each element in."""


@cl_lowers(graph.ReduceOp)
def lower_reduce(op: graph.ReduceOp, ctx: LoweringContext) -> KernelInstance:
    out_off, red_off, contiguous = reduce_offsets(op)
    inputs = [("x", ctx.operand(op.x)), ("oo", ctx.blob(out_off, "reduce_out", np.int32))]
    if not contiguous:
        inputs.append(("ro", ctx.blob(red_off, "reduce_in", np.int32)))
    init, comb = REDUCE[op.kind.data]
    return cl_kernel(
        "reduce",
        {"NOUT": out_off.size, "NRED": red_off.size},
        [out_off.size],
        inputs,
        [("y", ctx.result(op.y))],
        flops=numel(op.x),
        init=init,
        combine=COMBINE[comb].format("s", "v"),
        mean=op.kind.data == "mean",
    )


@cl_lowers(graph.LayerNormOp)
def lower_layer_norm(op: graph.LayerNormOp, ctx: LoweringContext) -> KernelInstance:
    """Two passes per row (mean, then the variance of x - mean), as on the CPU."""
    rows, n, inputs, outputs = layer_norm_args(op, ctx)
    return cl_kernel(
        "layer_norm", {"ROWS": rows, "N": n}, [rows], inputs, outputs,
        flops=8 * rows * n, eps=float(op.epsilon.value.data),
    )  # fmt: skip
