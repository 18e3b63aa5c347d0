"""Per-layer sensitivity for `grimc prune --auto`: the validation loss change when
one layer alone is pruned one-shot at a candidate block and rate, all else dense."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
import torch

from grimc.prune import Options, PruneError, bcr_mask
from grimc.prune.auto import Candidate, Step, Unit, settings_for
from grimc.train.fit import Samples, evaluate
from grimc.train.onnx_torch import OnnxModule, UnsupportedOp, prunable_names
from grimc.train.pruner import find_torch_layers


def sensitivity(model: onnx.ModelProto, units: Sequence[Unit], cands: Sequence[Candidate],
                val: Samples, options: Options,
                step: Step | None = None) -> tuple[float, dict[str, dict[Candidate, float]]]:
    """(dense validation loss, per unit and candidate: loss increase when only that unit
    is pruned). Without labels in `val` the loss is the MSE to the dense model's outputs."""
    try:
        module = OnnxModule(model).eval()
        teacher = OnnxModule(model).eval() if val.labels is None else None
    except UnsupportedOp as exc:
        raise PruneError(f"--auto: cannot evaluate this model in torch: unsupported {exc}") from None
    by_name = {layer.name: layer for layer in find_torch_layers(module, prunable_names(module))}
    missing = [layer.name for unit in units for layer in unit.layers if layer.name not in by_name]
    if missing:
        raise PruneError(f"--auto: layer {missing[0]!r} has no torch parameter to evaluate")
    with torch.no_grad():
        base = evaluate(module, val, teacher)[0]
        found: dict[str, dict[Candidate, float]] = {}
        for unit in units:
            params = [by_name[layer.name] for layer in unit.layers]
            saved = [p.param.detach().clone() for p in params]
            found[unit.name] = {}
            for cand in cands:
                if step:
                    step(f"sensitivity {unit.name} {cand}")
                settings = settings_for(options, cand)
                for layer in params:
                    array = layer.param.detach().numpy()
                    mask = layer.from_gemm_view(bcr_mask(layer.gemm_view(array), settings))
                    layer.param.mul_(torch.from_numpy(np.ascontiguousarray(mask)))
                found[unit.name][cand] = evaluate(module, val, teacher)[0] - base
                for layer, original in zip(params, saved, strict=True):
                    layer.param.copy_(original)
    return base, found
