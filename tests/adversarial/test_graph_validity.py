"""Graphs onnxruntime refuses, and graphs whose folding would make NaN weights,
are refused with one line (issue 13 items 8, 9, 12)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Block, Region

from grimc.dialects import graph as g
from grimc.driver import compile_model, optimize
from grimc.errors import GrimcError
from grimc.frontend import FrontendError, import_onnx
from grimc.weights import WeightStore, attach
from tests.frontend.helpers import model, node, rand


def refused(source: onnx.ModelProto) -> str:
    with pytest.raises(FrontendError) as info:
        import_onnx(source)
    message = str(info.value)
    assert "\n" not in message
    return message


def ort_refuses(source: onnx.ModelProto) -> None:
    """The reference runtime refuses the model as well (so grimc is right to)."""
    with pytest.raises(Exception):  # noqa: B017, PT011 - ORT raises its own exception types
        sess = ort.InferenceSession(source.SerializeToString(), providers=["CPUExecutionProvider"])
        sess.run(
            None,
            {
                i.name: rand(*[d.dim_value for d in i.type.tensor_type.shape.dim])
                for i in source.graph.input
            },
        )


# --------------------------------------------------------------------------
# item 9: graph validity


def test_tensor_produced_twice() -> None:
    source = model(
        [node("Relu", ["x"], ["t"]), node("Sigmoid", ["x"], ["t"], name="again")],
        {"x": [2, 3]},
        ["t"],
    )
    ort_refuses(source)
    assert refused(source) == (
        "model: node 'again' (Sigmoid): output 't' is already defined "
        "(a tensor may be produced only once)"
    )


def test_node_overwrites_a_graph_input() -> None:
    source = model([node("Relu", ["x"], ["x"], name="self")], {"x": [2, 3]}, ["x"])
    assert "output 'x' is already defined" in refused(source)


def test_duplicate_input_names() -> None:
    graph = helper.make_graph(
        [node("Add", ["x", "x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]) for _ in range(2)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    source = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    ort_refuses(source)
    assert refused(source) == "model: graph input 'x' is declared twice"


def test_opset_99() -> None:
    source = model([node("Relu", ["x"], ["y"])], {"x": [2]}, ["y"], opset=99)
    ort_refuses(source)
    assert refused(source).startswith("model: ai.onnx opset 99 is newer than this grimc knows")


def test_ir_version_99() -> None:
    source = model([node("Relu", ["x"], ["y"])], {"x": [2]}, ["y"], ir_version=99)
    ort_refuses(source)
    assert refused(source).startswith("model: IR version 99 is newer than this grimc reads")


# --------------------------------------------------------------------------
# item 12: pools whose windows can lie wholly in the padding


@pytest.mark.parametrize("op", ["AveragePool", "MaxPool"])
@pytest.mark.parametrize("pads", [[2, 0, 0, 0], [0, 0, 0, 3]])
def test_pool_pads_at_least_the_kernel(op: str, pads: list[int]) -> None:
    source = model(
        [node(op, ["x"], ["y"], kernel_shape=[2, 2], pads=pads, name="p")],
        {"x": [1, 1, 4, 4]},
        ["y"],
    )
    ort_refuses(source)
    assert (
        refused(source)
        == f"model: node 'p' ({op}): pads {pads} must be smaller than kernel_shape [2, 2]"
    )


def test_pool_pads_below_the_kernel_still_import() -> None:
    source = model(
        [node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[2, 2, 2, 2])],
        {"x": [1, 1, 4, 4]},
        ["y"],
    )
    import_onnx(source)


# --------------------------------------------------------------------------
# item 8: non-finite weights made by folding


def conv_bn(var: np.ndarray, epsilon: float = 1e-5) -> onnx.ModelProto:
    c = var.size
    return model(
        [
            node("Conv", ["x", "w"], ["c"]),
            node("BatchNormalization", ["c", "s", "b", "m", "v"], ["y"], epsilon=epsilon),
        ],
        {"x": [1, 2, 5, 5]},
        ["y"],
        {
            "w": rand(c, 2, 3, 3),
            "s": rand(c, seed=1),
            "b": rand(c, seed=2),
            "m": rand(c, seed=3),
            "v": var,
        },
    )


@pytest.mark.parametrize(
    ("var", "epsilon", "shown"),
    [
        (np.array([1.0, -0.5, 2.0], np.float32), 1e-5, "-0.49999 at channel 1"),
        (np.array([1.0, 1.0, 0.0], np.float32), 0.0, "0 at channel 2"),
    ],
)
def test_bn_fold_with_nonpositive_variance_is_refused(
    var: np.ndarray, epsilon: float, shown: str
) -> None:
    with pytest.raises(GrimcError) as info:
        compile_model(conv_bn(var, epsilon))
    message = str(info.value)
    assert "\n" not in message and info.value.exit_code == 2
    assert message.startswith("graph.batch_norm on weight 'v': variance + epsilon is ")
    assert shown in message


def test_bn_fold_overflowing_float32_is_refused() -> None:
    """A finite float64 scale whose float32 product overflows is caught after folding."""
    var = np.array([1e-38, 1.0, 1.0], np.float32)
    source = conv_bn(var, epsilon=0.0)
    source.graph.initializer[1].CopyFrom(
        numpy_helper.from_array(np.array([3e38, 1, 1], np.float32), "s")
    )
    with pytest.raises(GrimcError, match="gives non-finite values in 'w'"):
        compile_model(source)


def constant_module(
    build: Callable[..., g.GraphOp], *arrays: np.ndarray
) -> tuple[ModuleOp, g.GraphOp]:
    """`main(x) = x + build(weights...)`: the op on weights is what folding sees."""
    store = WeightStore()
    weights = [g.WeightOp(store.add(f"w{i}", a), a.shape) for i, a in enumerate(arrays)]
    op = build(*(w.result for w in weights))
    block = Block(arg_types=[op.results[0].type])
    block.add_ops([*weights, op, add := g.AddOp(block.args[0], op.results[0])])
    block.add_op(func.ReturnOp(add.y))
    module = ModuleOp([func.FuncOp("main", ([add.y.type], [add.y.type]), Region(block))])
    attach(module, store)
    module.verify()
    return module, op


def test_constant_fold_overflow_is_refused() -> None:
    big = np.full((4,), 3e38, np.float32)
    module, _ = constant_module(g.AddOp, big, big)
    with pytest.raises(GrimcError) as info:
        optimize(module, passes=["graph-constant-fold"])
    assert (
        str(info.value)
        == "graph.add on weight 'w0': folding it gives non-finite values (NaN or Inf)"
    )
