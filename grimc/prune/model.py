"""`prune_model`: BCR-prune the weights of an ONNX model in place of a copy."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import onnx
from onnx import numpy_helper

from grimc.prune.config import PruneConfig
from grimc.prune.discover import Layer, find_layers
from grimc.prune.plan import Options, Plan
from grimc.prune.report import LayerReport, PruneResult
from grimc.prune.rules import (
    PruneError,
    PruneWarning,
    balanced_keep,
    effective_block,
    fmt_block,
    show,
)
from grimc.prune.select import prune_matrices

_WORD = 4  # bytes per float32 value, as grimc stores weights


def _read_weight(model: onnx.ModelProto, layer: Layer, label: str) -> np.ndarray:
    tensor = model.graph.initializer[layer.index]
    where = f"{label}: layer {show(layer.name)} (initializer {show(layer.weight)})"
    try:
        array = numpy_helper.to_array(tensor)
    except Exception as exc:  # noqa: BLE001 - onnx raises many types on bad tensors
        raise PruneError(f"{where}: cannot read data ({str(exc).splitlines()[0][:200]})") from None
    if tuple(array.shape) != layer.shape:
        raise PruneError(f"{where}: data does not match its dims {list(layer.shape)}")
    bad = ~np.isfinite(array)
    if bad.any():
        at = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), array.shape))
        raise PruneError(f"{where}: non-finite weight {array[at]} at index {list(at)}")
    return array


def _prune_layer(model: onnx.ModelProto, plan: Plan[Layer], label: str, notes: list[str]) -> LayerReport:
    layer, settings = plan.layer, plan.settings
    dense_bytes = _WORD * layer.weights
    if plan.dense_reason is not None:
        return LayerReport(layer.name, layer.op, layer.weight, layer.groups, layer.matrix, None,
                           None, settings.balanced, plan.dense_reason, layer.weights,
                           layer.weights, dense_bytes, dense_bytes)
    array = _read_weight(model, layer, label)
    block = effective_block(settings.block, layer.matrix)
    cells = block[0] * block[1]
    if settings.balanced and settings.density * cells < 1 and block != settings.block:
        notes.append(f"layer {show(layer.name)}: rate {1 / settings.density:g} is out of reach "
                     f"of its effective block {fmt_block(block)}; pruned to {cells}x")
    result = prune_matrices(layer.gemm_view(array), block, settings)
    tensor = model.graph.initializer[layer.index]
    pruned = layer.from_gemm_view(result.mats).astype(array.dtype, copy=False)
    new = numpy_helper.from_array(pruned, tensor.name)
    new.doc_string = tensor.doc_string
    tensor.CopyFrom(new)
    keep = balanced_keep(settings, block) if settings.balanced else None
    return LayerReport(layer.name, layer.op, layer.weight, layer.groups, layer.matrix, block,
                       keep, settings.balanced, None, layer.weights, result.values,
                       result.bcrc_bytes(), dense_bytes)


def prune_model(
    model: onnx.ModelProto | str | os.PathLike | bytes,
    block: tuple[int, int] | str | None = None,
    rate: float | None = None,
    config: PruneConfig | Mapping | str | os.PathLike | None = None,
    balanced: bool | None = None,
    *,
    col_rate: float | None = None,
    row_rate: float | None = None,
    row_share: float | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    min_weights: int | None = None,
    min_k: int | None = None,
    label: str | None = None,
) -> PruneResult:
    """BCR-prune every prunable weight of `model`; the caller's ModelProto is not modified.

    None means "the config's [defaults], else the built-in default": block 8x16,
    rate 8 (unless col_rate/row_rate are given), balanced, min_weights 2048,
    min_k 32. `config` is a PruneConfig, a TOML file path or its parsed mapping.
    Raises PruneError (or the frontend's error for unreadable models); patterns
    that match no layer are warnings (PruneWarning and `PruneResult.warnings`).
    """
    from grimc.frontend.load import load_model

    loaded, where = load_model(model, label or "model")
    if isinstance(model, onnx.ModelProto):
        loaded = onnx.ModelProto()
        loaded.CopyFrom(model)
    options = Options.resolve(config, include, exclude, block=block, rate=rate,
                              col_rate=col_rate, row_rate=row_rate, row_share=row_share,
                              balanced=balanced, min_weights=min_weights, min_k=min_k)
    layers = find_layers(loaded)
    notes = options.unmatched(layers)
    reports = [_prune_layer(loaded, plan, where, notes) for plan in options.plan(layers)]
    for note in notes:
        warnings.warn(note, PruneWarning, stacklevel=2)
    return PruneResult(loaded, reports, notes)


def serialize(model: onnx.ModelProto) -> bytes:
    try:
        return model.SerializeToString()
    except ValueError as exc:  # protobuf refuses messages over 2 GB
        raise PruneError(f"cannot serialize the pruned model ({exc})") from None

