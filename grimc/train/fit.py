"""A plain training loop for masked fine-tuning: with labels (cross-entropy for integer
labels, MSE otherwise) or by distillation (MSE to a teacher's outputs, no labels).

Used by `grimc prune --retrain/--distill` and the accuracy benchmark; a user with
their own loop only needs `BCRPruner`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

import numpy as np
import torch
from torch import nn

from grimc.progress import is_quiet
from grimc.train.pruner import BCRPruner


@dataclass
class Samples:
    """Model inputs with samples on each array's `batch_axes` entry, and optional labels."""

    inputs: list[np.ndarray]
    labels: np.ndarray | None = None
    batch_axes: Sequence[int] = ()
    where: str = "data"
    """Where the samples came from, for messages."""

    def __post_init__(self) -> None:
        if not self.batch_axes:
            self.batch_axes = [0] * len(self.inputs)

    def __len__(self) -> int:
        return int(self.inputs[0].shape[self.batch_axes[0]])

    @property
    def classification(self) -> bool:
        return self.labels is not None and np.issubdtype(self.labels.dtype, np.integer)

    def batch(self, index: np.ndarray) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        xs = [torch.from_numpy(np.ascontiguousarray(np.take(x, index, axis=a)))
              for x, a in zip(self.inputs, self.batch_axes, strict=True)]
        y = None if self.labels is None else torch.from_numpy(self.labels[index])
        return xs, y


def first_output(out: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else out[0]


def _flat(out: torch.Tensor, n: int) -> torch.Tensor:
    """Outputs as (N, ...) whatever the model's batch axis: the one of size n."""
    if out.shape[0] != n and n in out.shape:
        out = out.movedim(list(out.shape).index(n), 0)
    return out.reshape(n, -1)


@dataclass
class Epoch:
    """One line of the training log."""

    epoch: int
    loss: float
    accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None

    def line(self, epochs: int) -> str:
        parts = [f"epoch {self.epoch}/{epochs}", f"loss {self.loss:.4f}"]
        if self.accuracy is not None:
            parts.append(f"acc {100 * self.accuracy:.2f}%")
        if self.val_loss is not None:
            parts.append(f"val loss {self.val_loss:.4f}")
        if self.val_accuracy is not None:
            parts.append(f"val acc {100 * self.val_accuracy:.2f}%")
        return "  ".join(parts)


@dataclass
class History:
    epochs: list[Epoch] = field(default_factory=list)


def _loss(out: torch.Tensor, y: torch.Tensor | None, target: torch.Tensor | None,
          classification: bool) -> torch.Tensor:
    n = len(y) if y is not None else len(target)  # type: ignore[arg-type]
    flat = _flat(out, n)
    if target is not None:
        return nn.functional.mse_loss(flat, _flat(target, n))
    if classification:
        return nn.functional.cross_entropy(flat, y)
    return nn.functional.mse_loss(flat, _flat(y.to(flat.dtype), n))  # type: ignore[union-attr]


@torch.no_grad()
def evaluate(model: nn.Module, data: Samples, teacher: nn.Module | None = None,
             batch_size: int = 256) -> tuple[float, float | None]:
    """(mean loss, accuracy or None) of `model` on `data` (eval mode)."""
    training = model.training
    model.eval()
    total, correct, n_all = 0.0, 0, len(data)
    for start in range(0, n_all, batch_size):
        index = np.arange(start, min(start + batch_size, n_all))
        xs, y = data.batch(index)
        out = first_output(model(*xs))
        target = first_output(teacher(*xs)) if teacher is not None else None
        total += float(_loss(out, y, target, data.classification)) * len(index)
        if data.classification and teacher is None:
            correct += int((_flat(out, len(index)).argmax(1) == y).sum())
    model.train(training)
    return total / n_all, (correct / n_all if data.classification and teacher is None else None)


def fit(
    model: nn.Module,
    data: Samples,
    *,
    epochs: int,
    pruner: BCRPruner | None = None,
    teacher: nn.Module | None = None,
    val: Samples | None = None,
    lr: float = 1e-3,
    batch_size: int = 32,
    seed: int = 0,
    log: Callable[[Epoch], None] | None = None,
) -> History:
    """Train `model` (Adam, cosine learning-rate decay) on `data`: labels, or the
    `teacher`'s outputs when given.

    With a `pruner`, its schedule advances every step and pruned weights stay 0.
    Deterministic for a given seed (shuffling uses its own generator).
    """
    if data.labels is None and teacher is None:
        raise ValueError("fit: labels or a teacher are needed")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr)
    steps = epochs * -(-len(data) // batch_size)
    # cosine decay to 0: the last steps settle the weights the masks left
    decay = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps)))
    rng = np.random.default_rng(seed)
    if teacher is not None:
        teacher.eval()
    history = History()
    for epoch in range(1, epochs + 1):
        model.train()
        order = rng.permutation(len(data))
        total, correct = 0.0, 0
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            xs, y = data.batch(index)
            out = first_output(model(*xs))
            target = None
            if teacher is not None:
                with torch.no_grad():
                    target = first_output(teacher(*xs))
            loss = _loss(out, y, target, data.classification)
            if pruner is not None:
                loss = loss + pruner.penalty()
            opt.zero_grad()
            loss.backward()
            opt.step()
            decay.step()
            if pruner is not None:
                pruner.step()
            total += float(loss.detach()) * len(index)
            if data.classification and teacher is None:
                correct += int((_flat(out, len(index)).argmax(1) == y).sum())
        if not math.isfinite(total):
            raise FloatingPointError(f"training diverged at epoch {epoch} (loss {total})")
        row = Epoch(epoch, total / len(data),
                    correct / len(data) if data.classification and teacher is None else None)
        if val is not None:  # labelled validation data is scored on its labels
            row.val_loss, row.val_accuracy = evaluate(
                model, val, teacher if val.labels is None else None)
        history.epochs.append(row)
        if log is not None:
            log(row)
    if pruner is not None:
        pruner.finish()
    return history


class EpochLog:
    """Per-epoch loss/accuracy on stderr: a tqdm bar on a terminal, one line per epoch when
    piped (a log keeps every epoch), nothing when quiet (`-q`); `close()` ends the bar."""

    def __init__(self, epochs: int, stream: TextIO | None = None) -> None:
        self.epochs = epochs
        self.stream = stream or sys.stderr
        self.quiet = is_quiet()
        self.bar = None
        if self.stream.isatty() and not self.quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=epochs, desc="retraining", unit="epoch", file=self.stream)

    def __call__(self, row: Epoch) -> None:
        if self.quiet:
            return
        if self.bar is None:
            print(row.line(self.epochs), file=self.stream, flush=True)
        else:
            self.bar.set_postfix_str(row.line(self.epochs).split("  ", 1)[1])
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
