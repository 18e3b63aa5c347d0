"""Transformer encoders, written node by node as torch.onnx exports them.

The attention block is the exporter's pattern: Linear = MatMul by a constant
[in, out] weight + Add bias; heads split by Reshape [b, t, h, d] and Transpose
(K straight to [b, h, d, t]); scores MatMul, Div by sqrt(d), Softmax; context
MatMul, Transpose back, Reshape [b, t, h*d]; post-norm LayerNormalization and
an erf GELU feed-forward. The Linear layers are the BCR-prunable weights
(M = sequence length rows per GEMM).
"""

from __future__ import annotations

import numpy as np
import onnx

from grimc.zoo.builder import GraphBuilder


def attention(b: GraphBuilder, x: str, heads: int) -> str:
    """Multi-head self-attention with output projection, [batch, seq, hidden] in and out."""
    batch, seq, hidden = b.shapes[x]
    if hidden % heads:
        raise ValueError(f"{heads} heads do not divide hidden size {hidden}")
    d = hidden // heads

    def heads_of(t: str, perm: tuple[int, ...]) -> str:
        return b.transpose(b.reshape(t, (batch, seq, heads, d)), perm)

    q = heads_of(b.linear(x, hidden), (0, 2, 1, 3))
    k = heads_of(b.linear(x, hidden), (0, 2, 3, 1))
    v = heads_of(b.linear(x, hidden), (0, 2, 1, 3))
    scores = b.softmax(b.scalar("Div", b.matmul(q, k), float(np.sqrt(d))), axis=-1)
    context = b.transpose(b.matmul(scores, v), (0, 2, 1, 3))
    return b.linear(b.reshape(context, (batch, seq, hidden)), hidden)


def encoder_layer(b: GraphBuilder, x: str, heads: int, ff: int) -> str:
    """Post-norm BERT layer: LN(x + attn(x)), then LN(x + W2 gelu(W1 x))."""
    x = b.layer_norm(b.add(x, attention(b, x, heads)))
    hidden = b.shapes[x][-1]
    return b.layer_norm(b.add(x, b.linear(b.gelu(b.linear(x, ff)), hidden)))


def bert_encoder(
    seq_len: int = 128,
    hidden: int = 256,
    heads: int = 4,
    num_layers: int = 4,
    ff: int | None = None,
    batch: int = 1,
    seed: int = 0,
    opset: int = 17,
) -> onnx.ModelProto:
    """A BERT-style encoder on embedded input [batch, seq_len, hidden] (ff = 4 * hidden)."""
    if opset < 17:
        raise ValueError(f"opset {opset} is unsupported; LayerNormalization needs >= 17")
    b = GraphBuilder(seed, opset)
    x = b.input("input", (batch, seq_len, hidden))
    for _ in range(num_layers):
        x = encoder_layer(b, x, heads, ff or 4 * hidden)
    return b.finish(["input"], {"output": x}, "bert_encoder")


def text_recognizer(
    height: int = 32,
    image_width: int = 256,
    width: float = 1.0,
    hidden: int = 128,
    heads: int = 4,
    num_layers: int = 2,
    num_classes: int = 97,
    batch: int = 1,
    seed: int = 0,
    opset: int = 17,
) -> onnx.ModelProto:
    """Conv + transformer text-line recognizer (SVTR/PARSeq-like encoder, CTC head).

    A grey [batch, 1, height, image_width] line image goes through three
    Conv-BN-ReLU + MaxPool stages (1/8 resolution), ReduceMean over the height,
    a Linear to `hidden`, `num_layers` encoder layers, a final LayerNorm and a
    Linear + Softmax over `num_classes` per frame: output
    [batch, image_width / 8, num_classes].
    """
    if height % 8 or image_width % 8:
        raise ValueError(f"image {height}x{image_width} must be a multiple of 8 on both sides")
    b = GraphBuilder(seed, opset)
    x = b.input("input", (batch, 1, height, image_width))
    for c in (32, 64, 128):
        channels = max(8, int(round(c * width / 8)) * 8)
        x = b.maxpool(b.relu(b.bn(b.conv(x, channels, 3, bias=False))), 2)
    n, c, h, w = b.shapes[x]
    axes = b.const(b.fresh("axes"), np.array([2], dtype=np.int64))
    x = b.node("ReduceMean", [x] + ([] if opset < 18 else [axes]), (n, c, w), keepdims=0,
               **({"axes": [2]} if opset < 18 else {}))  # fmt: skip
    x = b.linear(b.transpose(x, (0, 2, 1)), hidden)
    for _ in range(num_layers):
        x = encoder_layer(b, x, heads, 4 * hidden)
    y = b.softmax(b.linear(b.layer_norm(x), num_classes), -1)
    return b.finish(["input"], {"output": y}, "text_recognizer")
