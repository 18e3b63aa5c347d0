"""Detection and image-to-image networks, written as their exporters emit them.

- `yolo_detector`: a YOLOv8n-style detector: Conv+SiLU (x * Sigmoid(x)), C2f
  blocks (Split, bottlenecks, Concat), SPPF (chained MaxPools), a PAN neck
  with nearest Resize, and the anchor-free head with its DFL box decoding
  (Softmax over 16 distance bins, a 1x1 Conv with weights 0..15, then
  distances to boxes around constant anchor points).
- `fpn_text_detector`: a DBNet-style text detector: a strided Conv-BN-ReLU
  backbone, an FPN top-down path (1x1 laterals + nearest Resize + Add), the
  four levels resized to 1/4 and concatenated, and a head upsampling back to
  the input size with two ConvTransposes, ending in a Sigmoid probability map.
- `super_resolution`: an ESPCN/FSRCNN-style network upscaling by 2 or 4 with
  DepthToSpace (pixel shuffle) or a ConvTranspose.
"""

from __future__ import annotations

import numpy as np
import onnx

from grimc.zoo.builder import GraphBuilder


def _ch(c: int, width: float) -> int:
    """Channels scaled by `width`, a multiple of 8 (at least 8)."""
    return max(8, int(round(c * width / 8)) * 8)


def _conv_silu(b: GraphBuilder, x: str, c: int, k: int = 3, stride: int = 1) -> str:
    return b.silu(b.conv(x, c, k, stride))


def _c2f(b: GraphBuilder, x: str, c: int, n: int = 1, shortcut: bool = True) -> str:
    """YOLOv8's C2f: 1x1 conv, split in halves, n bottlenecks on the last half, concat all."""
    y = _conv_silu(b, x, c, 1)
    parts = b.split(y, [c // 2, c // 2], axis=1)
    for _ in range(n):
        t = _conv_silu(b, _conv_silu(b, parts[-1], c // 2), c // 2)
        parts.append(b.add(parts[-1], t) if shortcut else t)
    return _conv_silu(b, b.concat(parts, 1), c, 1)


def _sppf(b: GraphBuilder, x: str, c: int) -> str:
    y = _conv_silu(b, x, c // 2, 1)
    pools = [y]
    for _ in range(3):
        pools.append(b.maxpool(pools[-1], 5, 1, 2))
    return _conv_silu(b, b.concat(pools, 1), c, 1)


def _anchors(sizes: list[tuple[int, int]], strides: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Anchor centers [1, 2, A] (grid units) and strides [1, 1, A], level by level."""
    points, scale = [], []
    for (h, w), s in zip(sizes, strides, strict=True):
        ys, xs = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
        points.append(np.stack([xs.reshape(-1), ys.reshape(-1)]))
        scale.append(np.full(h * w, s))
    return (
        np.concatenate(points, 1)[None].astype(np.float32),
        np.concatenate(scale)[None, None].astype(np.float32),
    )


def yolo_detector(
    image_size: int = 320,
    width: float = 1.0,
    num_classes: int = 80,
    reg_max: int = 16,
    batch: int = 1,
    seed: int = 0,
    opset: int = 17,
) -> onnx.ModelProto:
    """YOLOv8n-style detector; output [batch, 4 + num_classes, anchors] (xywh boxes in
    pixels, class probabilities), anchors = sum over strides 8, 16, 32 of (size/s)^2."""
    if image_size % 32:
        raise ValueError(f"image_size {image_size} must be a multiple of 32")
    b = GraphBuilder(seed, opset)
    c1, c2, c3, c4, c5 = (_ch(c, width) for c in (16, 32, 64, 128, 256))
    x = b.input("input", (batch, 3, image_size, image_size))
    x = _conv_silu(b, _conv_silu(b, x, c1, 3, 2), c2, 3, 2)
    x = _c2f(b, x, c2)
    p3 = _c2f(b, _conv_silu(b, x, c3, 3, 2), c3, 2)
    p4 = _c2f(b, _conv_silu(b, p3, c4, 3, 2), c4, 2)
    p5 = _sppf(b, _c2f(b, _conv_silu(b, p4, c5, 3, 2), c5), c5)
    n4 = _c2f(b, b.concat([b.resize(p5, 2), p4], 1), c4, shortcut=False)
    o3 = _c2f(b, b.concat([b.resize(n4, 2), p3], 1), c3, shortcut=False)
    o4 = _c2f(b, b.concat([_conv_silu(b, o3, c3, 3, 2), n4], 1), c4, shortcut=False)
    o5 = _c2f(b, b.concat([_conv_silu(b, o4, c4, 3, 2), p5], 1), c5, shortcut=False)
    box_c, cls_c = max(16, c3 // 4, 4 * reg_max), max(c3, min(num_classes, 100))
    levels, sizes = [], []
    for feat in (o3, o4, o5):
        n, _, h, w = b.shapes[feat]
        box = b.conv(_conv_silu(b, _conv_silu(b, feat, box_c), box_c), 4 * reg_max, 1)
        cls = b.conv(_conv_silu(b, _conv_silu(b, feat, cls_c), cls_c), num_classes, 1)
        levels.append(b.reshape(b.concat([box, cls], 1), (n, 4 * reg_max + num_classes, h * w)))
        sizes.append((h, w))
    out = b.concat(levels, 2)
    anchors = b.shapes[out][2]
    box, cls = b.split(out, [4 * reg_max, num_classes], axis=1)
    # DFL: the expected distance under a softmax over reg_max bins, per side
    bins = b.softmax(b.transpose(b.reshape(box, (batch, 4, reg_max, anchors)), (0, 2, 1, 3)), 1)
    dfl_w = b.const(b.fresh("dfl_w"), np.arange(reg_max, dtype=np.float32).reshape(1, -1, 1, 1))
    dist = b.node("Conv", [bins, dfl_w], (batch, 1, 4, anchors), prefix="dfl")
    lt, rb = b.split(b.reshape(dist, (batch, 4, anchors)), [2, 2], axis=1)
    centers, strides = _anchors(sizes, [8, 16, 32])
    anchor = b.const(b.fresh("anchors"), centers)
    x1y1, x2y2 = b.binary("Sub", anchor, lt), b.binary("Add", anchor, rb)
    cxy = b.scalar("Div", b.binary("Add", x1y1, x2y2), 2.0)
    wh = b.binary("Sub", x2y2, x1y1)
    boxes = b.binary("Mul", b.concat([cxy, wh], 1), b.const(b.fresh("strides"), strides))
    y = b.concat([boxes, b.unary("Sigmoid", cls)], 1)
    return b.finish(["input"], {"output": y}, "yolo_detector")


def _cbr(b: GraphBuilder, x: str, c: int, k: int = 3, stride: int = 1) -> str:
    return b.relu(b.bn(b.conv(x, c, k, stride, bias=False)))


def fpn_text_detector(
    image_size: int = 256,
    width: float = 1.0,
    batch: int = 1,
    seed: int = 0,
    opset: int = 17,
) -> onnx.ModelProto:
    """DBNet-style text detector; output [batch, 1, image_size, image_size] probabilities."""
    if image_size % 32:
        raise ValueError(f"image_size {image_size} must be a multiple of 32")
    b = GraphBuilder(seed, opset)
    x = b.input("input", (batch, 3, image_size, image_size))
    x = _cbr(b, x, _ch(16, width), 3, 2)
    feats = []
    for c in (32, 64, 128, 256):
        x = _cbr(b, _cbr(b, x, _ch(c, width), 3, 2), _ch(c, width))
        feats.append(x)
    inner = _ch(64, width)
    laterals = [b.conv(f, inner, 1, bias=False) for f in feats]
    top = laterals[-1]
    merged = [top]
    for lat in reversed(laterals[:-1]):
        top = b.add(lat, b.resize(top, 2))
        merged.insert(0, top)
    quarter = inner // 4
    outs = [b.conv(m, quarter, 3, bias=False) for m in merged]
    fuse = b.concat([o if i == 0 else b.resize(o, 2**i) for i, o in enumerate(outs)], 1)
    y = _cbr(b, fuse, quarter)
    y = b.relu(b.bn(b.conv_transpose(y, quarter, 2, 2)))
    y = b.unary("Sigmoid", b.conv_transpose(y, 1, 2, 2))
    return b.finish(["input"], {"output": y}, "fpn_text_detector")


def super_resolution(
    image_size: int = 64,
    upscale: int = 2,
    upsample: str = "depth_to_space",
    channels: int = 1,
    width: float = 1.0,
    batch: int = 1,
    seed: int = 0,
    opset: int = 17,
) -> onnx.ModelProto:
    """ESPCN (`depth_to_space`) or FSRCNN-like (`conv_transpose`) upscaler of a
    [batch, channels, s, s] image to [batch, channels, s*upscale, s*upscale]."""
    if upsample not in ("depth_to_space", "conv_transpose"):
        raise ValueError(f"upsample must be depth_to_space or conv_transpose, not {upsample!r}")
    b = GraphBuilder(seed, opset)
    x = b.input("input", (batch, channels, image_size, image_size))
    y = b.unary("Tanh", b.conv(x, _ch(64, width), 5))
    y = b.unary("Tanh", b.conv(y, _ch(32, width), 3))
    if upsample == "depth_to_space":
        y = b.conv(y, channels * upscale * upscale, 3)
        n, c, h, w = b.shapes[y]
        shape = (n, c // (upscale * upscale), h * upscale, w * upscale)
        y = b.node("DepthToSpace", [y], shape, blocksize=upscale, mode="CRD")
    else:
        k = 2 * upscale
        y = b.conv_transpose(y, channels, k, upscale, pad=upscale // 2)
    return b.finish(["input"], {"output": y}, "super_resolution")
