"""A conv + LSTM voice-activity detector with an If on its sample-rate input,
written as Silero-style VAD exports are: audio [1, samples] float32 and a
control input `sr` (int64 scalar); If(sr == 16000) picks the front end.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto

from grimc.zoo.builder import GraphBuilder

SAMPLE_RATES = (16000, 8000)
"""The 16 kHz front end (then-branch) and the 8 kHz one (else-branch)."""


def vad(
    samples: int = 512,
    channels: int = 16,
    hidden: int = 32,
    seed: int = 0,
    opset: int = 17,
) -> onnx.ModelProto:
    """Speech probability per frame of `samples` audio samples, output [frames, 1].

    Both front ends are strided Conv1d + ReLU over the waveform, reading the
    reshaped audio from the enclosing graph: 16 kHz uses 64-sample windows at
    stride 32; 8 kHz uses 32-sample windows at stride 16, then a stride-2 conv,
    so both give frames = samples / 32. Then a Conv1d encoder, one LSTM over
    the frames, a linear head and Sigmoid. `samples` must be a multiple of 32.
    """
    if samples % 32 or samples < 64:
        raise ValueError(f"samples must be a multiple of 32 and at least 64, got {samples}")
    b = GraphBuilder(seed, opset)
    x = b.input("input", (1, samples))
    sr = b.input("sr", (), TensorProto.INT64)
    audio = b.reshape(x, (1, 1, samples))
    wide = b.const(b.fresh("rate"), np.array(SAMPLE_RATES[0], dtype=np.int64))
    cond = b.node("Equal", [sr, wide], ())

    def front_16k() -> str:
        return b.relu(b.conv1d(audio, channels, k=64, stride=32, pad=16))

    def front_8k() -> str:
        y = b.relu(b.conv1d(audio, channels, k=32, stride=16, pad=8))
        return b.relu(b.conv1d(y, channels, k=3, stride=2, pad=1))

    feats = b.if_(cond, front_16k, front_8k)
    feats = b.relu(b.conv1d(feats, channels, k=3, pad=1))
    frames = samples // 32
    seq = b.transpose(feats, (2, 0, 1))  # [frames, 1, channels]
    y = b.merge_directions(b.lstm(seq, hidden))  # [frames, 1, hidden]
    logits = b.linear(y, 1)
    prob = b.unary("Sigmoid", logits)
    return b.finish(["input", "sr"], {"output": b.reshape(prob, (frames, 1))}, "vad")
