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
