"""Convolution, pooling and normalization ops.

auto_pad is resolved here to explicit pads. 1-D convolutions and pools are
lifted to 2-D with a unit height (reshape in, reshape out), since the graph
dialect is NCHW-only; 3-D ones are rejected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.ir import SSAValue

from grimc.dialects.graph import (
    AvgPoolOp,
    BatchNormOp,
    ConvOp,
    GlobalAvgPoolOp,
    LRNOp,
    MaxPoolOp,
    TransposeOp,
    f32_attr,
    i64_array,
    i64_attr,
    pooled_size,
    shape_of,
)
from grimc.frontend.context import NodeContext, Value, build, converter
from grimc.frontend.data_movement import slice_range
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
    for index, what in ((1, "weight"), (2, "bias")):
        if ctx.has_input(index):
            ctx.const(index, f"{what}; run-time weights are not supported")
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


@dataclass(frozen=True)
class _TransposedAxis:
    """One spatial axis of a ConvTranspose as a stride-phase convolution.

    With the kernel dilated into `k` taps (zeros between), output position
    o = q * s + r of the un-cropped result sums x[q - j] * w[r + j * s]: each
    phase r is a correlation of x with `taps` flipped sub-kernel taps, begin
    pad taps - 1, over q in [0, q_len). The result is then cropped to
    [begin, begin + size).
    """

    stride: int
    k: int
    begin: int
    size: int
    length: int

    @property
    def taps(self) -> int:
        return -(-self.k // self.stride)

    @property
    def q_len(self) -> int:
        return max(-(-(self.begin + self.size) // self.stride), self.length)


def _transposed_axes(
    ctx: NodeContext, sizes: Sequence[int], kernel: Sequence[int]
) -> list[_TransposedAxis]:
    """Per spatial axis: stride, dilated kernel length, crop begin and output size
    (pads, output_padding, output_shape and auto_pad as the ONNX reference reads them)."""
    rank = len(kernel)
    strides = _positive_ints(ctx, "strides", rank)
    dilations = _positive_ints(ctx, "dilations", rank)
    out_pad = ctx.ints_attr("output_padding", (0,) * rank)
    if len(out_pad) != rank or min(out_pad) < 0:
        raise ctx.fail(
            f"'output_padding' must be {rank} non-negative integers, got {list(out_pad)}"
        )
    taps = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
    natural = [
        s * (n - 1) + p + k for s, n, p, k in zip(strides, sizes, out_pad, taps, strict=True)
    ]
    auto_pad = ctx.str_attr("auto_pad", "NOTSET")
    if auto_pad not in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
        raise ctx.fail(f"unsupported auto_pad {quote_for_message(auto_pad)}")
    shape = ctx.ints_attr("output_shape", ())[-rank:] if ctx.has_attr("output_shape") else None
    if shape is not None and (len(shape) != rank or min(shape) < 1):
        raise ctx.fail(f"'output_shape' must end in {rank} positive sizes, got {list(shape)}")
    if auto_pad.startswith("SAME"):
        shape = shape or tuple(n * s for n, s in zip(sizes, strides, strict=True))
        total = [a - b for a, b in zip(natural, shape, strict=True)]
        small = [t // 2 for t in total]
        begin = (
            small
            if auto_pad == "SAME_UPPER"
            else [t - h for t, h in zip(total, small, strict=True)]
        )
    else:
        pads = (
            ctx.ints_attr("pads", (0,) * (2 * rank)) if auto_pad == "NOTSET" else (0,) * (2 * rank)
        )
        if len(pads) != 2 * rank or min(pads) < 0:
            raise ctx.fail(f"'pads' must be {2 * rank} non-negative integers, got {list(pads)}")
        begin = list(pads[:rank])
        shape = shape or tuple(n - pads[i] - pads[i + rank] for i, n in enumerate(natural))
    if min(begin) < 0 or min(shape) < 1:
        raise ctx.fail(
            f"pads {begin} / output size {list(shape)} are not supported (negative or empty)"
        )
    return [
        _TransposedAxis(s, k, b, out, n)
        for s, k, b, out, n in zip(strides, taps, begin, shape, sizes, strict=True)
    ]


def _phase_weights(
    w: np.ndarray, group: int, axes: Sequence[_TransposedAxis], dilations: Sequence[int]
) -> np.ndarray:
    """ConvTranspose W [Cin, Cout/g, kh, kw] -> the phase conv's weight
    [g * sh * sw * Cout/g, Cin/g, Th, Tw] (output channels group, phase, channel)."""
    cin, cout_g, kh, kw = w.shape
    (ah, aw), (dh, dw) = axes, dilations
    dilated = np.zeros((cin, cout_g, ah.taps * ah.stride, aw.taps * aw.stride), np.float32)
    dilated[:, :, : (kh - 1) * dh + 1 : dh, : (kw - 1) * dw + 1 : dw] = w
    split = dilated.reshape(group, cin // group, cout_g, ah.taps, ah.stride, aw.taps, aw.stride)
    flipped = split[:, :, :, ::-1, :, ::-1, :]
    phases = flipped.transpose(0, 4, 6, 2, 1, 3, 5)
    return np.ascontiguousarray(phases.reshape(-1, cin // group, ah.taps, aw.taps))


@converter("ConvTranspose")
def conv_transpose(ctx: NodeContext) -> list[Value]:
    """A convolution per stride phase (all phases one conv, phases as extra
    output channels), interleaved by reshape/transpose and cropped: no zero
    insertion, so the FLOPs are the transposed convolution's own."""
    rank = _spatial_rank(ctx, "transposed convolutions")
    xs, ws = ctx.shape(0), ctx.shape(1)
    group = ctx.int_attr("group", 1)
    if len(ws) != len(xs) or ws[0] != xs[1] or group < 1 or xs[1] % group:
        raise ctx.fail(
            f"weight shape {list(ws)} does not match input shape {list(xs)} (group {group})"
        )
    kernel = ws[2:]
    if ctx.has_attr("kernel_shape") and ctx.ints_attr("kernel_shape") != kernel:
        raise ctx.fail(
            f"kernel_shape {list(ctx.ints_attr('kernel_shape'))} differs from weight shape {list(ws)}"
        )
    axes = _transposed_axes(ctx, xs[2:], kernel)
    dilations = _positive_ints(ctx, "dilations", rank)
    w = ctx.float_const(1, "weight; run-time weights are not supported")
    x = ctx.value(0)
    if rank == 1:
        x, w = _lift(ctx, x), w.reshape(*ws[:2], 1, ws[2])
        axes, dilations = [_TransposedAxis(1, 1, 0, 1, 1), *axes], (1, *dilations)
    n, cout = xs[0], ws[1] * group
    ah, aw = axes
    phases = ah.stride * aw.stride
    bias = None
    if ctx.has_input(2):
        b = ctx.float_const(2, "bias").reshape(group, 1, ws[1])
        bias = ctx.new_weight(2, np.ascontiguousarray(np.repeat(b, phases, axis=1).reshape(-1)))
    conv = ConvOp(
        x,
        ctx.new_weight(1, _phase_weights(w, group, axes, dilations)),
        bias,
        (n, cout * phases, ah.q_len, aw.q_len),
        (1, 1),
        (ah.taps - 1, aw.taps - 1, ah.q_len - ah.length, aw.q_len - aw.length),
        (1, 1),
        group,
    )
    y = ctx.emit(conv).y
    if phases > 1:
        split = (n, group, ah.stride, aw.stride, ws[1], ah.q_len, aw.q_len)
        y = ctx.emit(TransposeOp(ctx.reshape(y, split), (0, 1, 4, 5, 2, 6, 3))).y
        y = ctx.reshape(y, (n, cout, ah.q_len * ah.stride, aw.q_len * aw.stride))
    else:
        y = ctx.reshape(y, (n, cout, ah.q_len, aw.q_len))
    crop = [range(n), range(cout), *(range(a.begin, a.begin + a.size) for a in axes)]
    y = slice_range(ctx, y, crop)
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
        if set(window.dilations) != {1}:
            props["dilations"] = i64_array(window.dilations)
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
