"""Stacked recurrent networks; defaults match the GRIM paper's TIMIT GRU (153 -> 2x1024).

Input is X [seq_len, batch, input_size] (ONNX layout 0). Output "output" is the last
layer's hidden sequence [seq_len, batch, dirs*hidden], or per-frame logits
[seq_len, batch, num_classes] when a classifier head is asked for.
"""

from __future__ import annotations

from collections.abc import Callable

import onnx

from grimc.zoo.builder import GraphBuilder

DIRECTIONS = ("forward", "reverse", "bidirectional")

Layer = Callable[[GraphBuilder, str], str]


def _stacked(
    layer: Layer,
    name: str,
    input_size: int,
    num_layers: int,
    seq_len: int,
    batch: int,
    seed: int,
    direction: str,
    num_classes: int | None,
    opset: int,
) -> onnx.ModelProto:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
    b = GraphBuilder(seed, opset)
    x = b.input("input", (seq_len, batch, input_size))
    for _ in range(num_layers):
        x = b.merge_directions(layer(b, x))
    if num_classes is not None:
        x = b.linear(x, num_classes)
    return b.finish(["input"], {"output": x}, name)


def gru(
    input_size: int = 153,
    hidden_size: int = 1024,
    num_layers: int = 2,
    seq_len: int = 100,
    batch: int = 1,
    seed: int = 0,
    direction: str = "forward",
    linear_before_reset: int = 1,
    num_classes: int | None = None,
    opset: int = 17,
) -> onnx.ModelProto:
    """Stacked ONNX GRU layers (the paper's speech model), optional MatMul+Add head."""

    def layer(b: GraphBuilder, x: str) -> str:
        return b.gru(x, hidden_size, direction, linear_before_reset)

    return _stacked(
        layer, "gru", input_size, num_layers, seq_len, batch, seed, direction, num_classes, opset
    )


def lstm(
    input_size: int = 153,
    hidden_size: int = 1024,
    num_layers: int = 2,
    seq_len: int = 100,
    batch: int = 1,
    seed: int = 0,
    direction: str = "forward",
    peepholes: bool = False,
    num_classes: int | None = None,
    opset: int = 17,
) -> onnx.ModelProto:
    """Stacked ONNX LSTM layers; peepholes off by default as in PyTorch."""

    def layer(b: GraphBuilder, x: str) -> str:
        return b.lstm(x, hidden_size, direction, peepholes)

    return _stacked(
        layer, "lstm", input_size, num_layers, seq_len, batch, seed, direction, num_classes, opset
    )


def rnn(
    input_size: int = 153,
    hidden_size: int = 1024,
    num_layers: int = 2,
    seq_len: int = 100,
    batch: int = 1,
    seed: int = 0,
    direction: str = "forward",
    num_classes: int | None = None,
    opset: int = 17,
) -> onnx.ModelProto:
    """Stacked vanilla ONNX RNN layers (Tanh)."""

    def layer(b: GraphBuilder, x: str) -> str:
        return b.rnn(x, hidden_size, direction)

    return _stacked(
        layer, "rnn", input_size, num_layers, seq_len, batch, seed, direction, num_classes, opset
    )
