"""Every grimc.zoo model, full size, imports and verifies with the expected ops."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from onnx import numpy_helper

from grimc.frontend import import_onnx
from tests.frontend.helpers import ops, prop, result_shapes, weights

zoo = pytest.importorskip("grimc.zoo")

# name -> (expected output shape, {graph op: count})
FULL: dict[str, tuple[tuple[int, ...], dict[str, int]]] = {
    "vgg16": ((1, 1000), {"graph.conv": 13, "graph.gemm": 3, "graph.max_pool": 5}),
    "resnet18": ((1, 1000), {"graph.conv": 20, "graph.batch_norm": 20, "graph.add": 8}),
    "resnet50": ((1, 1000), {"graph.conv": 53, "graph.batch_norm": 53, "graph.add": 16}),
    "mobilenet_v2": ((1, 1000), {"graph.conv": 52, "graph.clip": 35}),
    "small_cnn": ((1, 10), {"graph.conv": 6}),
    "gru": ((100, 1, 1024), {"graph.gru": 2}),
    "lstm": ((100, 1, 1024), {"graph.lstm": 2}),
    "rnn": ((100, 1, 1024), {"graph.rnn": 2}),
}


@pytest.mark.parametrize("name", list(FULL))
def test_full_size_zoo_model(name: str) -> None:
    onnx_model = zoo.build(name)
    module = import_onnx(onnx_model, name=name)
    module.verify()
    shape, counts = FULL[name]
    assert result_shapes(module) == [shape]
    for op_name, count in counts.items():
        assert len(ops(module, op_name)) == count, op_name
    clip_bounds = {b for n in onnx_model.graph.node if n.op_type == "Clip" for b in n.input[1:]}
    params = [
        t for t in onnx_model.graph.initializer if t.data_type == 1 and t.name not in clip_bounds
    ]
    stored = sum(a.size for a in weights(module).values())
    assert stored == sum(numpy_helper.to_array(t).size for t in params)
    assert all(a.dtype == np.float32 for a in weights(module).values())


def test_gru_speech_model_attributes() -> None:
    """The paper's 2x1024 GRU over 100 frames."""
    module = import_onnx(zoo.build("gru"))
    grus = ops(module, "graph.gru")
    assert [prop(g, "hidden_size") for g in grus] == [1024, 1024]
    assert [g.x.type.get_shape()[0] for g in grus] == [100, 100]


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("mobilenet_v2", {"image_size": 32, "width": 0.5, "opset": 11}),
        ("vgg16", {"image_size": 32, "width": 0.125, "batchnorm": True, "dropout": False}),
        (
            "gru",
            {
                "input_size": 12,
                "hidden_size": 16,
                "seq_len": 7,
                "direction": "bidirectional",
                "num_classes": 5,
            },
        ),
        (
            "lstm",
            {
                "input_size": 12,
                "hidden_size": 16,
                "seq_len": 7,
                "direction": "bidirectional",
                "peepholes": True,
            },
        ),
        ("small_cnn", {"opset": 13, "batch": 3}),
    ],
)
def test_zoo_variants(name: str, kwargs: dict[str, Any]) -> None:
    import_onnx(zoo.build(name, **kwargs)).verify()
