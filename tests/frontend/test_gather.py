"""Gather of run-time data by constant indices: strided slices joined by a concat."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from grimc.driver import build_model
from grimc.frontend import import_onnx
from tests.frontend.helpers import model, node, op_names, prop, rand, result_shapes
from tests.frontend.test_errors import error_of

XS = [4, 6, 5]


def gather_model(indices: np.ndarray, axis: int) -> onnx.ModelProto:
    """y = Gather(Relu(x), indices): the data is an activation, the indices constant."""
    nodes = [node("Relu", ["x"], ["r"]), node("Gather", ["r", "ids"], ["y"], axis=axis)]
    return model(nodes, {"x": XS}, ["y"], {"ids": indices})


CASES = {
    "reorder": (np.array([2, 0, 1], np.int64), 1),
    "reverse_negative": (np.array([-1, -2, -3, -4], np.int64), 0),
    "strided_2d": (np.array([[0, 2], [4, 1]], np.int64), -1),
    "repeated_int32": (np.array([3, 3, 0, 3], np.int32), 1),
    "scalar": (np.array(4, np.int64), 1),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_gather_shapes_and_ops(case: str) -> None:
    indices, axis = CASES[case]
    module = import_onnx(gather_model(indices, axis))
    a = axis % len(XS)
    expected = (*XS[:a], *indices.shape, *XS[a + 1 :])
    assert result_shapes(module) == [expected]
    assert "graph.slice" in op_names(module)


def test_runs_of_evenly_spaced_indices_are_one_slice() -> None:
    module = import_onnx(gather_model(np.array([5, 3, 1, 0], np.int64), 1))
    ops = op_names(module)
    assert ops.count("graph.slice") == 2 and ops.count("graph.concat") == 1
    first = next(op for op in module.walk() if op.name == "graph.slice")
    assert prop(first, "starts") == (0, 5, 0) and prop(first, "steps") == (1, -2, 1)


def test_all_indices_in_order_is_no_op() -> None:
    assert op_names(import_onnx(gather_model(np.arange(6), 1))) == ["graph.relu"]


@pytest.mark.parametrize(
    ("indices", "message"),
    [
        (np.array([0, 6]), "node #1 (Gather): index 6 is out of range for axis 1 of size 6"),
        (np.zeros(0, np.int64), "node #1 (Gather): empty indices"),
    ],
)
def test_bad_indices(indices: np.ndarray, message: str) -> None:
    assert message in error_of(gather_model(indices, 1))


def test_run_time_indices_need_a_value() -> None:
    """Indices from an int64 graph input: --input-value makes them constants."""
    onnx_model = gather_model(np.array([0]), 1)
    del onnx_model.graph.initializer[:]
    onnx_model.graph.input.append(onnx.helper.make_tensor_value_info("ids", 7, [2]))
    assert "--input-value ids=VALUE" in error_of(onnx_model)
    module = import_onnx(onnx_model, input_values={"ids": np.array([5, 0])})
    assert result_shapes(module) == [(4, 2, 5)]


@pytest.mark.parametrize(
    ("target", "cases"), [("host", sorted(CASES)), ("aarch64", ["strided_2d", "repeated_int32"])]
)
def test_gather_matches_numpy_and_onnxruntime(
    target: str, cases: list[str], tmp_path: Path
) -> None:
    x = rand(*XS)
    for case in cases:
        indices, axis = CASES[case]
        onnx_model = gather_model(indices, axis)
        sess = ort.InferenceSession(
            onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        expected = sess.run(None, {"x": x})[0]
        np.testing.assert_array_equal(expected, np.take(np.maximum(x, 0), indices, axis=axis))
        with build_model(onnx_model, tmp_path / case, target=target) as compiled:
            (got,) = compiled.run([x])
        np.testing.assert_array_equal(got, expected)
