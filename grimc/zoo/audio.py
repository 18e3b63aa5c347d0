"""Audio front ends written as exporters emit them."""

from __future__ import annotations

import numpy as np
import onnx

from grimc.zoo.builder import GraphBuilder


def mel_filters(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Slaney-style triangular mel filter bank [n_fft // 2 + 1, n_mels] (HTK mel scale)."""

    def mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = hz(np.linspace(mel(np.array(0.0)), mel(np.array(sample_rate / 2)), n_mels + 2))
    lower = (freqs[:, None] - edges[None, :-2]) / (edges[1:-1] - edges[:-2])
    upper = (edges[None, 2:] - freqs[:, None]) / (edges[2:] - edges[1:-1])
    bank = np.maximum(0.0, np.minimum(lower, upper))
    return (bank * (2.0 / (edges[2:] - edges[:-2]))).astype(np.float32)


def log_mel(
    frames: int = 100,
    n_fft: int = 400,
    n_mels: int = 80,
    sample_rate: int = 16000,
    batch: int = 1,
    seed: int = 0,
    opset: int = 17,
) -> onnx.ModelProto:
    """Whisper-style log-mel spectrogram of framed audio [batch, frames, n_fft].

    Hann-windowed DFT as two constant MatMuls (real, imaginary), power by Pow 2,
    mel filter bank MatMul, log10 of Max(mel, 1e-10) by Log / ln 10, clamped to
    8 below the global maximum (ReduceMax) and scaled: (x + 4) / 4. The seed
    is unused (no random weights) but kept for the zoo's uniform signature.
    """
    b = GraphBuilder(seed, opset)
    x = b.input("input", (batch, frames, n_fft))
    t = np.arange(n_fft)[:, None]
    f = np.arange(n_fft // 2 + 1)[None, :]
    window = np.hanning(n_fft + 1)[:-1, None]
    power = None
    for name, basis in (("dft_re", np.cos), ("dft_im", np.sin)):
        w = b.const(b.fresh(name), window * basis(-2 * np.pi * t * f / n_fft))
        part = b.node("MatMul", [x, w], (batch, frames, n_fft // 2 + 1))
        sq = b.scalar("Pow", part, 2.0)
        power = sq if power is None else b.binary("Add", power, sq)
    assert power is not None
    fb = b.const(b.fresh("mel"), mel_filters(sample_rate, n_fft, n_mels))
    mel = b.node("MatMul", [power, fb], (batch, frames, n_mels))
    logs = b.scalar("Div", b.unary("Log", b.scalar("Max", mel, 1e-10)), float(np.log(10.0)))
    peak = b.node("ReduceMax", [logs], (1, 1, 1), keepdims=1)
    floor = b.scalar("Sub", peak, 8.0)
    y = b.scalar("Div", b.scalar("Add", b.binary("Max", logs, floor), 4.0), 4.0)
    return b.finish(["input"], {"output": y}, "log_mel")
