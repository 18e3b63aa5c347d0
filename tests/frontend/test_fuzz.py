"""Mutated models (random bytes, random attributes/shapes/names) either import
or fail with one FrontendError line: never a traceback or a crash."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grimc.frontend import FrontendError, import_onnx
from tests.frontend.helpers import model, node, rand
from tests.frontend.test_recurrent import recurrent_model


def _cnn() -> onnx.ModelProto:
    nodes = [
        node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[1, 1]),
        node("Relu", ["c"], ["r"]),
        node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        node("Flatten", ["p"], ["f"], axis=1),
        node("Gemm", ["f", "fc"], ["g"], transB=1),
        node("Softmax", ["g"], ["y"], axis=1),
    ]
    inits = {"w": rand(2, 3, 3, 3), "b": rand(2), "fc": rand(5, 8)}
    return model(nodes, {"x": [1, 3, 4, 4]}, ["y"], inits)


def _opset9() -> onnx.ModelProto:
    nodes = [node("Clip", ["x"], ["c"], min=0.0, max=6.0), node("Reshape", ["c", "s"], ["y"])]
    return model(nodes, {"x": [1, 3, 4, 4]}, ["y"], {"s": np.array([0, -1], np.int64)}, opset=9)


SEEDS = [_cnn(), _opset9(), recurrent_model("LSTM", "bidirectional", initial=True)]
SEED_BYTES = [m.SerializeToString() for m in SEEDS]
FUZZ = settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


def _imports_or_fails_cleanly(source: bytes | onnx.ModelProto) -> None:
    try:
        import_onnx(source)
    except FrontendError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(st.data())
def test_mutated_bytes(data: st.DataObject) -> None:
    buffer = bytearray(data.draw(st.sampled_from(SEED_BYTES)))
    for _ in range(data.draw(st.integers(1, 4))):
        buffer[data.draw(st.integers(0, len(buffer) - 1))] = data.draw(st.integers(0, 255))
    _imports_or_fails_cleanly(bytes(buffer))


INTS = st.sampled_from([-3, -1, 0, 1, 2, 7, 1000])
OP_TYPES = [
    "Conv",
    "Relu",
    "Gemm",
    "MaxPool",
    "Reshape",
    "Softmax",
    "Flatten",
    "Concat",
    "GRU",
    "Squeeze",
    "Clip",
    "Pad",
]


@FUZZ
@given(st.data())
def test_mutated_structure(data: st.DataObject) -> None:
    onnx_model = copy.deepcopy(data.draw(st.sampled_from(SEEDS)))
    graph = onnx_model.graph
    for _ in range(data.draw(st.integers(1, 3))):
        target = data.draw(st.sampled_from(list(graph.node)))
        kind = data.draw(st.sampled_from(["attr", "op", "input", "dims", "extra_attr"]))
        if kind == "attr" and target.attribute:
            attr = data.draw(st.sampled_from(list(target.attribute)))
            if attr.type == onnx.AttributeProto.INTS and attr.ints:
                attr.ints[data.draw(st.integers(0, len(attr.ints) - 1))] = data.draw(INTS)
            elif attr.type == onnx.AttributeProto.INT:
                attr.i = data.draw(INTS)
            elif attr.type == onnx.AttributeProto.FLOAT:
                attr.f = data.draw(st.sampled_from([float("nan"), float("inf"), -1.0, 1e30]))
        elif kind == "op":
            target.op_type = data.draw(st.sampled_from(OP_TYPES))
        elif kind == "input" and target.input:
            target.input[data.draw(st.integers(0, len(target.input) - 1))] = data.draw(
                st.sampled_from(["", "x", "nope"])
            )
        elif kind == "dims" and graph.initializer:
            tensor = data.draw(st.sampled_from(list(graph.initializer)))
            if tensor.dims:
                tensor.dims[data.draw(st.integers(0, len(tensor.dims) - 1))] = data.draw(
                    st.integers(0, 5)
                )
        elif kind == "extra_attr":
            name = data.draw(
                st.sampled_from(["axis", "perm", "pads", "group", "auto_pad", "direction", "to"])
            )
            value = data.draw(st.sampled_from([0, 1, -1, [1, 1], [0, 0, 0, 0], "VALID"]))
            target.attribute.append(onnx.helper.make_attribute(name, value))
    _imports_or_fails_cleanly(onnx_model)


def test_duplicate_attribute_is_an_invalid_node() -> None:
    onnx_model = _cnn()
    onnx_model.graph.node[0].attribute.append(onnx.helper.make_attribute("pads", [0, 0, 0, 0]))
    with pytest.raises(
        FrontendError,
        match=r"node #0 \(Conv\): invalid node \(Attribute 'pads' appeared multiple times",
    ):
        import_onnx(onnx_model)
