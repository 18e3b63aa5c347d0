"""`BCRPruner`: BCR masks on a user's own torch.nn model, for an ordinary training loop.

    pruner = BCRPruner(model, rate=8, block="8x16", schedule=Cubic(0, 500, 50))
    for x, y in data:
        loss = criterion(model(x), y) + pruner.penalty()   # penalty: ADMM only, else 0
        optimizer.zero_grad(); loss.backward(); optimizer.step()
        pruner.step()                                     # or pruner.attach(optimizer)
    pruner.export_onnx("model.onnx", (example,))

Prunable: Conv1d/2d/3d (groups: one matrix per group; depthwise stays dense by
default), Linear, and the input and recurrent weights of GRU/LSTM/RNN (each
layer and direction its own matrix, rows in ONNX gate order, so the blocks are
the ones `grimc prune` and the compiler see in the exported model). The
rules, the config format, include/exclude and the selection are those of
`grimc.prune`; layer names are module names (`gru.weight_hh_l0` for recurrent
weights) unless `names` maps parameter names to others.

Pruned weights stay exactly zero: their gradients are masked (so optimizer
state does not build up) and the weights are masked again after every step.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from grimc.layers import matrix_name
from grimc.prune import (
    Options,
    Plan,
    PruneConfig,
    PruneError,
    PruneWarning,
    Settings,
    balanced_keep,
    bcr_mask,
    effective_block,
)
from grimc.train.onnx_torch import GATE_ORDER, gate_rows, inverse_order
from grimc.train.schedule import ADMM, OneShot, Schedule, at_progress

_RNN_GATES = {nn.GRU: "GRU", nn.LSTM: "LSTM", nn.RNN: "RNN"}


@dataclass(eq=False)
class TorchLayer:
    """One prunable parameter and how it maps to G stacked GEMM matrices (G, M, K)."""

    name: str
    weight: str
    """The parameter's qualified name."""
    param: nn.Parameter
    groups: int
    matrix: tuple[int, int]
    depthwise: bool = False
    gate_order: tuple[int, ...] | None = None
    """Recurrent weights: torch gate block -> ONNX position (rows regrouped by gate)."""

    @property
    def weights(self) -> int:
        return self.groups * self.matrix[0] * self.matrix[1]

    def gemm_view(self, array: np.ndarray) -> np.ndarray:
        """The parameter as (G, M, K) matrices, recurrent rows in ONNX gate order."""
        mats = array.reshape(self.groups, *self.matrix)
        if self.gate_order is not None:
            mats = self._regroup(mats, inverse_order(self.gate_order))
        return mats

    def from_gemm_view(self, mats: np.ndarray) -> np.ndarray:
        if self.gate_order is not None:
            mats = self._regroup(mats, self.gate_order)
        return mats.reshape(tuple(self.param.shape))

    def _regroup(self, mats: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
        hidden = self.matrix[0] // len(order)
        return np.stack([gate_rows(m, order, hidden) for m in mats])


def find_torch_layers(model: nn.Module, names: Mapping[str, str] | None = None) -> list[TorchLayer]:
    """Prunable weights of `model` in module order."""
    names = names or {}
    layers: list[TorchLayer] = []
    seen: set[int] = set()

    def add(qualname: str, default: str, param: nn.Parameter, groups: int,
            matrix: tuple[int, int], **kw: Any) -> None:
        if id(param) in seen or min(matrix) < 1:
            return
        seen.add(id(param))
        layers.append(TorchLayer(names.get(qualname, default), qualname, param, groups, matrix,
                                 **kw))

    for mod_name, module in model.named_modules():
        prefix = f"{mod_name}." if mod_name else ""
        label = mod_name or type(module).__name__.lower()
        if isinstance(module, nn.modules.conv._ConvNd) and not module.transposed:
            w = module.weight
            g = module.groups
            add(f"{prefix}weight", label, w, g, (w.shape[0] // g, int(np.prod(w.shape[1:]))),
                depthwise=g > 1 and w.shape[1] == 1)
        elif isinstance(module, nn.Linear):
            add(f"{prefix}weight", label, module.weight, 1, tuple(module.weight.shape))
        elif isinstance(module, nn.RNNBase) and type(module) in _RNN_GATES:
            order = GATE_ORDER[_RNN_GATES[type(module)]]
            for pname in module._flat_weights_names:
                if pname.startswith(("weight_ih", "weight_hh")):
                    w = getattr(module, pname)
                    add(f"{prefix}{pname}", matrix_name(label, pname), w, 1, tuple(w.shape),
                        gate_order=order)
    return layers


def _select(layer: TorchLayer, settings: Settings, values: torch.Tensor | None = None) -> torch.Tensor:
    """The BCR mask of `values` (default: the layer's weight) as a bool tensor."""
    tensor = layer.param if values is None else values
    array = tensor.detach().to("cpu", torch.float32).numpy()
    if not np.isfinite(array).all():
        raise PruneError(f"layer {layer.name!r} ({layer.weight}): non-finite weights")
    mask = layer.from_gemm_view(bcr_mask(layer.gemm_view(array), settings))
    return torch.from_numpy(np.ascontiguousarray(mask)).to(tensor.device)


@dataclass(frozen=True)
class LayerState:
    """One row of `BCRPruner.summary()`."""

    name: str
    weight: str
    block: tuple[int, int] | None
    keep: tuple[int, int] | None
    density: float
    dense_reason: str | None


class BCRPruner:
    """Attach BCR masks to `model`'s prunable weights and keep them through training.

    The options are those of `grimc.prune.prune_model` (block, rate or
    col_rate/row_rate, row_share, balanced, config, include, exclude,
    min_weights, min_k). `schedule`: OneShot (default), Cubic (gradual) or
    ADMM (regularized, then hard-pruned).
    """

    def __init__(
        self,
        model: nn.Module,
        block: tuple[int, int] | str | None = None,
        rate: float | None = None,
        *,
        schedule: Schedule | None = None,
        config: PruneConfig | Mapping | str | os.PathLike | None = None,
        balanced: bool | None = None,
        col_rate: float | None = None,
        row_rate: float | None = None,
        row_share: float | None = None,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        min_weights: int | None = None,
        min_k: int | None = None,
        names: Mapping[str, str] | None = None,
    ) -> None:
        options = Options.resolve(config, include, exclude, where="BCRPruner", block=block,
                                  rate=rate, col_rate=col_rate, row_rate=row_rate,
                                  row_share=row_share, balanced=balanced,
                                  min_weights=min_weights, min_k=min_k)
        self.model = model
        self.schedule: Schedule = schedule or OneShot()
        layers = find_torch_layers(model, names)
        self.warnings = options.unmatched(layers)
        for note in self.warnings:
            warnings.warn(note, PruneWarning, stacklevel=2)
        self.plans: list[Plan[TorchLayer]] = options.plan(layers)
        self.masks: dict[str, torch.Tensor] = {}
        self.step_count = 0
        self._progress = 0.0
        self._z: dict[str, torch.Tensor] = {}
        self._u: dict[str, torch.Tensor] = {}
        self._hooks = [p.layer.param.register_hook(self._grad_hook(p.layer.weight))
                       for p in self.pruned]
        self._update()

    # ------------------------------------------------------------------ state

    @property
    def pruned(self) -> list[Plan[TorchLayer]]:
        return [p for p in self.plans if p.dense_reason is None]

    @property
    def progress(self) -> float:
        """Fraction of the final pruning reached (1: every layer at its rule)."""
        return self._progress

    def _grad_hook(self, weight: str):
        def hook(grad: torch.Tensor) -> torch.Tensor:
            mask = self.masks.get(weight)
            return grad if mask is None else grad * mask
        return hook

    def _update(self) -> None:
        """Apply the schedule at the current step."""
        progress = self.schedule.progress(self.step_count)
        if isinstance(self.schedule, ADMM) and progress < 1.0:
            if self.step_count % self.schedule.every == 0:
                self._admm_update()
        elif progress != self._progress:
            for plan in self.pruned:
                self.masks[plan.layer.weight] = _select(plan.layer,
                                                        at_progress(plan.settings, progress))
            self._z.clear()
            self._u.clear()
        self._progress = progress
        self.apply_masks()

    def _admm_update(self) -> None:
        """Z = projection of W + U onto the BCR set, then U += W - Z (first: Z = proj(W), U = 0)."""
        with torch.no_grad():
            first = not self._z
            for plan in self.pruned:
                key, w = plan.layer.weight, plan.layer.param
                if first:
                    self._u[key] = torch.zeros_like(w)
                v = w + self._u[key]
                z = v * _select(plan.layer, plan.settings, v)
                if not first:
                    self._u[key].add_(w - z)
                self._z[key] = z

    # ------------------------------------------------------------------ the loop

    def step(self) -> None:
        """Call after each optimizer step: advance the schedule, keep pruned weights at 0."""
        self.step_count += 1
        self._update()

    def attach(self, optimizer: torch.optim.Optimizer):
        """Call `step()` after every `optimizer.step()`; returns the hook handle."""
        return optimizer.register_step_post_hook(lambda *_: self.step())

    def penalty(self) -> torch.Tensor:
        """The ADMM term rho/2 * sum ||W - Z + U||^2 (0 for the other schedules or after it)."""
        if not isinstance(self.schedule, ADMM) or not self._z:
            return torch.zeros(())
        terms = [((p.layer.param - self._z[p.layer.weight] + self._u[p.layer.weight]) ** 2).sum()
                 for p in self.pruned]
        return 0.5 * self.schedule.rho * torch.stack(terms).sum()

    def apply_masks(self) -> None:
        """Zero every pruned weight (the optimizer may have moved it)."""
        with torch.no_grad():
            for plan in self.pruned:
                mask = self.masks.get(plan.layer.weight)
                if mask is not None:
                    plan.layer.param.mul_(mask)

    def finish(self) -> None:
        """Prune to the final rule now, whatever the schedule says (before export)."""
        if self._progress < 1.0:
            for plan in self.pruned:
                self.masks[plan.layer.weight] = _select(plan.layer, plan.settings)
            self._progress = 1.0
            self._z.clear()
            self._u.clear()
        self.apply_masks()

    def remove(self) -> None:
        """Detach the gradient hooks (the weights keep their zeros)."""
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()

    def summary(self) -> list[LayerState]:
        """Per layer: effective block, balanced keep, current density, or why dense."""
        rows = []
        for plan in self.plans:
            layer = plan.layer
            mask = self.masks.get(layer.weight)
            density = float(mask.float().mean()) if mask is not None else 1.0
            if plan.dense_reason is not None:
                rows.append(LayerState(layer.name, layer.weight, None, None, 1.0,
                                       plan.dense_reason))
                continue
            block = effective_block(plan.settings.block, layer.matrix)
            keep = balanced_keep(plan.settings, block) if plan.settings.balanced else None
            rows.append(LayerState(layer.name, layer.weight, block, keep, density, None))
        return rows

    def export_onnx(self, path: str | os.PathLike, args: tuple, **kwargs: Any) -> None:
        """Finish pruning and export with torch's TorchScript-based ONNX exporter (opset 17,
        constants folded, so GRU/LSTM weights are plain initializers grimc detects)."""
        self.finish()
        training = self.model.training
        self.model.eval()
        try:
            with warnings.catch_warnings():  # the exporter's deprecation and tracer chatter
                warnings.simplefilter("ignore")
                torch.onnx.export(self.model, args, os.fspath(path), dynamo=False,
                                  **{"opset_version": 17, **kwargs})
        finally:
            self.model.train(training)
