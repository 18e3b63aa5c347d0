"""One naming of layers (grimc.layers) in the frontend, inspect, prune and the profile."""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper, numpy_helper

from grimc import zoo
from grimc.driver import compile_model, import_model
from grimc.inspect_model import inspect
from grimc.layers import LAYER_ATTR, MIN_SPARSE_WEIGHTS, layer_names, layer_of
from grimc.prune import prune_model
from grimc.transforms.bcr_detect import BcrDetect, DetectOptions
from tests.conftest import run_tool


def _graph(nodes: list[onnx.NodeProto], weights: list[str]) -> onnx.GraphProto:
    import numpy as np

    inits = [numpy_helper.from_array(np.ones((4, 4), np.float32), w) for w in weights]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    return helper.make_graph(nodes, "g", [x], [y], inits)


def test_layer_names_sanitized_unique_with_fallbacks() -> None:
    graph = _graph(
        [
            helper.make_node("MatMul", ["x", "w.a"], ["a"], name="features/0/fc"),
            helper.make_node("MatMul", ["a", "w.b"], ["b"]),  # unnamed: its weight
            helper.make_node("Relu", ["b"], ["c"]),  # unnamed, no weight
            helper.make_node("MatMul", ["c", "w.c"], ["d"], name="features/0/fc"),  # again
            helper.make_node("Relu", ["d"], ["y"], name="int"),  # a C keyword
        ],
        ["w.a", "w.b", "w.c"],
    )
    assert layer_names(graph) == ["features_0_fc", "w_b", "relu_2", "features_0_fc_1", "int_"]


def test_frontend_tags_ops_that_use_weights() -> None:
    module = import_model(zoo.small_cnn())
    tagged = {layer_of(op): op.name for op in module.walk() if LAYER_ATTR in op.attributes}
    assert tagged["conv_0"] == "graph.conv" and tagged["gemm_0"] == "graph.gemm"
    assert all(op.name != "graph.weight" for op in module.walk() if layer_of(op))


def _pruned_small_cnn() -> onnx.ModelProto:
    return prune_model(zoo.small_cnn(), block=(8, 16), rate=4.0, min_weights=0).model


def test_inspect_prune_and_profile_use_the_same_layer_names() -> None:
    model = _pruned_small_cnn()
    pruned = {r.name for r in prune_model(zoo.small_cnn(), min_weights=0).layers}
    reports = inspect(model, BcrDetect())
    inspected = {r.layer for r in reports}
    assert inspected == pruned  # conv_2, not the weight key conv_2_w_bn
    sparse = {r.layer for r in reports if r.kernel == "bcr"}
    assert sparse
    gen = compile_model(model, target="host")
    labels = {k.label for k in gen.kernels if k.source_op.startswith("bcr.")}
    assert labels == sparse


def test_one_threshold_for_too_small_layers() -> None:
    assert DetectOptions().min_weights == MIN_SPARSE_WEIGHTS
    assert BcrDetect().min_weights == MIN_SPARSE_WEIGHTS
    helptext = " ".join(run_tool(["grimc", "inspect", "--help"]).stdout.split())
    assert f"(default {MIN_SPARSE_WEIGHTS})" in helptext
