"""Convolution, pooling and normalization ops.

auto_pad is resolved here to explicit pads. 1-D convolutions and pools are
lifted to 2-D with a unit height (reshape in, reshape out), since the graph
dialect is NCHW-only; 3-D ones are rejected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.ir import SSAValue

from grimc.dialects.graph import (
    AvgPoolOp,
    BatchNormOp,
    ConvOp,
    GlobalAvgPoolOp,
    LRNOp,
    MaxPoolOp,
    f32_attr,
    i64_array,
    i64_attr,
    pooled_size,
    shape_of,
)
from grimc.frontend.context import NodeContext, Value, build, converter
from grimc.names import quote_for_message


@dataclass(frozen=True)
class Window:
    """A conv/pool window with explicit pads `[begin..., end...]`."""

    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    pads: tuple[int, ...]
    dilations: tuple[int, ...]

    def lifted(self) -> Window:
        """The 2-D window of a 1-D op whose input gained a unit height axis."""
        return Window(
            (1, *self.kernel),
            (1, *self.strides),
            (0, self.pads[0], 0, self.pads[1]),
            (1, *self.dilations),
        )

    def output(self, sizes: Sequence[int], ceil: bool = False) -> tuple[int, ...]:
        rank = len(self.kernel)
        return tuple(
            pooled_size(size, k, s, (self.pads[i], self.pads[i + rank]), d, ceil)
            for i, (size, k, s, d) in enumerate(
                zip(sizes, self.kernel, self.strides, self.dilations, strict=True)
            )
        )


def _positive_ints(ctx: NodeContext, name: str, rank: int) -> tuple[int, ...]:
    values = ctx.ints_attr(name, (1,) * rank)
    if len(values) != rank or min(values) < 1:
        raise ctx.fail(f"'{name}' must be {rank} positive integers, got {list(values)}")
    return values


def read_window(ctx: NodeContext, sizes: Sequence[int], kernel: Sequence[int]) -> Window:
    """strides/dilations/pads/auto_pad of a conv or pool, pads made explicit."""
    rank = len(kernel)
    if min(kernel) < 1:
        raise ctx.fail(f"kernel shape must be positive, got {list(kernel)}")
    strides = _positive_ints(ctx, "strides", rank)
    dilations = _positive_ints(ctx, "dilations", rank)
    auto_pad = ctx.str_attr("auto_pad", "NOTSET")
    if auto_pad == "NOTSET":
        pads = ctx.ints_attr("pads", (0,) * (2 * rank))
        if len(pads) != 2 * rank or min(pads) < 0:
            raise ctx.fail(f"'pads' must be {2 * rank} non-negative integers, got {list(pads)}")
    elif auto_pad == "VALID":
        pads = (0,) * (2 * rank)
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = _same_pads(sizes, kernel, strides, dilations, upper=auto_pad == "SAME_UPPER")
    else:
        raise ctx.fail(f"unsupported auto_pad {quote_for_message(auto_pad)}")
    return Window(tuple(kernel), strides, pads, dilations)


def _same_pads(
    sizes: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    upper: bool,
) -> tuple[int, ...]:
    """Pads giving output ceil(size / stride); the odd pad goes at the end (UPPER)."""
    begin, end = [], []
    for size, k, s, d in zip(sizes, kernel, strides, dilations, strict=True):
        out = -(-size // s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
        small, large = total // 2, total - total // 2
        begin.append(small if upper else large)
        end.append(large if upper else small)
    return (*begin, *end)


def _spatial_rank(ctx: NodeContext, what: str) -> int:
    shape = ctx.shape(0)
    if len(shape) not in (3, 4):
        raise ctx.fail(f"only 1-D and 2-D {what} are supported, input has shape {list(shape)}")
    return len(shape) - 2


def _lift(ctx: NodeContext, value: SSAValue) -> SSAValue:
    """[N, C, L] -> [N, C, 1, L]."""
    shape = shape_of(value)
    return ctx.reshape(value, (*shape[:2], 1, *shape[2:]))


def _unlift(ctx: NodeContext, value: SSAValue) -> SSAValue:
    """[N, C, 1, L] -> [N, C, L]."""
    shape = shape_of(value)
    return ctx.reshape(value, (*shape[:2], shape[3]))


def _output_shape(
    ctx: NodeContext, batch: int, channels: int, spatial: Sequence[int]
) -> tuple[int, ...]:
    if min(spatial) < 1:
        raise ctx.fail(f"the window does not fit the input (output spatial size {list(spatial)})")
    return (batch, channels, *spatial)


@converter("Conv")
def conv(ctx: NodeContext) -> list[Value]:
    rank = _spatial_rank(ctx, "convolutions")
    xs, ws = ctx.shape(0), ctx.shape(1)
    if len(ws) != len(xs):
        raise ctx.fail(f"weight shape {list(ws)} does not match input shape {list(xs)}")
    kernel = ws[2:]
    if ctx.has_attr("kernel_shape") and ctx.ints_attr("kernel_shape") != kernel:
        raise ctx.fail(
            f"kernel_shape {list(ctx.ints_attr('kernel_shape'))} differs from weight shape {list(ws)}"
        )
    window = read_window(ctx, xs[2:], kernel)
    x = ctx.value(0)
    if rank == 1:
        x, w, window = _lift(ctx, x), ctx.reshaped_input(1, (*ws[:2], 1, ws[2])), window.lifted()
    else:
        w = ctx.value(1)
    out = _output_shape(ctx, xs[0], ws[0], window.output(shape_of(x)[2:]))
    op = ConvOp(
        x,
        w,
        ctx.optional_value(2),
        out,
        window.strides,
        window.pads,
        window.dilations,
        ctx.int_attr("group", 1),
    )
    y = ctx.emit(op).y
    return [_unlift(ctx, y) if rank == 1 else y]


@converter("MaxPool", "AveragePool")
def pool(ctx: NodeContext) -> list[Value]:
    rank = _spatial_rank(ctx, "pools")
    xs = ctx.shape(0)
    kernel = ctx.ints_attr("kernel_shape")
    if len(kernel) != rank:
        raise ctx.fail(f"kernel_shape {list(kernel)} does not match input shape {list(xs)}")
    window = read_window(ctx, xs[2:], kernel)
    if any(pad >= k for pad, k in zip(window.pads, kernel * 2, strict=True)):
        # A window lying wholly in the padding has no value (onnxruntime refuses too).
        raise ctx.fail(f"pads {list(window.pads)} must be smaller than kernel_shape {list(kernel)}")
    ceil = ctx.int_attr("ceil_mode", 0)
    if ctx.node.op_type == "MaxPool":
        if ctx.int_attr("storage_order", 0) != 0:
            raise ctx.fail("storage_order=1 is not supported")
        ctx.reject_used_outputs(1, "the Indices output")
    elif set(window.dilations) != {1}:
        raise ctx.fail("dilated AveragePool is not supported")
    x = ctx.value(0)
    if rank == 1:
        x, window = _lift(ctx, x), window.lifted()
    props = {
        "kernel_shape": i64_array(window.kernel),
        "strides": i64_array(window.strides),
        "pads": i64_array(window.pads),
        "ceil_mode": i64_attr(ceil),
    }
    if ctx.node.op_type == "MaxPool":
        op_type, props["dilations"] = MaxPoolOp, i64_array(window.dilations)
    else:
        op_type, props["count_include_pad"] = (
            AvgPoolOp,
            i64_attr(ctx.int_attr("count_include_pad", 0)),
        )
    out = _output_shape(ctx, xs[0], xs[1], window.output(shape_of(x)[2:], bool(ceil)))
    y = ctx.emit(build(op_type, {"x": x}, {"y": out}, props)).y
    return [_unlift(ctx, y) if rank == 1 else y]


@converter("GlobalAveragePool")
def global_average_pool(ctx: NodeContext) -> list[Value]:
    return [ctx.emit(GlobalAvgPoolOp(ctx.value(0))).y]


@converter("BatchNormalization")
def batch_norm(ctx: NodeContext) -> list[Value]:
    """Inference only: training mode (or its extra outputs) is rejected."""
    if ctx.int_attr("training_mode", 0) != 0:
        raise ctx.fail("training_mode=1 is not supported")
    if ctx.int_attr("spatial", 1) != 1:
        raise ctx.fail("spatial=0 (per-element statistics) is not supported")
    ctx.reject_used_outputs(1, "training statistics")
    scale, bias, mean, var = (ctx.value(i) for i in range(1, 5))
    op = BatchNormOp(ctx.value(0), scale, bias, mean, var, ctx.float_attr("epsilon", 1e-5))
    return [ctx.emit(op).y]


@converter("LRN")
def lrn(ctx: NodeContext) -> list[Value]:
    x = ctx.value(0)
    props = {
        "size": i64_attr(ctx.int_attr("size")),
        "alpha": f32_attr(ctx.float_attr("alpha", 1e-4)),
        "beta": f32_attr(ctx.float_attr("beta", 0.75)),
        "bias": f32_attr(ctx.float_attr("bias", 1.0)),
    }
    return [ctx.emit(build(LRNOp, {"x": x}, {"y": shape_of(x)}, props)).y]
