"""Prune an ONNX model with retraining: ONNX -> torch modules -> BCR masks + training ->
the same ONNX graph with the new weights (`grimc prune --retrain/--distill`).

Data sets are .npz files: one array per model input, named like the input (a
model with one input also accepts `x`), samples stacked on axis 0, and the
labels as `y` (integers: classes, cross-entropy; floats: MSE). Inputs of a
GRU/LSTM/RNN are [seq, batch, features] in ONNX: their samples go to axis 1.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import torch

from grimc.prune import PruneError, PruneResult, prune_model
from grimc.prune.discover import RNN_OPS
from grimc.prune.rules import label_text
from grimc.train.fit import Epoch, History, Samples, evaluate, first_output, fit
from grimc.train.onnx_torch import OnnxModule, UnsupportedOp, prunable_names, to_onnx
from grimc.train.pruner import BCRPruner
from grimc.train.schedule import Schedule, schedule_for


@dataclass(frozen=True)
class ModelInput:
    name: str
    shape: tuple[int | None, ...]
    """Static dims, None where symbolic."""
    batch_axis: int


def model_inputs(model: onnx.ModelProto) -> list[ModelInput]:
    """The graph inputs that are not initializers, with the axis that holds samples."""
    inits = {t.name for t in model.graph.initializer}
    rnn_inputs = {n.input[0] for n in model.graph.node if n.op_type in RNN_OPS and not any(
        a.name == "layout" and a.i == 1 for a in n.attribute)}
    found = []
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                     for d in vi.type.tensor_type.shape.dim)
        found.append(ModelInput(vi.name, dims, 1 if vi.name in rnn_inputs and len(dims) == 3
                                else 0))
    return found


def _shape_text(shape: Sequence[int | None], batch_axis: int) -> str:
    dims = ["N" if i == batch_axis else ("?" if d is None else str(d))
            for i, d in enumerate(shape)]
    return f"[{', '.join(dims)}]"


def load_samples(path: str | os.PathLike, model: onnx.ModelProto, flag: str,
                 need_labels: bool) -> Samples:
    """Read and check an .npz data set against the model's inputs (one-line PruneErrors)."""
    where = f"{flag} {label_text(os.fspath(path))}"
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError) as exc:
        raise PruneError(f"{where}: cannot read .npz ({str(exc).splitlines()[0][:200]})") from None
    inputs = model_inputs(model)
    xs, count = [], None
    for inp in inputs:
        key = inp.name if inp.name in arrays or len(inputs) > 1 else "x"
        if key not in arrays:
            keys = ", ".join(sorted(arrays)) or "none"
            raise PruneError(f"{where}: no array '{inp.name}' for the model input '{inp.name}' "
                             f"(arrays: {keys})")
        array = arrays[key]
        if not np.issubdtype(array.dtype, np.number) or array.ndim < 1:
            raise PruneError(f"{where}: array '{key}' is not numeric samples ({array.dtype})")
        sample = [d for i, d in enumerate(inp.shape) if i != inp.batch_axis]
        if array.ndim != len(inp.shape) or any(
                want is not None and got != want for got, want in zip(array.shape[1:], sample,
                                                                       strict=False)):
            raise PruneError(
                f"{where}: array '{key}' has shape {list(array.shape)} but the model input "
                f"'{inp.name}' takes {_shape_text(inp.shape, inp.batch_axis)} "
                "(samples stacked on axis 0 of the array)")
        if count is not None and len(array) != count:
            raise PruneError(f"{where}: array '{key}' has {len(array)} samples, others {count}")
        count = len(array)
        values = array.astype(np.float32)
        if not np.isfinite(values).all():
            raise PruneError(f"{where}: array '{key}' has non-finite values")
        xs.append(np.moveaxis(values, 0, inp.batch_axis))
    labels = arrays.get("y")
    if need_labels and labels is None:
        raise PruneError(f"{where}: no labels 'y' (use --distill to train without labels)")
    if labels is not None:
        if len(labels) != count:
            raise PruneError(f"{where}: {len(labels)} labels 'y' for {count} samples")
        if np.issubdtype(labels.dtype, np.integer):
            labels = labels.astype(np.int64)
        elif np.issubdtype(labels.dtype, np.floating):
            labels = labels.astype(np.float32)
        else:
            raise PruneError(f"{where}: labels 'y' are not numbers ({labels.dtype})")
    return Samples(xs, labels, [i.batch_axis for i in inputs], where)


def _check_labels(module: OnnxModule, data: Samples) -> None:
    """Class labels must index the model's output; regression targets must match its size."""
    if data.labels is None:
        return
    xs, _ = data.batch(np.arange(1))
    with torch.no_grad():
        out = first_output(module(*xs))
    size = int(out.numel())
    if data.classification:
        low, high = int(data.labels.min()), int(data.labels.max())
        if low < 0 or high >= size:
            raise PruneError(f"{data.where}: class labels 'y' span {low}..{high} but the model has "
                             f"{size} outputs")
    elif int(np.prod(data.labels.shape[1:])) != size:
        raise PruneError(f"{data.where}: targets 'y' of shape {list(data.labels.shape[1:])} per "
                         f"sample, the model outputs {size} values")


@dataclass
class Retrained:
    """The retrained pruned model (report included) and the training log."""

    result: PruneResult
    history: History
    dense_val: tuple[float, float | None] | None
    """(loss, accuracy) of the dense model on the validation data."""
    pruned_val: tuple[float, float | None] | None


def retrain_model(
    model: onnx.ModelProto,
    data: Samples,
    *,
    epochs: int = 10,
    val: Samples | None = None,
    distill: bool = False,
    schedule: Schedule | None = None,
    lr: float = 1e-3,
    batch_size: int = 32,
    seed: int = 0,
    log: Callable[[Epoch], None] | None = None,
    prune_options: Mapping[str, Any] | None = None,
) -> Retrained:
    """BCR-prune `model` with the `prune_model` options and retrain it on `data`.

    distill: no labels; the student matches the dense model's outputs (MSE).
    """
    options = dict(prune_options or {})
    torch.manual_seed(seed)
    try:
        student = OnnxModule(model)
        teacher = OnnxModule(model).eval() if distill else None
    except UnsupportedOp as exc:
        raise PruneError(f"cannot retrain this model in torch: unsupported {exc}") from None
    if not distill:
        _check_labels(student, data)
        if val is not None:
            _check_labels(student, val)
    val_teacher = teacher if val is not None and val.labels is None else None
    dense_val = evaluate(student, val, val_teacher) if val is not None else None
    include = options.pop("include", ())
    exclude = options.pop("exclude", ())
    pruner = BCRPruner(student, schedule=schedule, names=prunable_names(student),
                       include=include, exclude=exclude, **options)
    history = fit(student, data, epochs=epochs, pruner=pruner, teacher=teacher, val=val, lr=lr,
                  batch_size=batch_size, seed=seed, log=log)
    pruned_val = evaluate(student, val, val_teacher) if val is not None else None
    result = prune_model(to_onnx(student.eval()), include=include, exclude=exclude, **options)
    return Retrained(result, history, dense_val, pruned_val)


def retrain_file(
    model: str | os.PathLike | onnx.ModelProto,
    data: str | os.PathLike,
    *,
    val: str | os.PathLike | None = None,
    distill: bool = False,
    method: str = "finetune",
    epochs: int = 10,
    lr: float = 1e-3,
    batch_size: int = 32,
    seed: int = 0,
    log: Callable[[Epoch], None] | None = None,
    label: str | None = None,
    prune_options: Mapping[str, Any] | None = None,
) -> Retrained:
    """`grimc prune --retrain/--distill`: load the model and the .npz data sets, check
    them against each other (one-line PruneErrors), prune and retrain."""
    from grimc.frontend.load import load_model

    loaded, _ = load_model(model, label or "model")
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise PruneError(f"--epochs {epochs}, --batch-size {batch_size}, --lr {lr:g}: need "
                         "epochs >= 1, batch size >= 1 and lr > 0")
    train = load_samples(data, loaded, "--data", need_labels=not distill)
    held = load_samples(val, loaded, "--val", need_labels=not distill) if val else None
    steps_per_epoch = -(-len(train) // batch_size)
    torch.use_deterministic_algorithms(True)
    return retrain_model(loaded, train, epochs=epochs, val=held, distill=distill,
                         schedule=schedule_for(method, epochs, steps_per_epoch), lr=lr,
                         batch_size=batch_size, seed=seed, log=log,
                         prune_options=prune_options)
