"""Constant folding at import: constants and shape arithmetic never reach the IR."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from grimc.frontend import FrontendError, import_onnx
from tests.frontend.helpers import (
    model,
    node,
    op_names,
    rand,
    result_shapes,
    the,
    weight_of,
    weights,
)

X4 = {"x": [1, 8, 2, 2]}


def test_constant_becomes_a_weight() -> None:
    value = rand(8, 1, 1)
    nodes = [
        node("Constant", [], ["c"], value=onnx.numpy_helper.from_array(value)),
        node("Add", ["x", "c"], ["y"]),
    ]
    m = import_onnx(model(nodes, X4, ["y"]))
    np.testing.assert_array_equal(weight_of(m, the(m, "graph.add").rhs), value)


@pytest.mark.parametrize(
    ("attr", "value", "expected"),
    [
        ("value_float", 2.5, np.float32(2.5)),
        ("value_floats", [1.0, 2.0], np.array([1.0, 2.0], np.float32)),
    ],
)
def test_constant_scalar_attributes(attr: str, value: object, expected: np.ndarray) -> None:
    nodes = [node("Constant", [], ["c"], **{attr: value}), node("Mul", ["x", "c"], ["y"])]
    m = import_onnx(model(nodes, {"x": [3, 2]}, ["y"]))
    np.testing.assert_array_equal(weight_of(m, the(m, "graph.mul").rhs), expected)


def test_constant_of_shape() -> None:
    nodes = [
        node("Constant", [], ["shape"], value_ints=[8, 1, 1]),
        node(
            "ConstantOfShape",
            ["shape"],
            ["c"],
            value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.5]),
        ),
        node("Mul", ["x", "c"], ["y"]),
    ]
    m = import_onnx(model(nodes, X4, ["y"]))
    np.testing.assert_array_equal(
        weight_of(m, the(m, "graph.mul").rhs), np.full((8, 1, 1), 0.5, np.float32)
    )
    assert len(weights(m)) == 1


def test_torch_flatten_chain_folds_to_one_reshape() -> None:
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape, as torch.flatten exports."""
    nodes = [
        node("Relu", ["x"], ["r"]),
        node("Shape", ["r"], ["shape"]),
        node("Constant", [], ["zero"], value=onnx.numpy_helper.from_array(np.array(0, np.int64))),
        node("Gather", ["shape", "zero"], ["batch"], axis=0),
        node("Constant", [], ["axes"], value_ints=[0]),
        node("Unsqueeze", ["batch", "axes"], ["batch1"]),
        node("Constant", [], ["minus1"], value_ints=[-1]),
        node("Concat", ["batch1", "minus1"], ["target"], axis=0),
        node("Reshape", ["r", "target"], ["y"]),
    ]
    m = import_onnx(model(nodes, X4, ["y"]))
    assert op_names(m) == ["graph.relu", "graph.reshape"]
    assert result_shapes(m) == [(1, 32)]
    assert len(weights(m)) == 0


def test_shape_start_end_and_size_fold() -> None:
    nodes = [
        node("Shape", ["x"], ["hw"], start=-2),
        node("Size", ["x"], ["n"]),
        node("Unsqueeze", ["n", "zero"], ["n1"]),
        node("Concat", ["n1", "hw"], ["target"], axis=0),
        node("Cast", ["target"], ["target64"], to=TensorProto.INT64),
        node("Div", ["target64", "div"], ["scaled"]),
        node("Reshape", ["x", "scaled"], ["y"]),
    ]
    inits = {"zero": np.array([0], np.int64), "div": np.array([4, 1, 1], np.int64)}
    m = import_onnx(model(nodes, X4, ["y"], inits))
    assert result_shapes(m) == [(8, 2, 2)]


def test_transposed_initializer_is_folded_into_the_weight() -> None:
    w = rand(4, 6)
    nodes = [node("Transpose", ["w"], ["wt"]), node("MatMul", ["x", "wt"], ["y"])]
    m = import_onnx(model(nodes, {"x": [2, 6]}, ["y"], {"w": w}))
    np.testing.assert_array_equal(weight_of(m, the(m, "graph.matmul").b), w.T)
    assert list(weights(m)) == ["wt"]


def test_shared_constant_is_one_weight() -> None:
    nodes = [node("Add", ["x", "c"], ["a"]), node("Mul", ["a", "c"], ["y"])]
    m = import_onnx(model(nodes, {"x": [3]}, ["y"], {"c": rand(3)}))
    assert the(m, "graph.add").rhs is the(m, "graph.mul").rhs
    assert len(weights(m)) == 1


def test_constant_graph_output_is_a_weight() -> None:
    m = import_onnx(model([node("Relu", ["x"], ["y"])], {"x": [2]}, ["y", "c"], {"c": rand(2)}))
    assert result_shapes(m) == [(2,), (2,)]


def test_random_ops_are_not_folded() -> None:
    nodes = [node("RandomNormal", [], ["r"], shape=[2]), node("Add", ["x", "r"], ["y"])]
    with pytest.raises(FrontendError, match=r"\(RandomNormal\): unsupported operator"):
        import_onnx(model(nodes, {"x": [2]}, ["y"]))


def test_dead_nodes_are_ignored() -> None:
    nodes = [node("Relu", ["x"], ["y"]), node("Erf", ["x"], ["unused"])]
    assert op_names(import_onnx(model(nodes, {"x": [2]}, ["y"]))) == ["graph.relu"]


def _sparse(name: str) -> onnx.SparseTensorProto:
    values = helper.make_tensor(name, TensorProto.FLOAT, [2], [1.0, 2.0])
    return helper.make_sparse_tensor(
        values, helper.make_tensor("i", TensorProto.INT64, [2], [1, 3]), [4]
    )


def test_sparse_constant_and_sparse_initializer_are_densified() -> None:
    dense = np.array([0, 1, 0, 2], np.float32)
    nodes = [node("Constant", [], ["c"], sparse_value=_sparse("v")), node("Add", ["x", "c"], ["y"])]
    m = import_onnx(model(nodes, {"x": [4]}, ["y"]))
    np.testing.assert_array_equal(weight_of(m, the(m, "graph.add").rhs), dense)

    onnx_model = model([node("Mul", ["x", "s"], ["y"])], {"x": [4]}, ["y"])
    onnx_model.graph.sparse_initializer.append(_sparse("s"))
    m = import_onnx(onnx_model)
    np.testing.assert_array_equal(weight_of(m, the(m, "graph.mul").rhs), dense)
