"""One test (or parametrized family) per supported ONNX operator."""

from __future__ import annotations

import numpy as np
import pytest

from grimc.frontend import FrontendError, import_onnx
from grimc.frontend.elementwise import F32_MAX
from tests.frontend.helpers import (
    model,
    node,
    op_names,
    prop,
    rand,
    result_shapes,
    single,
    the,
    weight_of,
    weights,
)

X4 = {"x": [1, 3, 8, 8]}

# --------------------------------------------------------------------------
# Conv


def test_conv_basic() -> None:
    m = single("Conv", X4, {"w": rand(4, 3, 3, 3), "b": rand(4)}, pads=[1, 1, 1, 1])
    conv = the(m, "graph.conv")
    assert result_shapes(m) == [(1, 4, 8, 8)]
    assert prop(conv, "pads") == (1, 1, 1, 1)
    assert prop(conv, "strides") == (1, 1)
    assert prop(conv, "dilations") == (1, 1)
    assert prop(conv, "group") == 1
    np.testing.assert_array_equal(weight_of(m, conv.w), rand(4, 3, 3, 3))
    assert conv.b is not None


def test_conv_without_bias_and_with_kernel_shape() -> None:
    m = single("Conv", X4, {"w": rand(4, 3, 3, 3)}, kernel_shape=[3, 3], strides=[2, 2])
    conv = the(m, "graph.conv")
    assert conv.b is None
    assert result_shapes(m) == [(1, 4, 3, 3)]


@pytest.mark.parametrize(
    ("auto_pad", "kernel", "stride", "pads", "out"),
    [
        ("SAME_UPPER", 3, 2, (0, 0, 1, 1), 4),
        ("SAME_LOWER", 3, 2, (1, 1, 0, 0), 4),
        ("SAME_UPPER", 4, 1, (1, 1, 2, 2), 8),
        ("SAME_LOWER", 4, 1, (2, 2, 1, 1), 8),
        ("VALID", 3, 2, (0, 0, 0, 0), 3),
        ("NOTSET", 3, 1, (0, 0, 0, 0), 6),
    ],
)
def test_conv_auto_pad(
    auto_pad: str, kernel: int, stride: int, pads: tuple[int, ...], out: int
) -> None:
    m = single(
        "Conv", X4, {"w": rand(2, 3, kernel, kernel)}, auto_pad=auto_pad, strides=[stride, stride]
    )
    assert prop(the(m, "graph.conv"), "pads") == pads
    assert result_shapes(m) == [(1, 2, out, out)]


def test_conv_depthwise_and_grouped() -> None:
    m = single("Conv", X4, {"w": rand(6, 1, 3, 3)}, group=3, pads=[1, 1, 1, 1])
    assert prop(the(m, "graph.conv"), "group") == 3
    assert result_shapes(m) == [(1, 6, 8, 8)]


def test_conv_dilated() -> None:
    m = single("Conv", X4, {"w": rand(2, 3, 3, 3)}, dilations=[2, 2])
    assert prop(the(m, "graph.conv"), "dilations") == (2, 2)
    assert result_shapes(m) == [(1, 2, 4, 4)]


def test_conv_1d_is_lifted_to_2d() -> None:
    m = single("Conv", {"x": [1, 2, 10]}, {"w": rand(4, 2, 3)}, pads=[1, 0], strides=[2])
    conv = the(m, "graph.conv")
    assert op_names(m) == ["graph.reshape", "graph.conv", "graph.reshape"]
    assert prop(conv, "pads") == (0, 1, 0, 0)
    assert prop(conv, "strides") == (1, 2)
    np.testing.assert_array_equal(weight_of(m, conv.w), rand(4, 2, 3).reshape(4, 2, 1, 3))
    assert result_shapes(m) == [(1, 4, 5)]
    assert len(weights(m)) == 1


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"auto_pad": "FOO"}, "unsupported auto_pad 'FOO'"),
        ({"kernel_shape": [5, 5]}, "kernel_shape [5, 5] differs"),
        ({"group": 2}, "input channels"),
        ({"strides": [0, 1]}, "'strides' must be 2 positive integers"),
        ({"pads": [1, 1]}, "'pads' must be 4 non-negative integers"),
    ],
)
def test_conv_bad_attributes(attrs: dict, message: str) -> None:
    with pytest.raises(FrontendError, match=r"node #0 \(Conv\): ") as info:
        single("Conv", X4, {"w": rand(4, 3, 3, 3)}, **attrs)
    assert message in str(info.value)


def test_conv_3d_is_rejected() -> None:
    with pytest.raises(FrontendError, match="only 1-D and 2-D convolutions"):
        single("Conv", {"x": [1, 3, 4, 4, 4]}, {"w": rand(2, 3, 1, 1, 1)})


# --------------------------------------------------------------------------
# Gemm, MatMul


@pytest.mark.parametrize("trans_a", [0, 1])
@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm_transposes(trans_a: int, trans_b: int) -> None:
    a_shape = [5, 2] if trans_a else [2, 5]
    b = rand(3, 5) if trans_b else rand(5, 3)
    m = single(
        "Gemm",
        {"a": a_shape},
        {"b": b, "c": rand(3)},
        transA=trans_a,
        transB=trans_b,
        alpha=0.5,
        beta=2.0,
    )
    gemm = the(m, "graph.gemm")
    assert (prop(gemm, "trans_a"), prop(gemm, "trans_b")) == (trans_a, trans_b)
    assert (prop(gemm, "alpha"), prop(gemm, "beta")) == (0.5, 2.0)
    assert result_shapes(m) == [(2, 3)]


def test_gemm_without_c_uses_defaults() -> None:
    gemm = the(single("Gemm", {"a": [2, 5]}, {"b": rand(5, 3)}), "graph.gemm")
    assert gemm.c is None
    assert (
        prop(gemm, "alpha"),
        prop(gemm, "beta"),
        prop(gemm, "trans_a"),
        prop(gemm, "trans_b"),
    ) == (1.0, 1.0, 0, 0)


def test_gemm_needs_2d_operands() -> None:
    with pytest.raises(FrontendError, match="must be 2-D"):
        single("Gemm", {"a": [1, 2, 5]}, {"b": rand(5, 3)})


@pytest.mark.parametrize(
    ("a", "b", "out"),
    [
        ([2, 5], [5, 3], (2, 3)),
        ([2, 3, 4, 5], [5, 6], (2, 3, 4, 6)),
        ([2, 4, 5], [2, 5, 6], (2, 4, 6)),
        ([5], [5, 3], (3,)),
    ],
)
def test_matmul(a: list[int], b: list[int], out: tuple[int, ...]) -> None:
    m = single("MatMul", {"a": a}, {"b": rand(*b)})
    the(m, "graph.matmul")
    assert result_shapes(m) == [out]


def test_matmul_mismatch_is_an_error() -> None:
    with pytest.raises(FrontendError, match=r"\(MatMul\): matmul inner dimensions 5 and 4 differ"):
        single("MatMul", {"a": [2, 5]}, {"b": rand(4, 3)})


# --------------------------------------------------------------------------
# element-wise


@pytest.mark.parametrize(("op_type", "name"), [("Add", "graph.add"), ("Mul", "graph.mul")])
def test_binary_broadcasting(op_type: str, name: str) -> None:
    m = single(op_type, X4, {"c": rand(3, 1, 1)})
    the(m, name)
    assert result_shapes(m) == [(1, 3, 8, 8)]


def test_binary_of_two_activations() -> None:
    m = single("Add", {"a": [2, 1, 4], "b": [3, 1]})
    assert result_shapes(m) == [(2, 3, 4)]


def test_sum_of_three() -> None:
    m = single("Sum", {"a": [2, 3], "b": [2, 3], "c": [3]})
    assert len(the(m, "graph.sum").operands) == 3
    assert result_shapes(m) == [(2, 3)]


def test_sub_and_div_by_constant() -> None:
    c = np.array([1.0, 2.0, 4.0], np.float32)
    sub = single("Sub", {"x": [2, 3]}, {"c": c})
    np.testing.assert_array_equal(weight_of(sub, the(sub, "graph.add").rhs), -c)
    div = single("Div", {"x": [2, 3]}, {"c": c})
    np.testing.assert_array_equal(weight_of(div, the(div, "graph.mul").rhs), 1 / c)


@pytest.mark.parametrize(
    ("op_type", "init", "name"),
    [
        ("Sub", None, "graph.sub"),
        ("Div", None, "graph.div"),
        ("Div", np.array([1.0, 0.0], np.float32), "graph.div"),
    ],
)
def test_sub_div_general_forms(op_type: str, init: np.ndarray | None, name: str) -> None:
    """A run-time right-hand side, or a constant divisor with zeros, stays a sub/div."""
    inputs = {"x": [2, 2]} if init is not None else {"x": [2, 2], "y": [2, 2]}
    m = single(op_type, inputs, {"c": init} if init is not None else None)
    assert the(m, name) is not None


@pytest.mark.parametrize(
    ("op_type", "name"),
    [
        ("Relu", "graph.relu"),
        ("Sigmoid", "graph.sigmoid"),
        ("Tanh", "graph.tanh"),
        ("HardSwish", "graph.hard_swish"),
    ],
)
def test_plain_activations(op_type: str, name: str) -> None:
    m = single(op_type, X4)
    the(m, name)
    assert result_shapes(m) == [(1, 3, 8, 8)]


@pytest.mark.parametrize(("attrs", "alpha"), [({}, 0.01), ({"alpha": 0.2}, 0.2)])
def test_leaky_relu(attrs: dict, alpha: float) -> None:
    assert prop(
        the(single("LeakyRelu", X4, **attrs), "graph.leaky_relu"), "alpha"
    ) == pytest.approx(alpha)


@pytest.mark.parametrize(
    ("attrs", "params"), [({}, (0.2, 0.5)), ({"alpha": 0.25, "beta": 0.125}, (0.25, 0.125))]
)
def test_hard_sigmoid(attrs: dict, params: tuple[float, float]) -> None:
    op = the(single("HardSigmoid", X4, **attrs), "graph.hard_sigmoid")
    assert (prop(op, "alpha"), prop(op, "beta")) == pytest.approx(params)


@pytest.mark.parametrize(
    ("inputs", "bounds"),
    [
        (["x", "lo", "hi"], (0.0, 6.0)),
        (["x", "lo"], (0.0, F32_MAX)),
        (["x", "", "hi"], (-F32_MAX, 6.0)),
        (["x"], (-F32_MAX, F32_MAX)),
    ],
)
def test_clip_inputs(inputs: list[str], bounds: tuple[float, float]) -> None:
    inits = {"lo": np.array(0.0, np.float32), "hi": np.array(6.0, np.float32)}
    used = {k: v for k, v in inits.items() if k in inputs}
    m = import_onnx(model([node("Clip", inputs, ["y"])], X4, ["y"], used))
    clip = the(m, "graph.clip")
    assert (prop(clip, "min"), prop(clip, "max")) == pytest.approx(bounds)
    assert len(weights(m)) == 0


def test_clip_infinite_bound_becomes_float32_max() -> None:
    inits = {"lo": np.array(-np.inf, np.float32)}
    clip = the(
        import_onnx(model([node("Clip", ["x", "lo"], ["y"])], X4, ["y"], inits)), "graph.clip"
    )
    assert prop(clip, "min") == pytest.approx(-F32_MAX)


def test_clip_run_time_bounds_become_max_and_min() -> None:
    m = single("Clip", {"x": [2], "lo": [], "hi": []})
    assert the(m, "graph.max") is not None and the(m, "graph.min") is not None


def test_prelu() -> None:
    m = single("PRelu", X4, {"slope": rand(3, 1, 1)})
    prelu = the(m, "graph.prelu")
    assert weight_of(m, prelu.slope).shape == (3, 1, 1)
    assert result_shapes(m) == [(1, 3, 8, 8)]


# --------------------------------------------------------------------------
# normalization and pooling


def test_batch_norm() -> None:
    stats = {n: rand(3, seed=i) for i, n in enumerate(["scale", "bias", "mean"])}
    stats["var"] = np.abs(rand(3, seed=9))
    m = single("BatchNormalization", X4, stats, epsilon=1e-3)
    assert prop(the(m, "graph.batch_norm"), "epsilon") == pytest.approx(1e-3)
    assert result_shapes(m) == [(1, 3, 8, 8)]


BN_STATS = {n: np.ones(3, np.float32) for n in ["scale", "bias", "mean", "var"]}


def test_batch_norm_training_mode_is_rejected() -> None:
    with pytest.raises(FrontendError, match="training_mode=1 is not supported"):
        single("BatchNormalization", X4, BN_STATS, training_mode=1)


def test_batch_norm_statistics_outputs_are_rejected() -> None:
    bn = node("BatchNormalization", ["x", *BN_STATS], ["y", "running_mean", "running_var"])
    with pytest.raises(FrontendError, match=r"training statistics \(output 1\)"):
        import_onnx(model([bn], X4, ["y", "running_mean"], BN_STATS, opset=15))


@pytest.mark.parametrize(
    ("attrs", "out"),
    [
        ({"kernel_shape": [3, 3], "strides": [2, 2]}, (1, 3, 3, 3)),
        ({"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, (1, 3, 4, 4)),
        (
            {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1},
            (1, 3, 5, 5),
        ),
        ({"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER", "strides": [2, 2]}, (1, 3, 4, 4)),
    ],
)
@pytest.mark.parametrize(
    ("op_type", "name"), [("MaxPool", "graph.max_pool"), ("AveragePool", "graph.avg_pool")]
)
def test_pools(op_type: str, name: str, attrs: dict, out: tuple[int, ...]) -> None:
    m = single(op_type, X4, **attrs)
    pool = the(m, name)
    assert prop(pool, "ceil_mode") == attrs.get("ceil_mode", 0)
    assert prop(pool, "kernel_shape") == tuple(attrs["kernel_shape"])
    assert result_shapes(m) == [out]


def test_max_pool_dilations() -> None:
    m = single("MaxPool", X4, kernel_shape=[2, 2], dilations=[2, 2])
    assert prop(the(m, "graph.max_pool"), "dilations") == (2, 2)
    assert result_shapes(m) == [(1, 3, 6, 6)]


def test_average_pool_count_include_pad() -> None:
    m = single("AveragePool", X4, kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1)
    assert prop(the(m, "graph.avg_pool"), "count_include_pad") == 1


def test_pool_1d_is_lifted() -> None:
    m = single("MaxPool", {"x": [1, 2, 9]}, kernel_shape=[3], strides=[3])
    assert op_names(m) == ["graph.reshape", "graph.max_pool", "graph.reshape"]
    assert result_shapes(m) == [(1, 2, 3)]


@pytest.mark.parametrize(
    ("attrs", "outputs", "message"),
    [
        ({"storage_order": 1}, 1, "storage_order=1"),
        ({}, 2, r"the Indices output \(output 1\) is not supported"),
    ],
)
def test_max_pool_rejections(attrs: dict, outputs: int, message: str) -> None:
    with pytest.raises(FrontendError, match=message):
        single("MaxPool", X4, n_outputs=outputs, kernel_shape=[2, 2], **attrs)


def test_global_average_pool() -> None:
    m = single("GlobalAveragePool", X4)
    the(m, "graph.global_avg_pool")
    assert result_shapes(m) == [(1, 3, 1, 1)]


def test_lrn() -> None:
    lrn = the(single("LRN", X4, size=5, alpha=2e-4), "graph.lrn")
    assert prop(lrn, "size") == 5
    assert (prop(lrn, "alpha"), prop(lrn, "beta"), prop(lrn, "bias")) == pytest.approx(
        (2e-4, 0.75, 1.0)
    )


@pytest.mark.parametrize(("attrs", "axis"), [({}, 3), ({"axis": 1}, 1), ({"axis": -3}, 1)])
def test_softmax(attrs: dict, axis: int) -> None:
    m = single("Softmax", X4, **attrs)
    assert op_names(m) == ["graph.softmax"]
    assert prop(the(m, "graph.softmax"), "axis") == axis


# --------------------------------------------------------------------------
# shape manipulation


@pytest.mark.parametrize(
    ("axis", "out"), [(1, (1, 192)), (0, (1, 192)), (2, (3, 64)), (-1, (24, 8)), (4, (192, 1))]
)
def test_flatten(axis: int, out: tuple[int, int]) -> None:
    m = single("Flatten", X4, axis=axis)
    assert result_shapes(m) == [out]


@pytest.mark.parametrize(
    ("shape", "out"),
    [([0, -1], (1, 192)), ([-1, 8, 8], (3, 8, 8)), ([0, 0, 64], (1, 3, 64)), ([3, 64], (3, 64))],
)
def test_reshape(shape: list[int], out: tuple[int, ...]) -> None:
    m = single("Reshape", X4, {"shape": np.array(shape, np.int64)})
    assert op_names(m) == ["graph.reshape"]
    assert result_shapes(m) == [out]
    assert len(weights(m)) == 0


@pytest.mark.parametrize(
    ("shape", "attrs", "message"),
    [
        ([-1, -1], {}, "more than one -1"),
        ([5, -1], {}, "cannot reshape"),
        ([0, 192], {"allowzero": 1}, "cannot reshape"),
        ([1, 1, 1, 1, 0], {}, "has no input dim to copy"),
    ],
)
def test_reshape_errors(shape: list[int], attrs: dict, message: str) -> None:
    with pytest.raises(FrontendError, match=message):
        single("Reshape", X4, {"shape": np.array(shape, np.int64)}, **attrs)


def test_reshape_needs_constant_shape() -> None:
    with pytest.raises(FrontendError, match=r"\(shape\) must be a constant"):
        import_onnx(model([node("Reshape", ["x", "s"], ["y"])], {"x": [4], "s": [1]}, ["y"]))


def test_transpose() -> None:
    assert result_shapes(single("Transpose", {"x": [1, 2, 3]})) == [(3, 2, 1)]
    m = single("Transpose", X4, perm=[0, 2, 3, 1])
    assert prop(the(m, "graph.transpose"), "perm") == (0, 2, 3, 1)
    assert result_shapes(m) == [(1, 8, 8, 3)]
    with pytest.raises(FrontendError, match="not a permutation"):
        single("Transpose", X4, perm=[0, 0, 1, 2])


def test_concat_negative_axis_and_constant_operand() -> None:
    m = single("Concat", {"a": [1, 2, 4], "b": [1, 3, 4]}, {"c": rand(1, 1, 4)}, axis=-2)
    assert prop(the(m, "graph.concat"), "axis") == 1
    assert result_shapes(m) == [(1, 6, 4)]


@pytest.mark.parametrize("opset", [11, 17])
def test_squeeze_unsqueeze_become_reshapes(opset: int) -> None:
    def axes(name: str, values: list[int]) -> tuple[list[str], dict]:
        if opset < 13:
            return [], {"axes": values}
        return [name], {}

    sq_in, sq_attr = axes("sq_axes", [0, 2])
    un_in, un_attr = axes("un_axes", [-1, 0])
    nodes = [
        node("Squeeze", ["x", *sq_in], ["s"], **sq_attr),
        node("Unsqueeze", ["s", *un_in], ["y"], **un_attr),
    ]
    inits = (
        {"sq_axes": np.array([0, 2], np.int64), "un_axes": np.array([-1, 0], np.int64)}
        if opset >= 13
        else {}
    )
    m = import_onnx(model(nodes, {"x": [1, 3, 1, 5]}, ["y"], inits, opset=opset))
    assert op_names(m) == ["graph.reshape", "graph.reshape"]
    assert result_shapes(m) == [(1, 3, 5, 1)]


def test_squeeze_without_axes_and_bad_axis() -> None:
    assert result_shapes(single("Squeeze", {"x": [1, 3, 1, 5]})) == [(3, 5)]
    with pytest.raises(FrontendError, match="cannot squeeze axes"):
        single("Squeeze", {"x": [1, 3]}, {"axes": np.array([1], np.int64)})


def test_dropout_identity_and_cast_disappear() -> None:
    nodes = [
        node("Dropout", ["x"], ["d"]),
        node("Identity", ["d"], ["i"]),
        node("Cast", ["i"], ["c"], to=1),
        node("Relu", ["c"], ["y"]),
    ]
    m = import_onnx(model(nodes, X4, ["y"]))
    assert op_names(m) == ["graph.relu"]


def test_dropout_mask_and_training_are_rejected() -> None:
    mask = model([node("Dropout", ["x"], ["y", "mask"])], X4, ["y", "mask"])
    with pytest.raises(FrontendError, match=r"the dropout mask \(output 1\) is not supported"):
        import_onnx(mask)
    unused_mask = model([node("Dropout", ["x"], ["y", "mask"])], X4, ["y"])
    assert op_names(import_onnx(unused_mask)) == []
    training = model(
        [node("Dropout", ["x", "r", "t"], ["y"])],
        X4,
        ["y"],
        {"r": np.array(0.5, np.float32), "t": np.array(True)},
    )
    with pytest.raises(FrontendError, match="training_mode=1"):
        import_onnx(training)


def test_cast_to_other_types_is_rejected() -> None:
    with pytest.raises(FrontendError, match="only casts to float32"):
        single("Cast", X4, to=7)
