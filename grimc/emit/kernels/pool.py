"""`graph.max_pool`, `graph.avg_pool` (1-D and 2-D windows) and `graph.global_avg_pool`.

Window pools use the `pool2d` template. Per output row, every valid kernel
offset (kh, kw) becomes one pass over a contiguous range of output columns,
`y[ow] = max(y[ow], x[ih][ow*sw + kw*dw - pl])`: no bounds check in the inner
loop, which clang vectorizes (stride-2 loads included). The column range of
each kw is a compile-time constant (it does not depend on the row). Averages
divide by a separable count: rows x columns (two small tables of window taps,
dilation included), following onnxruntime: with count_include_pad the window
is clipped to the padded input (so ceil_mode overhang is not counted), without
it only real pixels count. N*C planes are split over tasks (`#sched.split`).
"""

from __future__ import annotations

import math

from grimc.dialects import graph
from grimc.dialects.sched import split_of
from grimc.emit.kernel import CodegenError, KernelInstance, LoweringContext, lowers, numel, shape


def column_passes(
    width: int, out_w: int, kernel: int, stride: int, pad: int, dilation: int
) -> list[tuple[int, int, int]]:
    """Per kernel column kw: (first ow, end ow, input offset) with ow*stride + offset in [0, W)."""
    passes = []
    for kw in range(kernel):
        off = kw * dilation - pad
        lo = max(0, (stride - 1 - off) // stride)
        hi = min(out_w, (width - 1 - off) // stride + 1)
        passes.append((lo, max(lo, hi), off))
    return passes


def window_counts(
    width: int,
    out_w: int,
    kernel: int,
    stride: int,
    pads: tuple[int, int],
    dilation: int,
    include_pad: bool,
) -> list[int]:
    """Per output position along one axis: how many window taps the average
    divides by (taps inside the input, or inside the padded input)."""
    lo, hi = (-pads[0], width + pads[1]) if include_pad else (0, width)
    return [
        sum(lo <= o * stride - pads[0] + t * dilation < hi for t in range(kernel))
        for o in range(out_w)
    ]


def _window(op: graph.PoolOp) -> dict[str, int | list[int]]:
    """Pool attributes normalized to 2-D (a 1-D pool is a 2-D one with H = 1)."""
    xs, ys = shape(op.x), shape(op.y)
    kernel = list(graph.ints(op.kernel_shape))
    strides, pads = list(graph.ints(op.strides)), list(graph.ints(op.pads))
    dil = list(graph.ints(op.dilations)) or [1] * len(kernel)
    if len(kernel) == 1:
        return dict(
            H=1,
            W=xs[2],
            OH=1,
            OW=ys[2],
            KH=1,
            KW=kernel[0],
            SH=1,
            SW=strides[0],
            PT=0,
            PB=0,
            PL=pads[0],
            PR=pads[1],
            DH=1,
            DW=dil[0],
        )
    if len(kernel) != 2:
        raise CodegenError(f"{op.name}: {len(kernel)}-D pooling is not supported (1-D and 2-D are)")
    return dict(
        H=xs[2],
        W=xs[3],
        OH=ys[2],
        OW=ys[3],
        KH=kernel[0],
        KW=kernel[1],
        SH=strides[0],
        SW=strides[1],
        PT=pads[0],
        PB=pads[2],
        PL=pads[1],
        PR=pads[3],
        DH=dil[0],
        DW=dil[1],
    )


@lowers(graph.MaxPoolOp, graph.AvgPoolOp)
def lower_pool(op: graph.PoolOp, ctx: LoweringContext) -> KernelInstance:
    win = _window(op)
    xs = shape(op.x)
    planes = xs[0] * xs[1]
    is_max = isinstance(op, graph.MaxPoolOp)
    include_pad = not is_max and bool(op.count_include_pad.value.data)
    w = {k: int(v) for k, v in win.items()}  # type: ignore[arg-type]
    params = {
        **w,
        "op": "max" if is_max else "avg",
        "planes": planes,
        "include_pad": include_pad,
        "passes": column_passes(w["W"], w["OW"], w["KW"], w["SW"], w["PL"], w["DW"]),
        "ntasks": split_of(op, "planes").threads.data,
    }
    if not is_max:
        params["col_counts"] = window_counts(
            w["W"], w["OW"], w["KW"], w["SW"], (w["PL"], w["PR"]), w["DW"], include_pad
        )
        params["row_counts"] = window_counts(
            w["H"], w["OH"], w["KH"], w["SH"], (w["PT"], w["PB"]), w["DH"], include_pad
        )
    return KernelInstance(
        kind="pool2d",
        params=params,
        inputs=[("x", ctx.operand(op.x))],
        outputs=[("y", ctx.result(op.y))],
        flops=numel(op.y) * w["KH"] * w["KW"],
    )


@lowers(graph.GlobalAvgPoolOp)
def lower_global_avg_pool(op: graph.GlobalAvgPoolOp, ctx: LoweringContext) -> KernelInstance:
    xs = shape(op.x)
    planes, spatial = xs[0] * xs[1], math.prod(xs[2:])
    return KernelInstance(
        kind="global_avg_pool",
        params={"planes": planes, "HW": spatial, "ntasks": split_of(op, "planes").threads.data},
        inputs=[("x", ctx.operand(op.x))],
        outputs=[("y", ctx.result(op.y))],
        flops=numel(op.x),
    )
