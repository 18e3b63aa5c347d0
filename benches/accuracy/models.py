"""The benchmark's two models and how each is trained (epochs, learning rate, batch)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from benches.accuracy.data import Split, digits, vowels
from grimc.train.fit import Samples


class DigitsCNN(nn.Module):
    """conv32 - conv64 - pool - fc128 - fc10 on 8x8 digits."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(64 * 4 * 4, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.conv2(torch.relu(self.conv1(x)))))
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


class VowelGRU(nn.Module):
    """GRU(12 -> 128) over [frames, batch, 12]; the last hidden state -> 9 speakers."""

    def __init__(self, hidden: int = 128) -> None:
        super().__init__()
        self.gru = nn.GRU(12, hidden)
        self.fc = nn.Linear(hidden, 9)
        self.register_buffer("h0", torch.zeros(1, 1, hidden), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # traced for ONNX at batch 1: a constant zero state instead of shape arithmetic
        h0 = self.h0 if torch.onnx.is_in_onnx_export() else None
        _, h = self.gru(x, h0)
        return self.fc(h.squeeze(0))


@dataclass(frozen=True)
class Case:
    """A model, its data, and its training budget."""

    name: str
    title: str
    build: Callable[[], nn.Module]
    load: Callable[[], tuple[Split, Split]]
    batch_axis: int
    epochs: int
    finetune_epochs: int
    lr: float
    batch_size: int

    def samples(self, split: Split, labels: bool = True) -> Samples:
        x = np.moveaxis(split.x, 0, self.batch_axis) if self.batch_axis else split.x
        return Samples([np.ascontiguousarray(x)], split.y if labels else None, [self.batch_axis])

    def example(self, split: Split) -> torch.Tensor:
        """One sample, batch 1, in the model's layout (for ONNX export and latency)."""
        x = split.x[:1]
        return torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, 0, self.batch_axis)))


CASES = {
    "digits": Case("digits", "CNN on scikit-learn digits (8x8, 10 classes)", DigitsCNN, digits,
                   0, epochs=20, finetune_epochs=12, lr=1e-3, batch_size=32),
    "vowels": Case("vowels", "GRU on UEA JapaneseVowels (12 LPC channels, 9 speakers)",
                   VowelGRU, vowels, 1, epochs=60, finetune_epochs=20, lr=2e-3, batch_size=16),
}
