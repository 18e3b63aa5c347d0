"""Every kind of bad input gets one FrontendError line naming what and where."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from grimc.errors import GrimcError
from grimc.frontend import FrontendError, import_onnx
from grimc.frontend.context import supported_ops
from tests.frontend.helpers import arg_shapes, main, model, node, rand, result_shapes, weights


def relu_model(dims: list[int | str | None] | None = None) -> onnx.ModelProto:
    return model([node("Relu", ["x"], ["y"])], {"x": dims if dims is not None else [1, 3]}, ["y"])


def error_of(*args: object, **kwargs: object) -> str:
    with pytest.raises(FrontendError) as info:
        import_onnx(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and isinstance(info.value, GrimcError)
    return message


# --------------------------------------------------------------------------
# reading the file


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.onnx"
    assert error_of(path) == f"{path}: cannot read file (No such file or directory)"


def test_directory(tmp_path: Path) -> None:
    assert error_of(str(tmp_path)).startswith(f"{tmp_path}: cannot read file")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    assert error_of(path) == f"{path}: empty model"


def test_truncated_file(tmp_path: Path) -> None:
    data = model(
        [node("Relu", ["x"], ["y"])], {"x": [4]}, ["y"], {"unused": rand(256)}
    ).SerializeToString()
    path = tmp_path / "half.onnx"
    path.write_bytes(data[: len(data) // 2])
    assert error_of(path).startswith(f"{path}: not a valid ONNX model")


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xfe garbage \x00\x01",
        b"hello world, this is text\n",
        onnx.TensorProto(name="t", dims=[1]).SerializeToString(),
    ],
)
def test_garbage_bytes(data: bytes) -> None:
    message = error_of(data, name="blob.onnx")
    assert message.startswith("blob.onnx: not ")


def test_external_data(tmp_path: Path) -> None:
    weight = rand(1, 3000)
    onnx_model = model([node("Add", ["x", "w"], ["y"])], {"x": [1, 3000]}, ["y"], {"w": weight})
    path = tmp_path / "ext.onnx"
    onnx.save(onnx_model, path, save_as_external_data=True, location="ext.data", size_threshold=0)
    np.testing.assert_array_equal(weights(import_onnx(path))["w"], weight)
    assert "external file" in error_of(path.read_bytes(), name="ext.onnx")
    (tmp_path / "ext.data").unlink()
    assert error_of(path).startswith(f"{path}: cannot load external data")


@pytest.mark.parametrize(
    ("location", "message"),
    [("../outside.data", "points outside the directory"), ("/etc/passwd", "absolute path")],
)
def test_external_data_must_stay_beside_the_model(
    tmp_path: Path, location: str, message: str
) -> None:
    onnx_model = model(
        [node("Add", ["x", "w"], ["y"])], {"x": [1, 3000]}, ["y"], {"w": rand(1, 3000)}
    )
    onnx.save(
        onnx_model,
        tmp_path / "m.onnx",
        save_as_external_data=True,
        location="m.data",
        size_threshold=0,
    )
    onnx_model = onnx.load(tmp_path / "m.onnx", load_external_data=False)
    onnx_model.graph.initializer[0].external_data[0].value = location
    onnx.save(onnx_model, tmp_path / "m.onnx")
    assert message in error_of(tmp_path / "m.onnx")


# --------------------------------------------------------------------------
# graph structure


def test_unsupported_operator_names_node_op_and_where_the_list_is() -> None:
    bad = helper.make_node("Sign", ["x"], ["y"], name="sign_1")
    message = error_of(model([bad], {"x": [2]}, ["y"]), name="net.onnx")
    assert message == (
        f"net.onnx: node 'sign_1' (Sign): unsupported operator; grimc imports "
        f"{len(supported_ops())} ONNX operators (`grimc ops` lists them)"
    )


def test_grimc_ops_lists_the_supported_operators() -> None:
    grimc = Path(sys.executable).parent / "grimc"
    proc = subprocess.run([str(grimc), "ops"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    listed = proc.stdout.split()
    assert listed == sorted(listed) == supported_ops()
    assert {"Conv", "GRU", "LSTM", "RNN", "Constant", "ConstantOfShape"} <= set(listed)
    assert "Sign" not in listed


def test_custom_domain_operator() -> None:
    custom = helper.make_node("Conv", ["x"], ["y"], domain="com.vendor")
    onnx_model = model([custom], {"x": [2]}, ["y"])
    onnx_model.opset_import.append(helper.make_opsetid("com.vendor", 1))
    assert "node #0 (com.vendor.Conv): unsupported operator" in error_of(onnx_model)


def test_undefined_input_and_missing_output() -> None:
    assert "input 'ghost' is not defined" in error_of(
        model([node("Add", ["x", "ghost"], ["y"])], {"x": [2]}, ["y"])
    )
    assert "graph output 'z' is never produced" in error_of(
        model([node("Relu", ["x"], ["y"])], {"x": [2]}, ["y", "z"])
    )


def test_inconsistent_shapes_are_reported_at_the_node() -> None:
    conv = node("Conv", ["x", "w"], ["y"])
    message = error_of(model([conv], {"x": [1, 3, 8, 8]}, ["y"], {"w": rand(4, 5, 3, 3)}))
    assert "node #0 (Conv): graph.conv: 3 input channels, weight expects 5" in message


# --------------------------------------------------------------------------
# shapes


def test_dynamic_shape_names_input_and_suggests_input_shape() -> None:
    message = error_of(relu_model(["N", 3, None, 224]), name="m.onnx")
    assert message == (
        "m.onnx: input 'x' has a dynamic shape ([N, 3, ?, 224]); "
        "give a static one with --input-shape x=1x3x1x224"
    )


def test_input_shapes_fix_dynamic_dims() -> None:
    m = import_onnx(relu_model(["N", 3, None, 224]), {"x": [2, 3, 5, 224]})
    assert arg_shapes(m) == [(2, 3, 5, 224)] == result_shapes(m)


def test_input_shapes_override_static_dims() -> None:
    nodes = [node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])]
    onnx_model = model(nodes, {"x": [1, 3, 8, 8]}, ["y"], {"w": rand(2, 3, 3, 3)})
    onnx_model.graph.output[0].CopyFrom(
        helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 8, 8])
    )
    assert result_shapes(import_onnx(onnx_model, {"x": [1, 3, 16, 16]})) == [(1, 2, 16, 16)]


def test_unknown_rank_input() -> None:
    message = error_of(model([node("Relu", ["x"], ["y"])], {"x": None}, ["y"]))
    assert "input 'x' has a dynamic shape (unknown rank)" in message
    assert arg_shapes(
        import_onnx(model([node("Relu", ["x"], ["y"])], {"x": None}, ["y"]), {"x": [7]})
    ) == [(7,)]


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        ({"y": [1, 3]}, "--input-shape names unknown input 'y'; inputs are: 'x'"),
        ({"x": [1, 3, 4]}, "--input-shape gives rank 3, the model declares rank 2"),
        ({"x": [0, 3]}, "dims must be positive"),
    ],
)
def test_bad_input_shapes(shapes: dict, message: str) -> None:
    assert message in error_of(relu_model(["N", 3]), shapes)


# --------------------------------------------------------------------------
# data types and values


@pytest.mark.parametrize(
    ("elem", "name"),
    [(TensorProto.INT8, "int8"), (TensorProto.DOUBLE, "double"), (TensorProto.STRING, "string")],
)
def test_non_float_input(elem: int, name: str) -> None:
    """Inputs of a dtype --input-value can specialize say so; strings cannot be."""
    onnx_model = model([node("Relu", ["x"], ["y"])], {"x": [2]}, ["y"], elem_type=elem)
    hint = "" if name == "string" else (
        ": give it a compile-time value with --input-value x=VALUE"
    )
    assert (
        error_of(onnx_model, name="m")
        == f"m: input 'x' has dtype {name}; grimc computes in float32 only{hint}"
    )


def test_integer_weight_reaching_a_compute_op() -> None:
    onnx_model = model(
        [node("Add", ["x", "k"], ["y"])], {"x": [2]}, ["y"], {"k": np.array([1, 2], np.int64)}
    )
    assert "node #0 (Add): tensor 'k' has dtype int64; grimc computes in float32 only" in error_of(
        onnx_model
    )


def test_quantized_operator() -> None:
    q = node("QuantizeLinear", ["x", "s"], ["y"])
    onnx_model = model([q], {"x": [2]}, ["y"], {"s": np.array(0.1, np.float32)})
    assert "(QuantizeLinear): unsupported operator" in error_of(onnx_model)


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_other_float_weights_are_converted(dtype: type) -> None:
    onnx_model = model(
        [node("Add", ["x", "k"], ["y"])], {"x": [2]}, ["y"], {"k": np.array([1.5, 2], dtype)}
    )
    stored = weights(import_onnx(onnx_model))["k"]
    assert stored.dtype == np.float32
    np.testing.assert_array_equal(stored, [1.5, 2])


def test_bfloat16_weight_is_converted() -> None:
    onnx_model = model([node("Add", ["x", "k"], ["y"])], {"x": [2]}, ["y"])
    onnx_model.graph.initializer.append(
        helper.make_tensor("k", TensorProto.BFLOAT16, [2], [1.5, 2.0])
    )
    np.testing.assert_array_equal(
        weights(import_onnx(onnx_model))["k"], np.array([1.5, 2], np.float32)
    )


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weight(bad: float) -> None:
    w = rand(2, 3, 1, 1)
    w[1, 2, 0, 0] = bad
    conv = helper.make_node("Conv", ["x", "conv.w"], ["y"], name="conv_1")
    message = error_of(model([conv], {"x": [1, 3, 4, 4]}, ["y"], {"conv.w": w}), name="m.onnx")
    assert (
        message
        == "m.onnx: node 'conv_1' (Conv): tensor 'conv.w' has 1 non-finite value(s) (NaN or Inf)"
    )


def test_float64_overflow_is_non_finite() -> None:
    onnx_model = model(
        [node("Add", ["x", "k"], ["y"])], {"x": [1]}, ["y"], {"k": np.array([1e300])}
    )
    assert "non-finite" in error_of(onnx_model)


# --------------------------------------------------------------------------
# determinism


def test_same_model_same_ir() -> None:
    nodes = [node("Conv", ["x", "w", "b"], ["c"]), node("Relu", ["c"], ["y"])]
    onnx_model = model(nodes, {"x": [1, 3, 4, 4]}, ["y"], {"w": rand(2, 3, 3, 3), "b": rand(2)})
    first, second = import_onnx(onnx_model), import_onnx(onnx_model.SerializeToString())
    assert str(main(first)) == str(main(second))
