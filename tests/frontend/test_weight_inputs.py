"""Weights given as graph inputs.

An initializer that is also listed as a graph input (every IR < 4 model, and
some exporters still do it) is a constant: grimc compiles it in and the model
takes only the activations. A weight that is a graph input *only* changes at
run time; Conv, ConvTranspose and RNN/GRU/LSTM compile their weights into
packed (possibly BCR) kernels, so they refuse it in one line, naming the node
and the input, exit code 2 from the command line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from grimc.artifacts import onnxruntime_reference
from grimc.driver import build_model
from tests.conftest import run_tool

rng = np.random.default_rng(5)
CONV_W = rng.standard_normal((4, 3, 3, 3)).astype(np.float32) / 5
LSTM_W = rng.standard_normal((1, 16, 3)).astype(np.float32) / 2
LSTM_R = rng.standard_normal((1, 16, 4)).astype(np.float32) / 2

NODES = {
    "Conv": (helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1]), (1, 3, 6, 5),
             {"w": CONV_W}),
    "LSTM": (helper.make_node("LSTM", ["x", "w", "r"], ["y"], hidden_size=4), (5, 1, 3),
             {"w": LSTM_W, "r": LSTM_R}),
    "ConvTranspose": (helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2]),
                      (1, 4, 5, 5), {"w": CONV_W}),
}  # fmt: skip


def weights_model(op: str, ir_version: int, initialized: bool) -> onnx.ModelProto:
    """`op` with its weights listed as graph inputs, with or without initializers."""
    node, x_shape, weights = NODES[op]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)]
    inputs += [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, w.shape) for n, w in weights.items()
    ]
    inits = [numpy_helper.from_array(w, n) for n, w in weights.items()] if initialized else []
    graph = helper.make_graph(
        [node], op, inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = ir_version
    return model


@pytest.mark.parametrize("ir_version", [3, 7])
@pytest.mark.parametrize("op", sorted(NODES))
def test_initializer_listed_as_input_is_a_constant(
    op: str, ir_version: int, tmp_path: Path
) -> None:
    model = weights_model(op, ir_version, initialized=True)
    x = rng.standard_normal(NODES[op][1]).astype(np.float32)
    # onnxruntime uses the initializer as the default
    (want,) = onnxruntime_reference(model.SerializeToString(), [x])
    with build_model(model, tmp_path) as compiled:
        (got,) = compiled.run([x])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op", sorted(NODES))
def test_run_time_weights_are_refused_in_one_line(op: str, tmp_path: Path) -> None:
    path = tmp_path / f"{op}.onnx"
    onnx.save(weights_model(op, 7, initialized=False), path)
    result = run_tool(["grimc", str(path), "-o", str(tmp_path / "m.c")])
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert (
        f"node #0 ({op}): input 1 'w' (weight" in result.stderr
        and "run-time weights are not supported) must be a constant" in result.stderr
    )
    assert not (tmp_path / "m.c").exists()
