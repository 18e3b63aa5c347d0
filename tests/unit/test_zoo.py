"""grimc.zoo: every model is valid ONNX, runs in onnxruntime with sane outputs, and is
byte-for-byte reproducible."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from grimc import zoo
from grimc.artifacts import onnxruntime_reference
from grimc.errors import GrimcError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "small_cnn.onnx"

SMALL_RNN: dict[str, Any] = {"input_size": 12, "hidden_size": 16, "seq_len": 7}

# (name, kwargs, expected output shape)
REDUCED: list[tuple[str, dict[str, Any], tuple[int, ...]]] = [
    ("vgg16", {"image_size": 32, "width": 0.25, "num_classes": 10}, (1, 10)),
    ("vgg16", {"image_size": 32, "width": 0.125, "batchnorm": True, "dropout": False}, (1, 1000)),
    ("resnet18", {"image_size": 32, "width": 0.25, "num_classes": 10, "batch": 2}, (2, 10)),
    ("resnet50", {"image_size": 64, "width": 0.25}, (1, 1000)),
    ("mobilenet_v2", {"image_size": 32, "width": 0.25, "num_classes": 10}, (1, 10)),
    ("mobilenet_v2", {"image_size": 32, "width": 0.5, "opset": 11}, (1, 1000)),
    ("small_cnn", {}, (1, 10)),
    ("small_cnn", {"opset": 13, "batch": 3}, (3, 10)),
    ("gru", SMALL_RNN, (7, 1, 16)),
    ("gru", {**SMALL_RNN, "direction": "bidirectional", "num_classes": 5}, (7, 1, 5)),
    (
        "gru",
        {**SMALL_RNN, "direction": "reverse", "linear_before_reset": 0, "batch": 2},
        (7, 2, 16),
    ),
    ("gru", {**SMALL_RNN, "num_layers": 3, "opset": 11}, (7, 1, 16)),
    ("lstm", SMALL_RNN, (7, 1, 16)),
    ("lstm", {**SMALL_RNN, "direction": "bidirectional", "peepholes": True}, (7, 1, 32)),
    ("rnn", {**SMALL_RNN, "num_layers": 1, "num_classes": 3}, (7, 1, 3)),
    ("rnn", {**SMALL_RNN, "direction": "bidirectional"}, (7, 1, 32)),
    ("bert_encoder", {"seq_len": 8, "hidden": 32, "heads": 2, "num_layers": 2}, (1, 8, 32)),
    ("text_recognizer", {"image_width": 64, "width": 0.25, "hidden": 32}, (1, 8, 97)),
    ("yolo_detector", {"image_size": 64, "width": 0.25, "num_classes": 3}, (1, 7, 84)),
    ("fpn_text_detector", {"image_size": 64, "width": 0.25}, (1, 1, 64, 64)),
    ("super_resolution", {"image_size": 8, "upscale": 4}, (1, 1, 32, 32)),
    ("super_resolution", {"image_size": 8, "upsample": "conv_transpose"}, (1, 1, 16, 16)),
    ("log_mel", {"frames": 10, "n_fft": 128, "n_mels": 16}, (1, 10, 16)),
]

FULL: list[tuple[str, tuple[int, ...]]] = [
    ("vgg16", (1, 1000)),
    ("resnet18", (1, 1000)),
    ("resnet50", (1, 1000)),
    ("mobilenet_v2", (1, 1000)),
    ("gru", (100, 1, 1024)),
    ("lstm", (100, 1, 1024)),
    ("rnn", (100, 1, 1024)),
]

TINY: dict[str, dict[str, Any]] = {
    "bert_encoder": {"seq_len": 8, "hidden": 32, "heads": 2, "num_layers": 1},
    "text_recognizer": {"image_width": 64, "width": 0.25, "hidden": 32, "num_layers": 1},
    "yolo_detector": {"image_size": 32, "width": 0.25, "num_classes": 3},
    "fpn_text_detector": {"image_size": 32, "width": 0.25},
    "super_resolution": {"image_size": 8, "width": 0.25},
    "log_mel": {"frames": 4, "n_fft": 64, "n_mels": 8},
    "vad": {"samples": 64, "channels": 4, "hidden": 8},
}

WEIGHTLESS = {"log_mel"}
"""Models whose constants are all computed (DFT bases, filter banks): no seed to vary."""

PLAIN_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


def tiny(name: str) -> dict[str, Any]:
    """Arguments for the smallest sensible variant of a zoo model."""
    if name in ("gru", "lstm", "rnn"):
        return dict(SMALL_RNN)
    if name == "small_cnn":
        return {}
    if name in TINY:
        return dict(TINY[name])
    return {"image_size": 32, "width": 0.125}


def run_ort(model: onnx.ModelProto) -> np.ndarray:
    """Run on a seeded N(0, 1) input; returns the single output."""
    (inp,) = model.graph.input
    x = np.random.default_rng(1234).standard_normal(declared_shape(inp)).astype(np.float32)
    (out,) = onnxruntime_reference(model.SerializeToString(), [x])
    return out


def declared_shape(value: onnx.ValueInfoProto) -> tuple[int, ...]:
    return tuple(d.dim_value for d in value.type.tensor_type.shape.dim)


def check_runs(model: onnx.ModelProto, expected: tuple[int, ...]) -> None:
    onnx.checker.check_model(model, full_check=True)
    graph = model.graph
    assert [i.name for i in graph.input] == ["input"]
    assert [o.name for o in graph.output] == ["output"]
    assert declared_shape(graph.output[0]) == expected
    out = run_ort(model)
    assert out.shape == expected
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    assert out.std() > 1e-3


@pytest.mark.parametrize(("name", "kwargs", "expected"), REDUCED, ids=lambda v: str(v))
def test_reduced_variant_runs(name: str, kwargs: dict[str, Any], expected: tuple[int, ...]) -> None:
    check_runs(zoo.build(name, **kwargs), expected)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "expected"), FULL)
def test_full_size_model_runs(name: str, expected: tuple[int, ...]) -> None:
    check_runs(zoo.build(name), expected)


@pytest.mark.parametrize("name", sorted(zoo.MODELS))
def test_deterministic_and_seeded(name: str) -> None:
    kwargs = tiny(name)
    first = zoo.build(name, **kwargs).SerializeToString()
    assert zoo.build(name, **kwargs).SerializeToString() == first
    if name not in WEIGHTLESS:
        assert zoo.build(name, seed=1, **kwargs).SerializeToString() != first


@pytest.mark.parametrize("name", sorted(zoo.MODELS))
def test_names_are_plain_and_unique(name: str) -> None:
    graph = zoo.build(name, **tiny(name)).graph
    node_names = [n.name for n in graph.node]
    assert len(set(node_names)) == len(node_names)
    produced = [t for n in graph.node for t in n.output]
    assert len(set(produced)) == len(produced)
    tensors = set(node_names) | set(produced) | {t.name for t in graph.initializer}
    assert all(PLAIN_NAME.match(t) for t in tensors), sorted(tensors)


def test_graph_structure_matches_the_architectures() -> None:
    def count(model: onnx.ModelProto, op: str) -> int:
        return sum(n.op_type == op for n in model.graph.node)

    vgg = zoo.vgg16(image_size=32, width=0.125)
    assert (count(vgg, "Conv"), count(vgg, "MaxPool"), count(vgg, "Gemm")) == (13, 5, 3)
    assert count(vgg, "Dropout") == 2
    # Block convs + stem + downsamples: 16 + 1 + 3 for ResNet-18, 48 + 1 + 4 for ResNet-50.
    assert count(zoo.resnet18(image_size=32, width=0.125), "Conv") == 20
    assert count(zoo.resnet50(image_size=32, width=0.125), "Conv") == 53
    mobile = zoo.mobilenet_v2(image_size=32, width=0.5)
    depthwise = [n for n in mobile.graph.node if n.op_type == "Conv" and _group(n) > 1]
    assert len(depthwise) == 17
    assert count(mobile, "Add") == 10
    bi = zoo.gru(**SMALL_RNN, num_layers=2, direction="bidirectional")
    assert {n.op_type for n in bi.graph.node} == {"GRU", "Transpose", "Reshape"}


def _group(node: onnx.NodeProto) -> int:
    return next((a.i for a in node.attribute if a.name == "group"), 1)


def test_small_cnn_is_a_sensible_pruning_target() -> None:
    model = zoo.small_cnn()
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    total = sum(w.size for w in weights.values())
    assert 20_000 < total < 75_000
    assert any(w.shape == (64, 32, 3, 3) for w in weights.values())
    ops = {n.op_type for n in model.graph.node}
    expected = {"Conv", "BatchNormalization", "Relu", "Add", "MaxPool", "GlobalAveragePool"}
    assert expected | {"Flatten", "Gemm", "Softmax"} <= ops


def test_bundled_example_is_current() -> None:
    """examples/small_cnn.onnx must be what examples/make_example.py writes today."""
    data = EXAMPLE.read_bytes()
    assert len(data) < 300_000
    assert data == zoo.small_cnn().SerializeToString()


def test_unknown_model_is_a_user_error() -> None:
    with pytest.raises(GrimcError, match="unknown zoo model 'alexnet'"):
        zoo.build("alexnet")


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="direction"):
        zoo.gru(direction="sideways")
    with pytest.raises(ValueError, match="opset"):
        zoo.small_cnn(opset=10)
