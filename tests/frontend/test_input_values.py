"""Compile-time input values (`--input-value`, CompileOptions.input_values) and
If with a constant condition, inlined at import."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from grimc.artifacts import onnxruntime_reference
from grimc.driver import build_model, import_model
from grimc.errors import GrimcError
from grimc.frontend import import_onnx
from grimc.options import CompileOptions, InputValue, parse_value_option, parse_value_options
from tests.frontend.helpers import (
    arg_shapes,
    main,
    model,
    node,
    op_names,
    result_shapes,
    weight_of,
)
from tests.frontend.test_errors import error_of

XS = [2, 3]


def branch(op_type: str, source: str = "x", out: str = "b") -> onnx.GraphProto:
    """A one-node branch reading `source` from the enclosing graph."""
    info = helper.make_tensor_value_info(out, TensorProto.FLOAT, XS)
    return helper.make_graph([node(op_type, [source], [out])], f"{op_type}_branch", [], [info])


def rate_model(
    rate_type: int = TensorProto.INT64, rate_dims: list[int | str] | None = None
) -> onnx.ModelProto:
    """y = If(sr == 16000) then Relu(x) else Neg(x), like a VAD's sample-rate switch."""
    nodes = [
        node("Equal", ["sr", "wide"], ["c"]),
        node("If", ["c"], ["y"], then_branch=branch("Relu"), else_branch=branch("Neg")),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, XS),
            helper.make_tensor_value_info("sr", rate_type, rate_dims or []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, XS)],
        [helper.make_tensor("wide", rate_type, [], [16000])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize(("rate", "op"), [(16000, "graph.relu"), (8000, "graph.neg")])
def test_specialized_rate_selects_one_branch(rate: int, op: str) -> None:
    module = import_onnx(rate_model(), input_values={"sr": np.array(rate)})
    assert op_names(module) == [op]
    assert arg_shapes(module) == [tuple(XS)]  # sr is no longer an input
    assert [a.data["graph.name"].data for a in main(module).arg_attrs] == ["x"]


def test_compile_options_reach_the_importer() -> None:
    opts = CompileOptions(input_values={"sr": 8000})
    module = import_model(rate_model(), opts.input_shapes, opts.input_values)
    assert op_names(module) == ["graph.neg"]


@pytest.mark.parametrize("rate_type", [TensorProto.INT32, TensorProto.INT64])
def test_value_takes_the_declared_integer_type(rate_type: int) -> None:
    module = import_onnx(rate_model(rate_type), input_values={"sr": np.array(16000.0)})
    assert op_names(module) == ["graph.relu"]


def test_bool_condition_input_given_directly() -> None:
    onnx_model = rate_model(TensorProto.BOOL, [1])
    del onnx_model.graph.node[0], onnx_model.graph.initializer[0]
    onnx_model.graph.node[0].input[0] = "sr"
    for given, op in ((True, "graph.relu"), (0, "graph.neg")):
        assert op_names(import_onnx(onnx_model, input_values={"sr": np.array(given)})) == [op]


def test_float_input_becomes_a_folded_constant() -> None:
    """A specialized float input is a weight like any initializer."""
    onnx_model = model([node("Mul", ["x", "gain"], ["y"])], {"x": XS, "gain": [3]}, ["y"])
    module = import_onnx(onnx_model, input_values={"gain": np.array([1.0, 2.0, 4.0])})
    assert arg_shapes(module) == [tuple(XS)]
    (mul,) = [op for op in main(module).body.ops if op.name == "graph.mul"]
    np.testing.assert_array_equal(weight_of(module, mul.operands[1]), [1.0, 2.0, 4.0])


def test_value_replaces_an_input_default() -> None:
    """An input that also has an initializer is a default a feed may replace."""
    onnx_model = model(
        [node("Mul", ["x", "gain"], ["y"])], {"x": XS, "gain": [3]}, ["y"],
        {"gain": np.ones(3, np.float32)},
    )  # fmt: skip
    module = import_onnx(onnx_model, input_values={"gain": np.array([1.0, 2.0, 4.0])})
    (mul,) = [op for op in main(module).body.ops if op.name == "graph.mul"]
    np.testing.assert_array_equal(weight_of(module, mul.operands[1]), [1.0, 2.0, 4.0])
    assert "unknown input 'w'" in error_of(onnx_model, input_values={"w": np.array(1)})


def test_dynamic_input_takes_the_value_shape() -> None:
    """gain [n] given 3 values is a [3] constant."""
    onnx_model = model([node("Mul", ["x", "gain"], ["y"])], {"x": XS, "gain": ["n"]}, ["y"])
    module = import_onnx(onnx_model, input_values={"gain": np.array([1.0, 2.0, 4.0])})
    assert arg_shapes(module) == [tuple(XS)] and result_shapes(module) == [tuple(XS)]


def test_nested_if_and_branch_only_tensors_are_converted() -> None:
    """The outer If's chosen branch holds another If on the same control input;
    `sq` (Sqrt of x) is read only inside the branches, so it must stay alive."""
    inner = helper.make_graph(
        [
            node(
                "If", ["c"], ["b"], then_branch=branch("Relu", "sq", "t"), else_branch=branch("Neg")
            )
        ],
        "inner",
        [],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, XS)],
    )
    graph = helper.make_graph(
        [
            node("Abs", ["x"], ["a"]),
            node("Sqrt", ["a"], ["sq"]),
            node("If", ["c"], ["y"], then_branch=inner, else_branch=branch("Neg")),
        ],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, XS),
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, XS)],
    )
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(onnx_model)
    module = import_onnx(onnx_model, input_values={"c": np.array(True)})
    assert op_names(module) == ["graph.abs", "graph.sqrt", "graph.relu"]
    # Abs and Sqrt are converted before the branch is chosen; graph-dce drops them.
    other = op_names(import_onnx(onnx_model, input_values={"c": np.array(False)}))
    assert other[-1] == "graph.neg" and "graph.relu" not in other


def test_branch_initializers_and_outputs_match_onnxruntime() -> None:
    """A branch with its own initializer; the inlined result equals onnxruntime's."""
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [3], [0.5, -2.0, 3.0])
    out = helper.make_tensor_value_info("b", TensorProto.FLOAT, XS)
    then_g = helper.make_graph([node("Mul", ["x", "scale"], ["b"])], "then", [], [out], [scale])
    onnx_model = rate_model()
    (then_attr,) = [a for a in onnx_model.graph.node[1].attribute if a.name == "then_branch"]
    then_attr.g.CopyFrom(then_g)
    x = np.random.default_rng(0).standard_normal(XS).astype(np.float32)
    (expected,) = onnxruntime_reference(
        onnx_model.SerializeToString(), [x], fixed={"sr": np.array(16000, np.int64)}
    )
    module = import_onnx(onnx_model, input_values={"sr": np.array(16000)})
    (mul,) = [op for op in main(module).body.ops if op.name == "graph.mul"]
    np.testing.assert_array_equal(x * weight_of(module, mul.operands[1]), expected)


# --------------------------------------------------------------------------
# errors


def test_unspecialized_control_input_is_read_at_run_time() -> None:
    """Without --input-value, sr stays an int64 input (compared at run time, both
    branches kept under the If); tests/frontend/test_typed_inputs.py runs such models.
    Arithmetic on it still names the option."""
    module = import_onnx(rate_model())
    assert 'graph.dtype = "int64"' in str(module)
    assert {"graph.equal", "graph.relu", "graph.neg"} <= set(op_names(module))
    onnx_model = rate_model()
    onnx_model.graph.node[0].op_type = "Add"
    assert error_of(onnx_model, name="vad") == (
        "vad: input 'sr' has dtype int64; grimc computes in float32 only: "
        "give it a compile-time value with --input-value sr=VALUE"
    )


def runtime_if_model(then: onnx.GraphProto, otherwise: onnx.GraphProto) -> onnx.ModelProto:
    """y = If(max(x) > 0): the condition is computed from float data at run time."""
    nodes = [
        node("ReduceMax", ["x"], ["m"], keepdims=1),
        node("Greater", ["m", "zero"], ["c"]),
        node("If", ["c"], ["y"], then_branch=then, else_branch=otherwise),
    ]
    onnx_model = model(nodes, {"x": XS}, ["y"], {"zero": np.array(0.0, np.float32)})
    onnx_model.graph.output[0].type.tensor_type.shape.dim.add().dim_value = XS[0]
    onnx_model.graph.output[0].type.tensor_type.shape.dim.add().dim_value = XS[1]
    return onnx_model


def constant_branch(values: list[float], out: str = "b") -> onnx.GraphProto:
    """A branch whose output is a Constant named like its sibling's (names may repeat)."""
    tensor = helper.make_tensor("k", TensorProto.FLOAT, XS, values)
    info = helper.make_tensor_value_info(out, TensorProto.FLOAT, XS)
    nodes = [node("Constant", [], ["k"], value=tensor), node("Add", ["x", "k"], [out])]
    return helper.make_graph(nodes, "constant_branch", [], [info])


@pytest.mark.parametrize(
    ("branches", "target"),
    [
        ((branch("Relu"), branch("Neg")), "host"),
        ((branch("Relu"), branch("Neg")), "aarch64"),
        ((constant_branch([1.0] * 6), constant_branch([-5.0] * 6)), "host"),
    ],
    ids=["ops", "ops_aarch64", "same_names"],
)
def test_runtime_condition_selects_with_where(
    branches: tuple[onnx.GraphProto, onnx.GraphProto], target: str, tmp_path
) -> None:
    """Both branches are compiled and graph.where keeps one: the result equals
    onnxruntime's whichever way the condition goes."""
    onnx_model = runtime_if_model(*branches)
    module = import_onnx(onnx_model)
    assert "graph.where" in op_names(module)
    x = np.random.default_rng(0).standard_normal(XS).astype(np.float32)
    with build_model(onnx_model, tmp_path, target=target) as compiled:
        for data in (np.abs(x), -np.abs(x)):  # then, else
            (want,) = onnxruntime_reference(onnx_model.SerializeToString(), [data])
            np.testing.assert_array_equal(compiled.run([data])[0], want)


def test_runtime_condition_with_differing_shapes_names_the_input() -> None:
    wide = helper.make_graph(
        [node("Concat", ["x", "x"], ["b"], axis=1)],
        "wide",
        [],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, [XS[0], 2 * XS[1]])],
    )
    onnx_model = runtime_if_model(branch("Relu"), wide)
    onnx_model.graph.output[0].type.tensor_type.shape.dim[1].dim_param = "w"
    assert error_of(onnx_model, name="m") == (
        "m: node #2 (If): output 'y' has shape [2, 3] in then_branch and [2, 6] in else_branch, "
        "so the run-time condition 'c' cannot select one; it depends on run-time input 'x': "
        "fix its value at compile time with --input-value x=VALUE"
    )


def test_errors_inside_a_branch_name_the_if() -> None:
    onnx_model = rate_model()
    (then_attr,) = [a for a in onnx_model.graph.node[1].attribute if a.name == "then_branch"]
    then_attr.g.node[0].op_type = "Sign"
    message = error_of(onnx_model, input_values={"sr": np.array(16000)}, name="m")
    assert message.startswith("m: node #1 (If) then_branch: node #0 (Sign): unsupported operator")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rate": 1}, "--input-value names unknown input 'rate'; inputs are: 'x', 'sr'"),
        ({"sr": 1.5}, "--input-value sr: the input is int64; give integers"),
        ({"sr": [1, 2]}, "--input-value sr: 2 value(s) given; the input's shape [] holds 1"),
        ({"x": True}, "--input-value x: the input is float; give numbers, not true/false"),
    ],
)
def test_bad_values(values: dict[str, object], message: str) -> None:
    arrays = {k: np.asarray(v) for k, v in values.items()}
    assert error_of(rate_model(), input_values=arrays, name="m") == f"m: {message}"


def test_value_out_of_int32_range() -> None:
    message = error_of(rate_model(TensorProto.INT32), input_values={"sr": np.array(2**40)})
    assert message.endswith("--input-value sr: out of the range of int32 [-2147483648, 2147483647]")


def test_value_for_a_string_input() -> None:
    onnx_model = rate_model()
    onnx_model.graph.input[1].type.tensor_type.elem_type = TensorProto.STRING
    assert error_of(onnx_model, input_values={"sr": np.array(1)}, name="m") == (
        "m: --input-value sr: the input has dtype string, which grimc cannot specialize"
    )


def test_wrong_rank_for_a_dynamic_input() -> None:
    message = error_of(rate_model(rate_dims=["n"]), input_values={"sr": np.array([[1]])})
    assert message.endswith("--input-value sr: shape [1, 1] does not fit the input's [n]")


def test_ir_modules_take_no_values() -> None:
    module = import_onnx(rate_model(), input_values={"sr": np.array(1)})
    with pytest.raises(GrimcError, match="--input-value applies to ONNX models"):
        import_model(module, input_values={"x": 1.0})


# --------------------------------------------------------------------------
# option parsing and validation


def test_parse_value_options() -> None:
    assert parse_value_option("sr=16000") == InputValue("sr", (16000,), ())
    assert parse_value_option("ids=1, 2,3") == InputValue("ids", (1, 2, 3), (3,))
    assert parse_value_option("on=TRUE") == InputValue("on", (True,), ())
    assert parse_value_option("gain=2.5e-1") == InputValue("gain", (0.25,), ())
    assert parse_value_option("a=b=1").name == "a=b"  # the last = splits


@pytest.mark.parametrize("text", ["sr", "sr=", "=1", "sr=abc", "sr=1,,2", "sr=nan", "sr=inf"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(GrimcError, match=r"--input-value .*: expected NAME=VALUE"):
        parse_value_option(text)


def test_a_name_given_twice() -> None:
    with pytest.raises(GrimcError, match="--input-value sr: given more than once"):
        parse_value_options(["sr=1", "sr=2"])


def test_compile_options_normalize_and_compare() -> None:
    a = CompileOptions(input_values={"sr": np.int64(16000), "m": np.ones((1, 2))})
    b = CompileOptions(input_values=(InputValue("sr", (16000,), ()), ("m", [[1.0, 1.0]])))
    assert a == b and hash(a) == hash(b)
    values = a.values
    assert values is not None and values["m"].shape == (1, 2) and values["sr"] == 16000


@pytest.mark.parametrize("bad", ["abc", float("nan"), [], None, {"a": 1}])
def test_compile_options_reject(bad: object) -> None:
    with pytest.raises(GrimcError, match="input value sr"):
        CompileOptions(input_values={"sr": bad})
