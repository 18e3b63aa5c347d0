"""The benchmark's rows: each zoo model pruned at the rate the issue calls realistic.

A *case* is one pruned model (VGG-16 gives two: 8x and 16x). `--quick`
swaps every model for a small variant of the same topology (32x32 images,
narrow CNNs, a 1x128 GRU over 8 steps), so a test can run the whole pipeline
in seconds; the rates and blocks stay the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from grimc import zoo
from grimc.prune import PruneResult, prune_model

QUICK: dict[str, tuple[str, dict[str, Any]]] = {
    "vgg16": ("32x32, width 1/8", {"image_size": 32, "width": 0.125, "num_classes": 10}),
    "resnet18": ("32x32, width 1/4", {"image_size": 32, "width": 0.25, "num_classes": 10}),
    "mobilenet_v2": ("32x32, width 1/2", {"image_size": 32, "width": 0.5, "num_classes": 10}),
    "gru": (
        "1x128, 8 steps",
        {"hidden_size": 128, "num_layers": 1, "seq_len": 8, "input_size": 32},
    ),
}
"""Small variants of each model for --quick: (size shown in the report, zoo kwargs)."""


@dataclass(frozen=True)
class Case:
    """One pruned model: zoo builder and size, BCR block and rate, prune options."""

    name: str
    model: str
    display: str
    size: str
    kwargs: dict[str, Any]
    block: str
    rate: float
    exclude: tuple[str, ...] = ()
    target: bool = False
    """The issue sets a target here: BCR speedup over onnxruntime >= compression / 2."""
    note: str = ""

    def quick(self) -> Case:
        """The same case on the small variant of its model."""
        size, kwargs = QUICK[self.model]
        return replace(self, size=f"quick: {size}", kwargs=kwargs)

    @property
    def title(self) -> str:
        return f"{self.display} {self.size}, {self.rate:g}x"


_GRU = {"hidden_size": 1024, "num_layers": 2, "seq_len": 100}
_IMAGE = {"image_size": 224}
CASES: dict[str, tuple[Case, ...]] = {
    "vgg16": tuple(
        Case(f"vgg16-{r:g}x", "vgg16", "VGG-16", "224x224", _IMAGE, "8x16", r, target=True)
        for r in (8.0, 16.0)
    ),
    "resnet18": (Case("resnet18-6x", "resnet18", "ResNet-18", "224x224", _IMAGE, "8x16", 6.0),),
    "mobilenet_v2": (
        Case(
            "mobilenet_v2-3x",
            "mobilenet_v2",
            "MobileNet-V2",
            "224x224",
            _IMAGE,
            "8x16",
            3.0,
            exclude=("gemm_*",),
            note="pointwise 1x1 convs only: depthwise and stem stay dense (prune rules), "
            "the classifier Gemm is excluded",
        ),
    ),
    "gru": (
        Case(
            "gru-10x",
            "gru",
            "GRU",
            "2x1024, 100 steps",
            _GRU,
            "16x32",
            10.0,
            target=True,
            note="16x32 blocks: one AVX-512 vector per 16-row block stripe "
            "(benches/gru_sparse.py: 9.1x over onnxruntime vs 5.6x with 8x16)",
        ),
    ),
}
DEFAULT_MODELS = tuple(CASES)


@dataclass
class Pruned:
    """A case's pruned model and how much it was compressed."""

    case: Case
    model: onnx.ModelProto
    path: Path
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def compression(self) -> float:
        """Dense / stored weights of the pruned layers: the rate the target is measured on."""
        return float(self.info["compression"])


def summarize(result: PruneResult) -> dict[str, Any]:
    """Compression of the pruned layers and of all prunable-op weights (dense ones included)."""
    pruned = [r for r in result.layers if r.pruned]
    weights, kept = sum(r.weights for r in pruned), sum(r.kept for r in pruned)
    return {
        "pruned_layers": len(pruned),
        "layers": len(result.layers),
        "pruned_weights": weights,
        "kept_weights": kept,
        "compression": weights / kept if kept else 1.0,
        "all_weights": result.weights,
        "compression_all": result.weights / result.kept if result.kept else 1.0,
        "kept_bytes": result.kept_bytes,
        "dense_bytes": result.dense_bytes,
    }


def prune_case(case: Case, workdir: Path) -> Pruned:
    """Build, prune and save the case's model (onnxruntime loads it from the file)."""
    result = prune_model(
        zoo.build(case.model, **case.kwargs), block=case.block, rate=case.rate, exclude=case.exclude
    )
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"{case.name}.onnx"
    onnx.save(result.model, path)
    return Pruned(case, result.model, path, summarize(result))


def model_input(model: onnx.ModelProto, seed: int = 0) -> np.ndarray:
    """The seeded standard-normal input every engine gets."""
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    return np.random.default_rng(seed).standard_normal(dims).astype(np.float32)


def select(models: list[str], quick: bool) -> list[Case]:
    """The cases of the named models, in order, small variants under --quick."""
    cases = [c for m in models for c in CASES[m]]
    return [c.quick() for c in cases] if quick else cases
