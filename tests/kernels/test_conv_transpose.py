"""ConvTranspose (a stride-phase convolution, interleaved and cropped) against
onnxruntime: strides, asymmetric pads, output_padding, dilations, groups, 1-D,
output_shape/auto_pad; host, host-avx512, generic C and aarch64 under qemu."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from grimc.artifacts import onnxruntime_reference
from grimc.driver import build_model
from grimc.errors import GrimcError
from grimc.frontend import import_onnx
from tests.tiers import spread

RTOL, ATOL = 1e-4, 1e-5

# name -> (input shape, weight shape, bias, attributes)
CASES: dict[str, tuple[tuple[int, ...], tuple[int, ...], bool, dict[str, Any]]] = {
    "s2_k3_same_upsample": ((1, 8, 7, 6), (8, 5, 3, 3), True,
                            {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]}),
    "s2_k2_sr": ((2, 6, 5, 5), (6, 4, 2, 2), True, {"strides": [2, 2]}),
    "s3_asym_pads_dilated": ((1, 5, 4, 6), (5, 3, 4, 3), True,
                             {"strides": [3, 2], "pads": [1, 0, 2, 1], "output_padding": [2, 1],
                              "dilations": [2, 1]}),
    "groups_4": ((1, 8, 5, 4), (8, 2, 4, 4), True,
                 {"strides": [2, 2], "pads": [1, 1, 1, 1], "group": 4}),
    "stride_1_no_bias": ((1, 3, 6, 5), (3, 7, 3, 2), False, {"pads": [1, 0, 0, 1]}),
    "kernel_smaller_than_stride": ((1, 4, 3, 3), (4, 2, 2, 1), True, {"strides": [3, 4]}),
    "one_d": ((1, 6, 9), (6, 4, 5), True,
              {"strides": [2], "pads": [2, 1], "output_padding": [1]}),
    "output_shape_same_lower": ((1, 2, 4, 5), (2, 3, 3, 3), True,
                                {"strides": [2, 2], "auto_pad": "SAME_LOWER",
                                 "output_shape": [8, 10]}),
}  # fmt: skip


def model(name: str, runtime_weight: bool = False) -> onnx.ModelProto:
    x_shape, w_shape, bias, attrs = CASES[name]
    rng = np.random.default_rng(len(name))
    w = (rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:]))).astype(np.float32)
    inits = {} if runtime_weight else {"w": w}
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)]
    if runtime_weight:
        inputs.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, w_shape))
    names = ["x", "w"]
    if bias:
        inits["b"] = rng.standard_normal(w_shape[1] * attrs.get("group", 1)).astype(np.float32)
        names.append("b")
    graph = helper.make_graph(
        [helper.make_node("ConvTranspose", names, ["y"], **attrs)],
        name,
        inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def check(name: str, target: str, threads: int, tmp_path: Path) -> None:
    m = model(name)
    x = np.random.default_rng(1).standard_normal(CASES[name][0]).astype(np.float32)
    (want,) = onnxruntime_reference(m.SerializeToString(), [x])
    with build_model(m, tmp_path, target=target, threads=threads) as compiled:
        (got,) = compiled.run([x])
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


CONFIGS = [("host", 1), ("host", 2), ("host-avx512", 1), ("generic", 2)]


@pytest.mark.parametrize(
    "name,target,threads", spread(sorted(CASES), CONFIGS, lambda c, t, n: f"{c}-{t}-t{n}")
)
def test_matches_onnxruntime(name: str, target: str, threads: int, tmp_path: Path) -> None:
    check(name, target, threads, tmp_path)


@pytest.mark.parametrize("name", ["s3_asym_pads_dilated", "groups_4", "one_d"])
def test_aarch64_under_qemu(name: str, tmp_path: Path) -> None:
    check(name, "aarch64", 2, tmp_path)


def test_no_zero_insertion() -> None:
    """One conv over the un-dilated input: its MACs are the transposed conv's own
    (k^2 taps per input pixel), not stride^2 times more."""
    module = import_onnx(model("s2_k2_sr"))
    (conv,) = [op for op in module.walk() if op.name == "graph.conv"]
    x_shape = conv.operands[0].type.get_shape()
    w_shape = conv.operands[1].type.get_shape()
    assert tuple(x_shape) == CASES["s2_k2_sr"][0]
    assert tuple(w_shape) == (4 * 4, 6, 1, 1)  # 4 phases x 4 channels, 1x1 taps


def test_runtime_weight_is_refused_in_one_line() -> None:
    with pytest.raises(GrimcError, match=r"\(ConvTranspose\): input 1 .*must be a constant"):
        import_onnx(model("s2_k2_sr", runtime_weight=True))
