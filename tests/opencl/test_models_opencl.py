"""Whole zoo models, dense and BCR-pruned, through the OpenCL target against onnxruntime.

Each model goes ONNX -> the default pass pipeline for --target opencl ->
host library -> HostModel, on the OpenCL device (PoCL in CI); `run_on_device`
asserts every kernel ran there. fp32: rtol 1e-4 / atol 1e-5 as on the CPU;
fp16 storage: max error within 1e-2 of max |y| (half keeps 11 significant
bits per stored activation and weight; arithmetic stays float).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest

from grimc import zoo
from grimc.artifacts import onnxruntime_reference
from grimc.driver import compile_model
from grimc.prune import prune_model
from tests.opencl.clenv import tiered
from tests.opencl.clmodel import run_on_device

RTOL, ATOL = 1e-4, 1e-5


def pruned(build: Callable[[], onnx.ModelProto], block: tuple[int, int], rate: float):
    return lambda: prune_model(build(), block=block, rate=rate).model


def _resnet18() -> onnx.ModelProto:
    return zoo.resnet18(image_size=32, width=0.5, num_classes=10)


def _mobilenet() -> onnx.ModelProto:
    return zoo.mobilenet_v2(image_size=32, width=0.25, num_classes=10)


FAST = {
    "small_cnn": zoo.small_cnn,
    "mobilenet_v2_32": _mobilenet,
    "resnet18_32_bcr6x": pruned(_resnet18, (8, 16), 6.0),
}
SLOW = {
    "vgg16_32": lambda: zoo.vgg16(image_size=32, width=0.125, num_classes=10),
    "resnet18_32": lambda: zoo.resnet18(image_size=32, width=0.25, num_classes=10),
    "vgg16_32_bcr8x": pruned(
        lambda: zoo.vgg16(image_size=32, width=0.25, num_classes=10), (8, 16), 8.0
    ),
    "mobilenet_v2_32_bcr3x": pruned(
        lambda: zoo.mobilenet_v2(image_size=32, width=1.0, num_classes=10), (4, 16), 3.0
    ),
}


FULL = {
    "resnet18": zoo.resnet18,
    "resnet18_bcr6x": pruned(zoo.resnet18, (8, 16), 6.0),
    "mobilenet_v2": zoo.mobilenet_v2,
    "mobilenet_v2_bcr3x": pruned(zoo.mobilenet_v2, (4, 16), 3.0),
    "vgg16_bcr8x": pruned(zoo.vgg16, (8, 16), 8.0),
    "vgg16": zoo.vgg16,
    "resnet50": zoo.resnet50,
    "resnet50_bcr6x": pruned(zoo.resnet50, (8, 16), 6.0),
    "gru_2x1024": zoo.gru,
    "gru_2x1024_bcr10x": pruned(zoo.gru, (16, 32), 10.0),
    "lstm_2x1024": zoo.lstm,
    "lstm_2x1024_bcr10x": pruned(zoo.lstm, (16, 32), 10.0),
    "rnn_2x1024": zoo.rnn,
    "rnn_2x1024_bcr10x": pruned(zoo.rnn, (16, 32), 10.0),
}
"""Every zoo model at full size, dense and BCR-pruned (the slow tier)."""


def reference(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    return onnxruntime_reference(model.SerializeToString(), [x])[0]


def check(
    model: onnx.ModelProto, tmp_path: Path, precision: str = "fp32", scaled: bool = False
) -> None:
    """`scaled`: atol is 1e-5 x max |y| for full-size networks, as on the CPU
    (tests/models): deep reductions sum in another order than onnxruntime and
    fp32 rounding grows to ~1e-5 of the output scale."""
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    want = reference(model, x)
    gen = compile_model(model, target="opencl", precision=precision)
    got = run_on_device(gen, [x], tmp_path)[0]
    assert got.shape == want.shape
    if precision == "fp32":
        atol = ATOL * max(1.0, float(np.abs(want).max())) if scaled else ATOL
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=atol)
    else:
        assert np.abs(got - want).max() <= 1e-2 * float(np.abs(want).max())


@pytest.mark.parametrize("name", tiered(FAST, ["small_cnn", "resnet18_32_bcr6x"]))
def test_small_models(name: str, tmp_path: Path) -> None:
    check(FAST[name](), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SLOW))
def test_small_models_slow(name: str, tmp_path: Path) -> None:
    check(SLOW[name](), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FULL))
def test_full_size_models(name: str, tmp_path: Path) -> None:
    check(FULL[name](), tmp_path, scaled=True)


def test_pruned_model_runs_bcr_kernels(tmp_path: Path) -> None:
    """The pruned ResNet's convs really lower to the sparse kernels."""
    gen = compile_model(FAST["resnet18_32_bcr6x"](), target="opencl")
    sparse = [k for k in gen.kernels if k.params.get("sparse")]
    assert len(sparse) >= 10, [k.kind for k in gen.kernels]


@pytest.mark.parametrize("name", tiered(["small_cnn", "resnet18_32_bcr6x"], ["small_cnn"]))
def test_fp16_storage(name: str, tmp_path: Path) -> None:
    check(FAST[name](), tmp_path, precision="fp16-storage")
