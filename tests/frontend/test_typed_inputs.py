"""int64/int32/bool graph inputs fed at run time beyond Gather indices: a sample rate
compared for an If, a bool flag as a Where condition, an integer cast to float32.
Converted exactly on entry (integers |v| < 2^24, bools 0/1), checked there
(GRIMC_E_RANGE), and compared with onnxruntime on host and aarch64."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from grimc.artifacts import onnxruntime_reference
from grimc.driver import build_model, compile_model
from grimc.errors import GrimcError
from grimc.runner import RunError
from tests.frontend.helpers import model, node, rand
from tests.frontend.test_errors import error_of

X = [1, 4]


def _typed(onnx_model: onnx.ModelProto, name: str, elem: int, dims: list[int]) -> onnx.ModelProto:
    onnx_model.graph.input.append(helper.make_tensor_value_info(name, elem, dims))
    return onnx_model


def sample_rate_model(elem: int = TensorProto.INT64) -> onnx.ModelProto:
    """y = x * 2 if sr == 16000 else x * 3 + float(sr) / 1000: a run-time If on an integer
    control input, and the input cast to float32 as data."""
    then = helper.make_graph([node("Mul", ["x", "c2"], ["t"])], "then", [],
                             [helper.make_tensor_value_info("t", TensorProto.FLOAT, X)], [])
    then.initializer.append(helper.make_tensor("c2", TensorProto.FLOAT, [], [2.0]))
    other = helper.make_graph([node("Mul", ["x", "c3"], ["e0"]), node("Add", ["e0", "khz"], ["e"])],
                              "else", [], [helper.make_tensor_value_info("e", TensorProto.FLOAT, X)], [])
    other.initializer.append(helper.make_tensor("c3", TensorProto.FLOAT, [], [3.0]))
    np_int = helper.tensor_dtype_to_np_dtype(elem)
    nodes = [
        node("Equal", ["sr", "rate"], ["is16k"]),
        node("Squeeze", ["is16k"], ["cond"]),
        node("Cast", ["sr"], ["srf"], to=TensorProto.FLOAT),
        node("Div", ["srf", "thousand"], ["khz"]),
        node("If", ["cond"], ["y"], then_branch=then, else_branch=other),
    ]
    inits = {"rate": np.array([16000], np_int), "thousand": np.array([1000.0], np.float32)}
    onnx_model = model(nodes, {"x": X}, ["y"], inits)
    onnx_model.graph.output[0].CopyFrom(helper.make_tensor_value_info("y", TensorProto.FLOAT, X))
    return _typed(onnx_model, "sr", elem, [1])


def flag_model() -> onnx.ModelProto:
    """y = where(flag, x, -x) with a bool [1] input, and Not(flag) as a second condition."""
    nodes = [
        node("Neg", ["x"], ["nx"]),
        node("Where", ["flag", "x", "nx"], ["a"]),
        node("Not", ["flag"], ["off"]),
        node("Where", ["off", "a", "x"], ["y"]),
    ]
    return _typed(model(nodes, {"x": X}, ["y"]), "flag", TensorProto.BOOL, [1])


@pytest.mark.parametrize("target", ["host", "aarch64"])
def test_integer_and_bool_control_inputs_match_onnxruntime(target: str, tmp_path: Path) -> None:
    for name, onnx_model, values in (
        ("sr64", sample_rate_model(), [np.array([16000], np.int64), np.array([8000], np.int64)]),
        ("sr32", sample_rate_model(TensorProto.INT32), [np.array([16000], np.int32),
                                                        np.array([-44100], np.int32)]),
        ("flag", flag_model(), [np.array([True]), np.array([False])]),
    ):
        with build_model(onnx_model, tmp_path / name, target=target) as compiled:
            for v in values:
                x = rand(*X)
                (got,) = compiled.run([x, v])
                (want,) = onnxruntime_reference(onnx_model.SerializeToString(), [x, v])
                np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=f"{name} {v}")


def test_values_beyond_float32_exactness_are_refused(tmp_path: Path) -> None:
    """2^24 + 1 has no float32: the run fails on entry with one line, outputs untouched."""
    with build_model(sample_rate_model(), tmp_path, target="host") as compiled:
        with pytest.raises(RunError) as info:
            compiled.run([rand(*X), np.array([(1 << 24) + 1], np.int64)])
        assert str(info.value) == "input 'sr': value 16777217 is out of range [-16777216, 16777216)"
        with pytest.raises(RunError, match="input 'sr': expected dtype int64, got float32"):
            compiled.run([rand(*X), np.array([16000], np.float32)])


def test_generated_api_of_a_bool_input() -> None:
    gen = compile_model(flag_model(), prefix="net")
    assert [(d.name, d.dtype, d.bounds, d.indices) for d in gen.inputs] == [
        ("x", "float32", None, False), ("flag", "bool", (0, 2), False),
    ]
    assert "const void *const *inputs" in gen.header


def test_integer_arithmetic_is_still_refused() -> None:
    """Div on int64 truncates: computing it in float32 would differ, so it stays an error."""
    onnx_model = _typed(model([node("Div", ["sr", "k"], ["q"]), node("Cast", ["q"], ["qf"], to=1),
                               node("Mul", ["x", "qf"], ["y"])], {"x": X}, ["y"],
                              {"k": np.array([3], np.int64)}), "sr", TensorProto.INT64, [1])
    assert error_of(onnx_model, name="m") == (
        "m: input 'sr' has dtype int64; grimc computes in float32 only: "
        "give it a compile-time value with --input-value sr=VALUE"
    )


def test_opencl_refuses_typed_inputs_in_one_line() -> None:
    with pytest.raises(GrimcError) as info:
        compile_model(flag_model(), target="opencl")
    assert str(info.value).startswith("input 'flag' is bool: --target opencl takes float32 inputs")
