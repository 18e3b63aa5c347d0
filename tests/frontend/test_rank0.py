"""Rank-0 (scalar) tensors: full reductions with keepdims=0, scalar constants,
scalar Gather results and scalar outputs keep shape [] end to end, as in
onnxruntime (a [1] in their place breaks the next node's shape check)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import grimc.backend as backend
from grimc.artifacts import onnxruntime_reference
from grimc.driver import build_model
from grimc.frontend import import_onnx
from tests.frontend.helpers import model, node, op_names, rand, result_shapes

XS = [3, 4]
F32 = np.float32


def scalar_model(
    nodes: list[onnx.NodeProto],
    outputs: list[str],
    initializers: dict[str, np.ndarray] | None = None,
    inputs: dict[str, list[int]] | None = None,
) -> onnx.ModelProto:
    """A model on x [3, 4] (and `inputs`), its outputs typed by ONNX shape inference."""
    m = model(nodes, inputs or {"x": XS}, outputs, initializers)
    inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True)
    del m.graph.output[:]
    m.graph.output.extend(inferred.graph.output)
    return m


def _then_else() -> dict[str, onnx.GraphProto]:
    out = [helper.make_tensor_value_info("b", TensorProto.FLOAT, XS)]
    return {
        "then_branch": helper.make_graph([node("Relu", ["x"], ["b"])], "t", [], out),
        "else_branch": helper.make_graph([node("Neg", ["x"], ["b"])], "e", [], out),
    }


CASES: dict[str, tuple[list[onnx.NodeProto], list[str], dict[str, np.ndarray]]] = {
    # max(x) * 2: a scalar activation times a scalar constant
    "reduce_times_scalar_constant": (
        [node("ReduceMax", ["x"], ["m"], keepdims=0), node("Mul", ["m", "two"], ["y"])],
        ["y"],
        {"two": np.array(2.0, F32)},
    ),
    # x / (max(x) - min(x)) and the scalar range itself as a second output
    "range_normalize": (
        [
            node("ReduceMax", ["x"], ["hi"], keepdims=0),
            node("ReduceMin", ["x"], ["lo"], keepdims=0),
            node("Sub", ["hi", "lo"], ["span"]),
            node("Div", ["x", "span"], ["y"]),
        ],
        ["y", "span"],
        {},
    ),
    # a run-time condition from a full reduction compared with a scalar constant
    "where_on_scalar_condition": (
        [
            node("ReduceMean", ["x"], ["m"], keepdims=0),
            node("Greater", ["m", "zero"], ["c"]),
            node("Where", ["c", "x", "m"], ["y"]),
        ],
        ["y"],
        {"zero": np.array(0.0, F32)},
    ),
    "if_on_scalar_condition": (
        [
            node("ReduceSum", ["x"], ["s"], keepdims=0),
            node("Less", ["s", "zero"], ["c"]),
            node("If", ["c"], ["y"], **_then_else()),
        ],
        ["y"],
        {"zero": np.array(0.0, F32)},
    ),
    # reducing a scalar again (default axes of a rank-0 tensor: the identity)
    "reduce_of_scalar": (
        [
            node("ReduceSum", ["x"], ["s"], keepdims=0),
            node("ReduceMax", ["s"], ["y"], keepdims=0),
        ],
        ["y"],
        {},
    ),
    # one element of a 1-D row: a scalar Gather result
    "gather_scalar_index": (
        [
            node("ReduceMax", ["x"], ["r"], axes=[0], keepdims=0),
            node("Gather", ["r", "i"], ["g"]),
            node("Abs", ["g"], ["a"]),
            node("Add", ["a", "one"], ["y"]),
        ],
        ["y"],
        {"i": np.array(2, np.int64), "one": np.array(1.0, F32)},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_scalar_shapes_match_onnx(case: str) -> None:
    nodes, outputs, inits = CASES[case]
    m = scalar_model(nodes, outputs, inits)
    want = [tuple(d.dim_value for d in o.type.tensor_type.shape.dim) for o in m.graph.output]
    assert result_shapes(import_onnx(m)) == want


def test_scalar_constant_is_a_rank0_weight() -> None:
    nodes, outputs, inits = CASES["reduce_times_scalar_constant"]
    module = import_onnx(scalar_model(nodes, outputs, inits))
    weights = [op for op in module.walk() if op.name == "graph.weight"]
    assert [tuple(op.result.type.get_shape()) for op in weights] == [()]


def test_reduce_of_scalar_is_identity() -> None:
    nodes, outputs, inits = CASES["reduce_of_scalar"]
    assert op_names(import_onnx(scalar_model(nodes, outputs, inits))) == ["graph.reduce"]


def _expected(m: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return onnxruntime_reference(m.SerializeToString(), [feeds[i.name] for i in m.graph.input])


@pytest.mark.parametrize(
    ("target", "cases"),
    [("host", sorted(CASES)), ("aarch64", ["range_normalize", "gather_scalar_index"])],
)
def test_scalar_models_match_onnxruntime(target: str, cases: list[str], tmp_path: Path) -> None:
    for case in cases:
        nodes, outputs, inits = CASES[case]
        m = scalar_model(nodes, outputs, inits)
        for seed in (0, 1):
            x = rand(*XS, seed=seed)
            expected = _expected(m, {"x": x})
            with build_model(m, tmp_path / f"{case}{seed}", target=target) as compiled:
                got = compiled.run([x])
            for g, e in zip(got, expected, strict=True):
                assert g.shape == e.shape, case
                np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5, err_msg=case)


def test_backend_returns_0d_arrays() -> None:
    """A scalar graph output is a 0-d float32 array, as onnxruntime returns it;
    a scalar graph input is fed as a 0-d array."""
    nodes = [
        node("ReduceSum", ["x"], ["s"], keepdims=0),
        node("Mul", ["s", "k"], ["y"]),
        node("Mul", ["x", "k"], ["z"]),
    ]
    m = scalar_model(nodes, ["y", "z"], inputs={"x": XS, "k": []})
    x, k = rand(*XS), np.array(0.5, F32)
    expected = _expected(m, {"x": x, "k": k})
    got = backend.run_model(m, [x, k])
    assert [g.shape for g in got] == [(), tuple(XS)] == [e.shape for e in expected]
    assert got[0].dtype == np.float32
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


def test_rank0_control_value_stays_rank0(tmp_path: Path) -> None:
    """A 0-d int64 control input given a value stays 0-d: scale = Cast(sr) / 16000
    times a full reduction is a scalar output, as onnxruntime computes it."""
    nodes = [
        node("Cast", ["sr"], ["srf"], to=TensorProto.FLOAT),
        node("Div", ["srf", "rate"], ["scale"]),
        node("ReduceSum", ["x"], ["s"], keepdims=0),
        node("Mul", ["s", "scale"], ["y"]),
    ]
    m = model(nodes, {"x": XS}, ["y"], {"rate": np.array(16000.0, F32)})
    m.graph.input.append(helper.make_tensor_value_info("sr", TensorProto.INT64, []))
    x, sr = rand(*XS), np.array(8000, np.int64)
    (expected,) = _expected(m, {"x": x, "sr": sr})
    with build_model(m, tmp_path, input_values={"sr": sr}) as compiled:
        (got,) = compiled.run([x])
    assert got.shape == expected.shape == ()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
