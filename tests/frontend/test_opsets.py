"""Old opsets: every test runs with ONNX's version converter and without it
(the importer's own handling of opset differences, used when conversion fails)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import onnx
import pytest

from grimc.frontend import FrontendError, import_onnx
from grimc.frontend import load as frontend_load
from tests.frontend.helpers import arg_shapes, model, node, op_names, prop, rand, result_shapes, the

X4 = {"x": [1, 3, 4, 4]}


@pytest.fixture(params=["converted", "as-is"])
def conversion(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """'as-is' makes the version converter fail, as it does on some real models."""
    if request.param == "as-is":

        def refuse(model: onnx.ModelProto, target: int) -> onnx.ModelProto:
            raise RuntimeError("no adapter")

        monkeypatch.setattr(frontend_load.version_converter, "convert_version", refuse)
    yield request.param


@pytest.mark.usefixtures("conversion")
def test_opset9_clip_attributes() -> None:
    m = import_onnx(model([node("Clip", ["x"], ["y"], min=0.0, max=6.0)], X4, ["y"], opset=9))
    clip = the(m, "graph.clip")
    assert (prop(clip, "min"), prop(clip, "max")) == (0.0, 6.0)


@pytest.mark.usefixtures("conversion")
@pytest.mark.parametrize("axis", [1, -3, 0])
def test_opset9_softmax_flattens_at_axis(axis: int) -> None:
    m = import_onnx(model([node("Softmax", ["x"], ["y"], axis=axis)], X4, ["y"], opset=9))
    assert op_names(m) == ["graph.flatten", "graph.softmax", "graph.reshape"]
    assert prop(the(m, "graph.flatten"), "axis") == (axis + 4) % 4
    assert prop(the(m, "graph.softmax"), "axis") == 1
    assert result_shapes(m) == [(1, 3, 4, 4)]


@pytest.mark.usefixtures("conversion")
@pytest.mark.parametrize(("attrs", "axis"), [({"axis": 3}, 3), ({}, 1)])
def test_opset9_softmax_on_last_axis_stays_single(attrs: dict, axis: int) -> None:
    shape = {"x": [1, 4, 4, 5]} if attrs else {"x": [2, 10]}
    m = import_onnx(model([node("Softmax", ["x"], ["y"], **attrs)], shape, ["y"], opset=9))
    assert op_names(m) == ["graph.softmax"]
    assert prop(the(m, "graph.softmax"), "axis") == axis


@pytest.mark.usefixtures("conversion")
def test_opset9_batch_norm_momentum_and_initializers_listed_as_inputs() -> None:
    stats = {n: np.ones(3, np.float32) for n in ["scale", "bias", "mean", "var"]}
    bn = node("BatchNormalization", ["x", *stats], ["y"], epsilon=1e-3, momentum=0.8)
    onnx_model = model([bn], X4, ["y"], stats, opset=9, ir_version=3)
    for name in stats:
        onnx_model.graph.input.append(
            onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [3])
        )
    m = import_onnx(onnx_model)
    assert arg_shapes(m) == [(1, 3, 4, 4)]
    assert prop(the(m, "graph.batch_norm"), "epsilon") == pytest.approx(1e-3)


@pytest.mark.usefixtures("conversion")
def test_opset7_batch_norm_spatial() -> None:
    stats = {n: np.ones(3, np.float32) for n in ["scale", "bias", "mean", "var"]}
    bn = node("BatchNormalization", ["x", *stats], ["y"], spatial=1)
    the(import_onnx(model([bn], X4, ["y"], stats, opset=7)), "graph.batch_norm")


@pytest.mark.usefixtures("conversion")
def test_batch_norm_spatial_0_is_rejected() -> None:
    stats = {n: np.ones(3, np.float32) for n in ["scale", "bias", "mean", "var"]}
    bn = node("BatchNormalization", ["x", *stats], ["y"], spatial=0)
    with pytest.raises(FrontendError, match="spatial=0"):
        import_onnx(model([bn], X4, ["y"], stats, opset=7))


@pytest.mark.usefixtures("conversion")
def test_opset9_dropout_ratio_and_opset6_is_test() -> None:
    for opset, attrs in [(9, {"ratio": 0.3}), (6, {"is_test": 1})]:
        m = import_onnx(
            model(
                [node("Dropout", ["x"], ["d"], **attrs), node("Relu", ["d"], ["y"])],
                X4,
                ["y"],
                opset=opset,
            )
        )
        assert op_names(m) == ["graph.relu"]


@pytest.mark.usefixtures("conversion")
def test_opset11_squeeze_axes_attribute() -> None:
    m = import_onnx(model([node("Squeeze", ["x"], ["y"], axes=[0])], X4, ["y"], opset=11))
    assert result_shapes(m) == [(3, 4, 4)]


@pytest.mark.usefixtures("conversion")
def test_opset4_reshape_shape_attribute() -> None:
    m = import_onnx(model([node("Reshape", ["x"], ["y"], shape=[0, -1])], X4, ["y"], opset=4))
    assert result_shapes(m) == [(1, 48)]


@pytest.mark.usefixtures("conversion")
def test_opset6_prelu_slope_is_per_channel() -> None:
    m = import_onnx(model([node("PRelu", ["x", "s"], ["y"])], X4, ["y"], {"s": rand(3)}, opset=6))
    assert result_shapes(m) == [(1, 3, 4, 4)]
    assert the(m, "graph.prelu").slope.type.get_shape() == (3, 1, 1)


@pytest.mark.usefixtures("conversion")
@pytest.mark.parametrize("opset", [9, 11, 13, 17, 18, onnx.defs.onnx_opset_version()])
def test_small_cnn_at_every_opset(opset: int) -> None:
    """Conv/Relu/MaxPool/Gemm/Flatten are stable across opsets, up to the newest."""
    nodes = [
        node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        node("Relu", ["c"], ["r"]),
        node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        node("Flatten", ["p"], ["f"]),
        node("Gemm", ["f", "fc", "fc_b"], ["y"], transB=1),  # C is required before opset 11
    ]
    inits = {"w": rand(8, 3, 3, 3), "fc": rand(10, 32), "fc_b": rand(10)}
    m = import_onnx(model(nodes, X4, ["y"], inits, opset=opset))
    assert op_names(m) == [
        "graph.conv",
        "graph.relu",
        "graph.max_pool",
        "graph.flatten",
        "graph.gemm",
    ]
    assert result_shapes(m) == [(1, 10)]
