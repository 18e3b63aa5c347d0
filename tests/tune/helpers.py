"""Shared by the tuner tests: small BCR models, and Measurer batches recorded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import onnx
import pytest

from grimc.prune import prune_model
from grimc.tune.measure import Measurer, Outcome
from grimc.zoo.builder import GraphBuilder


def bcr_model(path: Path, build: Callable[[GraphBuilder, str], str], shape: tuple[int, ...]) -> Path:
    """A one-layer model, `build` applied to an input of `shape`, BCR-pruned (8x16
    blocks, rate 4) and saved to `path`."""
    b = GraphBuilder(0, 17)
    x = b.input("input", shape)
    model = b.finish(["input"], {"output": build(b, x)}, "m")
    onnx.save(prune_model(model, block="8x16", rate=4.0).model, path)
    return path


def record_batches(monkeypatch: pytest.MonkeyPatch) -> list[list[Outcome]]:
    """Every batch's outcomes from now on, as the real Measurer.measure returns them."""
    log: list[list[Outcome]] = []
    measure = Measurer.measure

    def recording(self: Measurer, task, attrs, rounds=None):  # type: ignore[no-untyped-def]
        outcomes = measure(self, task, attrs, rounds)
        log.append(list(outcomes))
        return outcomes

    monkeypatch.setattr(Measurer, "measure", recording)
    return log
