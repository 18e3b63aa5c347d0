"""NaN propagates through Relu, Clip, PRelu and fused epilogues as in onnxruntime.

x86 `max_ps(a, b)` / `min_ps(a, b)` return b when either operand is NaN, so a
vector Relu written max(x, 0) turned NaN into 0; NEON's fmax propagates NaN
and the scalar C forms compare. Each target runs one model holding every
affected path, with NaNs in the input; outputs must match onnxruntime
including the positions of NaN.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from grimc.artifacts import onnxruntime_reference
from grimc.driver import build_model
from tests.adversarial.blob_model import INPUT_SHAPE, bcr_model

RTOL, ATOL = 1e-4, 1e-5
SHAPE = (1, 8, 8, 8)
TARGETS = ["host", "host-avx512", "generic", "aarch64"]


def activations_model() -> onnx.ModelProto:
    """Standalone Relu / Clip / PRelu, Conv+Relu and Gemm+Relu (fused epilogues)."""
    rng = np.random.default_rng(4)
    inits = [
        numpy_helper.from_array(np.float32(-0.5), "lo"),
        numpy_helper.from_array(np.float32(0.5), "hi"),
        numpy_helper.from_array(rng.uniform(0.1, 0.5, (8, 1, 1)).astype(np.float32), "slope"),
        numpy_helper.from_array(rng.standard_normal((8, 8, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "b"),
        numpy_helper.from_array(rng.standard_normal((16, 512)).astype(np.float32), "fc"),
        numpy_helper.from_array(rng.standard_normal(16).astype(np.float32), "fb"),
    ]
    nodes = [
        helper.make_node("Relu", ["x"], ["relu"]),
        helper.make_node("Clip", ["x", "lo", "hi"], ["clip"]),
        helper.make_node("PRelu", ["x", "slope"], ["prelu"]),
        helper.make_node("Conv", ["x", "w", "b"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["conv_relu"]),
        helper.make_node("Flatten", ["x"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc", "fb"], ["gemm"], transB=1),
        helper.make_node("Relu", ["gemm"], ["gemm_relu"]),
    ]
    outputs = [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
        for n, s in [("relu", SHAPE), ("clip", SHAPE), ("prelu", SHAPE), ("conv_relu", SHAPE),
                     ("gemm_relu", (1, 16))]
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes, "nan", [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)], outputs, inits
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def with_nans(shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    x.reshape(-1)[rng.choice(x.size, size=max(1, x.size // 50), replace=False)] = np.nan
    return x


def check(model: onnx.ModelProto, x: np.ndarray, target: str, workdir: Path) -> None:
    refs = onnxruntime_reference(model.SerializeToString(), [x])
    with build_model(model, workdir, target=target, threads=1) as compiled:
        outs = compiled.run([x])
    for out, ref, info in zip(outs, refs, model.graph.output, strict=True):
        assert np.isnan(ref).any(), info.name  # NaN reaches every output
        np.testing.assert_array_equal(np.isnan(out), np.isnan(ref), err_msg=info.name)
        np.testing.assert_allclose(out, ref, rtol=RTOL, atol=ATOL, err_msg=info.name)


@pytest.mark.parametrize("target", TARGETS)
def test_nan_through_activations(target: str, tmp_path: Path) -> None:
    check(activations_model(), with_nans(SHAPE, 0), target, tmp_path)


@pytest.mark.parametrize("target", ["host", "aarch64"])
def test_nan_through_bcr_conv_relu(target: str, tmp_path: Path) -> None:
    """The BCR conv's fused Relu epilogue: one NaN pixel in the second image only."""
    x = np.random.default_rng(2).standard_normal(INPUT_SHAPE).astype(np.float32)
    x[1, 3, 2, 4] = np.nan
    check(bcr_model(), x, target, tmp_path)


def test_run_check_treats_matching_nans_as_equal(run_cli, tmp_path: Path) -> None:
    """`grimc run --check`: NaN where onnxruntime has NaN is a match, elsewhere a mismatch."""
    model = tmp_path / "relu.onnx"
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, SHAPE)],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), model)
    x = tmp_path / "x.npy"
    np.save(x, with_nans(SHAPE, 1))
    proc = run_cli(["grimc", "run", str(model), "--input", f"x={x}", "--check"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "onnxruntime check: OK (max abs error 0," in proc.stdout
