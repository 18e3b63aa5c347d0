"""The benchmark's models and their variants (dense, BCR-pruned), and the cases.

A *model* is one of grimc's zoo networks at the paper's size; a *variant* is
the ONNX file every engine runs: ``dense`` (the seeded zoo weights) or ``bcr``
(the same model pruned by `grimc.prune.prune_model`, zeros stored as zeros, so
dense engines do the full work and sparse engines may skip it). A *case* is
(model, variant, threads, engine), measured in its own process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx


@dataclass(frozen=True)
class ModelDef:
    """A benchmark model: zoo builder name, its keyword arguments, a display label."""

    name: str
    zoo: str
    kwargs: dict[str, Any]
    label: str
    input_shape: tuple[int, ...]


# The paper's four networks (GRIM, TPAMI 2021) at the sizes the issue asks for.
MODELS: dict[str, ModelDef] = {
    "vgg16": ModelDef("vgg16", "vgg16", {"image_size": 224}, "VGG-16 224x224", (1, 3, 224, 224)),
    "resnet18": ModelDef(
        "resnet18", "resnet18", {"image_size": 224}, "ResNet-18 224x224", (1, 3, 224, 224)
    ),
    "mobilenet_v2": ModelDef(
        "mobilenet_v2", "mobilenet_v2", {"image_size": 224}, "MobileNet-V2 224x224",
        (1, 3, 224, 224),
    ),
    "gru": ModelDef(
        "gru", "gru", {"hidden_size": 1024, "num_layers": 2, "seq_len": 100},
        "GRU 2x1024, 100 steps", (100, 1, 153),
    ),
    # Representative models of real published families (issue 12); not in the default set.
    "yolo_detector": ModelDef(
        "yolo_detector", "yolo_detector", {"image_size": 320}, "YOLOv8n-style detector 320x320",
        (1, 3, 320, 320),
    ),
    "text_recognizer": ModelDef(
        "text_recognizer", "text_recognizer", {}, "conv+transformer text recognizer 32x256",
        (1, 1, 32, 256),
    ),
    "bert_encoder": ModelDef(
        "bert_encoder", "bert_encoder", {}, "BERT-style encoder 4x256, seq 128", (1, 128, 256),
    ),
    # Small models for tests and smoke runs (not in the default set).
    "small_cnn": ModelDef("small_cnn", "small_cnn", {}, "small CNN 32x32", (1, 3, 32, 32)),
    "tiny_gru": ModelDef(
        "tiny_gru", "gru", {"hidden_size": 64, "num_layers": 1, "seq_len": 8, "input_size": 32},
        "GRU 1x64, 8 steps", (8, 1, 32),
    ),
}
DEFAULT_MODELS = ("vgg16", "resnet18", "mobilenet_v2", "gru")
VARIANTS = ("dense", "bcr")


@dataclass
class PruneSpec:
    """How the ``bcr`` variant is made (grimc.prune defaults: 8x16 blocks, 8x)."""

    block: str = "8x16"
    rate: float = 8.0

    def describe(self) -> str:
        return f"BCR {self.block} blocks, {self.rate:g}x on prunable layers (grimc.prune)"


@dataclass
class PreparedVariant:
    """A variant's ONNX file and input, or why it could not be made."""

    model: str
    variant: str
    onnx_path: Path | None = None
    input_path: Path | None = None
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["onnx_path"] = str(self.onnx_path) if self.onnx_path else None
        data["input_path"] = str(self.input_path) if self.input_path else None
        return data


def first_line(exc: BaseException) -> str:
    """One line naming an exception: what the report prints as the reason."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def build_dense(defn: ModelDef) -> onnx.ModelProto:
    from grimc import zoo

    return zoo.build(defn.zoo, **defn.kwargs)


def make_input(defn: ModelDef, seed: int = 0) -> np.ndarray:
    """The seeded input every engine gets (standard normal, float32)."""
    return np.random.default_rng(seed).standard_normal(defn.input_shape).astype(np.float32)


def prune(model: onnx.ModelProto, spec: PruneSpec) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """The BCR-pruned copy of `model` and a summary (density, bytes)."""
    from grimc.prune import prune_model

    result = prune_model(model, block=spec.block, rate=spec.rate)
    pruned = [r for r in result.layers if getattr(r, "kept", r.weights) < r.weights]
    info = {
        "prune": spec.describe(),
        "prunable_weights": int(result.weights),
        "kept_weights": int(result.kept),
        "density": round(float(result.density), 5),
        "pruned_layers": len(pruned),
        "layers": len(result.layers),
    }
    return result.model, info


def prepare_variants(
    models: list[str],
    variants: list[str],
    workdir: Path,
    spec: PruneSpec,
    log: Callable[[str], None] = print,
) -> dict[tuple[str, str], PreparedVariant]:
    """Write each (model, variant) ONNX file and input under workdir; failures are kept."""
    out: dict[tuple[str, str], PreparedVariant] = {}
    workdir.mkdir(parents=True, exist_ok=True)
    for name in models:
        defn = MODELS[name]
        x_path = workdir / f"{name}.input.npy"
        np.save(x_path, make_input(defn))
        try:
            dense = build_dense(defn)
        except Exception as exc:  # a broken zoo model fails its rows, not the run
            for v in variants:
                out[name, v] = PreparedVariant(name, v, error=f"model build failed: {first_line(exc)}")
            continue
        for variant in variants:
            prep = PreparedVariant(name, variant, input_path=x_path)
            start = time.perf_counter()
            try:
                if variant == "dense":
                    model = dense
                else:
                    model, prep.info = prune(dense, spec)
                path = workdir / f"{name}.{variant}.onnx"
                onnx.save(model, path)
                prep.onnx_path = path
            except ImportError as exc:
                prep.error = f"bcr pruning not available: {first_line(exc)}"
            except Exception as exc:
                prep.error = f"{variant} variant failed: {first_line(exc)}"
            prep.info["prepare_s"] = round(time.perf_counter() - start, 2)
            log(f"  {name} {variant}: " + (prep.error or f"{prep.onnx_path.name} ready"
                                             f" ({prep.info['prepare_s']} s)"))
            out[name, variant] = prep
    return out
