"""When and how far to prune during training, and the regularized method (ADMM).

A schedule maps the training step to a *progress* p in [0, 1]: the fraction of
each layer's final pruning reached (p = 1 is the layer's own rule). A rate R
at progress p means density 1 - p * (1 - 1/R); explicit column/row rates are
scaled by p. Masks are recomputed only when p changes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from grimc.prune import PruneError, Settings


@dataclass(frozen=True)
class OneShot:
    """Prune to the final rate at step `at` (default: as soon as the pruner is made)."""

    at: int = 0

    def progress(self, step: int) -> float:
        return 1.0 if step >= self.at else 0.0


@dataclass(frozen=True)
class Cubic:
    """Zhu & Gupta (2017): s_t = s_f * (1 - (1 - (t - begin) / (end - begin))^3),
    updated every `every` steps from `begin` to `end`: prunes fast while the
    network has many redundant weights, slowly near the final rate."""

    begin: int
    end: int
    every: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.begin < self.end or self.every < 1:
            raise PruneError(
                f"Cubic schedule: need 0 <= begin < end and every >= 1, got begin {self.begin}, "
                f"end {self.end}, every {self.every}"
            )

    def progress(self, step: int) -> float:
        if step < self.begin:
            return 0.0
        if step >= self.end:
            return 1.0
        at = self.begin + (step - self.begin) // self.every * self.every
        return 1.0 - (1.0 - (at - self.begin) / (self.end - self.begin)) ** 3


@dataclass(frozen=True)
class ADMM:
    """ADMM pruning (the GRIM family's regularized method): until step `prune_at`, the
    loss gets `pruner.penalty()` = rho/2 * ||W - Z + U||^2 where Z is W + U
    projected onto the BCR set (the magnitude selection) every `every` steps
    and U accumulates W - Z; at `prune_at` the weights are hard-pruned (the
    projection of W) and masked fine-tuning follows."""

    rho: float = 1e-3
    prune_at: int = 100
    every: int = 10

    def __post_init__(self) -> None:
        if self.rho <= 0 or self.prune_at < 1 or self.every < 1:
            raise PruneError(
                f"ADMM: need rho > 0, prune_at >= 1 and every >= 1, got rho {self.rho:g}, "
                f"prune_at {self.prune_at}, every {self.every}"
            )

    def progress(self, step: int) -> float:
        return 1.0 if step >= self.prune_at else 0.0


Schedule = OneShot | Cubic | ADMM


def at_progress(settings: Settings, progress: float) -> Settings:
    """The layer's rule `progress` of the way from dense to `settings`."""
    if progress >= 1.0:
        return settings
    if settings.rate is not None:
        density = 1.0 - progress * (1.0 - 1.0 / settings.rate)
        return replace(settings, rate=1.0 / density)
    return replace(settings, col_rate=progress * settings.col_rate,
                   row_rate=progress * settings.row_rate)


METHODS = ("finetune", "gradual", "admm")
"""finetune: one-shot then masked fine-tuning; gradual: cubic over the first 60% of the
steps; admm: ADMM for the first half, then hard pruning and masked fine-tuning."""


def schedule_for(method: str, epochs: int, steps_per_epoch: int, rho: float = 0.05) -> Schedule:
    """The schedule of a named method over `epochs` of `steps_per_epoch` steps."""
    steps = max(1, epochs * steps_per_epoch)
    if method == "finetune":
        return OneShot()
    if method == "gradual":
        return Cubic(0, max(1, int(steps * 0.6)), max(1, steps_per_epoch // 2))
    if method == "admm":
        return ADMM(rho=rho, prune_at=max(1, steps // 2), every=max(1, steps_per_epoch))
    raise PruneError(f"--method {method}: expected one of {', '.join(METHODS)}")
