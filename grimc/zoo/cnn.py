"""Convolutional networks of the GRIM paper's evaluation, with torchvision topologies.

`width` scales every channel count and `image_size` the (square) input, so tests
can build small variants (e.g. 32x32, width 0.25) of the same graph structure.
"""

from __future__ import annotations

import onnx

from grimc.zoo.builder import GraphBuilder

VGG16_STAGES = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
"""(channels, 3x3 convs) per stage; each stage ends in a 2x2 maxpool."""

MOBILENET_V2_SETTINGS = (
    # expand ratio t, channels c, repeats n, first stride s
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def _scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


def _make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's channel rounding for MobileNet: nearest multiple, at most 10% down."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _image_input(b: GraphBuilder, image_size: int, batch: int) -> str:
    return b.input("input", (batch, 3, image_size, image_size))


def vgg16(
    image_size: int = 224,
    width: float = 1.0,
    num_classes: int = 1000,
    seed: int = 0,
    batchnorm: bool = False,
    dropout: bool = True,
    batch: int = 1,
    opset: int = 17,
) -> onnx.ModelProto:
    """VGG-16: 13 3x3 convs, 5 maxpools, 3 Gemm layers (the paper's largest CNN).

    The classifier flattens whatever the last pool yields (7x7 at 224), so small
    images give a CIFAR-style head instead of torchvision's adaptive pool.
    """
    b = GraphBuilder(seed, opset)
    x = _image_input(b, image_size, batch)
    for channels, convs in VGG16_STAGES:
        for _ in range(convs):
            x = b.conv(x, _scaled(channels, width), 3)
            if batchnorm:
                x = b.bn(x)
            x = b.relu(x)
        x = b.maxpool(x, 2)
    x = b.flatten(x)
    for _ in range(2):
        x = b.relu(b.gemm(x, _scaled(4096, width)))
        if dropout:
            x = b.dropout(x)
    x = b.gemm(x, num_classes, gain=1.0)
    return b.finish(["input"], {"output": x}, "vgg16")


def _basic_block(b: GraphBuilder, x: str, cout: int, stride: int, residual_gain: float) -> str:
    y = b.relu(b.bn(b.conv(x, cout, 3, stride, bias=False)))
    y = b.bn(b.conv(y, cout, 3, 1, bias=False), gamma_scale=residual_gain)
    return b.relu(b.add(y, _shortcut(b, x, cout, stride)))


def _bottleneck(b: GraphBuilder, x: str, planes: int, stride: int, residual_gain: float) -> str:
    cout = planes * 4
    y = b.relu(b.bn(b.conv(x, planes, 1, 1, bias=False)))
    y = b.relu(b.bn(b.conv(y, planes, 3, stride, bias=False)))
    y = b.bn(b.conv(y, cout, 1, 1, bias=False), gamma_scale=residual_gain)
    return b.relu(b.add(y, _shortcut(b, x, cout, stride)))


def _shortcut(b: GraphBuilder, x: str, cout: int, stride: int) -> str:
    """Identity, or torchvision's downsample (1x1 conv + BN) when the shape changes."""
    if stride == 1 and b.shapes[x][1] == cout:
        return x
    return b.bn(b.conv(x, cout, 1, stride, bias=False))


def _resnet(
    blocks: tuple[int, ...],
    bottleneck: bool,
    image_size: int,
    width: float,
    num_classes: int,
    seed: int,
    batch: int,
    opset: int,
    name: str,
) -> onnx.ModelProto:
    b = GraphBuilder(seed, opset)
    x = _image_input(b, image_size, batch)
    x = b.relu(b.bn(b.conv(x, _scaled(64, width), 7, 2, bias=False)))
    x = b.maxpool(x, 3, 2, pad=1)
    block = _bottleneck if bottleneck else _basic_block
    gain = sum(blocks) ** -0.5  # keeps the residual stream's variance bounded with depth
    for stage, repeats in enumerate(blocks):
        planes = _scaled(64 * 2**stage, width)
        for i in range(repeats):
            x = block(b, x, planes, 2 if stage > 0 and i == 0 else 1, gain)
    x = b.gemm(b.flatten(b.global_avgpool(x)), num_classes, gain=1.0)
    return b.finish(["input"], {"output": x}, name)


def resnet18(
    image_size: int = 224,
    width: float = 1.0,
    num_classes: int = 1000,
    seed: int = 0,
    batch: int = 1,
    opset: int = 17,
) -> onnx.ModelProto:
    """ResNet-18 (basic blocks [2, 2, 2, 2]), torchvision topology."""
    return _resnet(
        (2, 2, 2, 2), False, image_size, width, num_classes, seed, batch, opset, "resnet18"
    )


def resnet50(
    image_size: int = 224,
    width: float = 1.0,
    num_classes: int = 1000,
    seed: int = 0,
    batch: int = 1,
    opset: int = 17,
) -> onnx.ModelProto:
    """ResNet-50 (bottleneck blocks [3, 4, 6, 3], stride on the 3x3 as torchvision v1.5)."""
    return _resnet(
        (3, 4, 6, 3), True, image_size, width, num_classes, seed, batch, opset, "resnet50"
    )


def _inverted_residual(
    b: GraphBuilder, x: str, cout: int, stride: int, expand: int, residual_gain: float
) -> str:
    cin = b.shapes[x][1]
    hidden = round(cin * expand)
    y = x
    if expand != 1:
        y = b.clip(b.bn(b.conv(y, hidden, 1, bias=False)))
    y = b.clip(b.bn(b.conv(y, hidden, 3, stride, group=hidden, bias=False)))
    if stride == 1 and cin == cout:
        return b.add(x, b.bn(b.conv(y, cout, 1, bias=False), gamma_scale=residual_gain))
    return b.bn(b.conv(y, cout, 1, bias=False))


def mobilenet_v2(
    image_size: int = 224,
    width: float = 1.0,
    num_classes: int = 1000,
    seed: int = 0,
    dropout: bool = True,
    batch: int = 1,
    opset: int = 17,
) -> onnx.ModelProto:
    """MobileNet-V2: inverted residuals with depthwise 3x3 convs and ReLU6 (Clip 0..6)."""
    b = GraphBuilder(seed, opset)
    x = _image_input(b, image_size, batch)
    x = b.clip(b.bn(b.conv(x, _make_divisible(32 * width), 3, 2, bias=False)))
    residuals = sum(n - 1 for _, _, n, _ in MOBILENET_V2_SETTINGS)
    for t, c, n, s in MOBILENET_V2_SETTINGS:
        cout = _make_divisible(c * width)
        for i in range(n):
            x = _inverted_residual(b, x, cout, s if i == 0 else 1, t, residuals**-0.5)
    x = b.clip(b.bn(b.conv(x, _make_divisible(1280 * max(1.0, width)), 1, bias=False)))
    x = b.flatten(b.global_avgpool(x))
    if dropout:
        x = b.dropout(x)
    x = b.gemm(x, num_classes, gain=1.0)
    return b.finish(["input"], {"output": x}, "mobilenet_v2")


def small_cnn(
    image_size: int = 32,
    num_classes: int = 10,
    seed: int = 0,
    batch: int = 1,
    opset: int = 17,
) -> onnx.ModelProto:
    """The bundled example: ~46k weights, every op kind grimc must handle in a CNN.

    Two 32->64 3x3 convs are the BCR pruning targets; the stem, the depthwise conv
    and the 1x1 projection stay dense by default.
    """
    b = GraphBuilder(seed, opset)
    x = _image_input(b, image_size, batch)
    x = b.relu(b.bn(b.conv(x, 16, 3, bias=False)))
    x = b.relu(b.bn(b.conv(x, 32, 3, 2, bias=False)))
    y = b.relu(b.bn(b.conv(x, 64, 3, bias=False)))
    y = b.relu(b.bn(b.conv(y, 64, 3, group=64, bias=False)))
    y = b.bn(b.conv(y, 32, 1, bias=False), gamma_scale=0.5)
    x = b.maxpool(b.relu(b.add(x, y)), 2)
    x = b.relu(b.bn(b.conv(x, 64, 3, bias=False)))
    x = b.gemm(b.flatten(b.global_avgpool(x)), num_classes, gain=1.0)
    return b.finish(["input"], {"output": b.softmax(x)}, "small_cnn")
