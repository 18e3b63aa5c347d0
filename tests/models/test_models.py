"""Whole models from grimc.zoo, compiled and run, against onnxruntime.

Host targets run in-process; aarch64 runs a static harness under qemu (small
variants: qemu is 40-120x slower than native). Tolerance: rtol 1e-4, atol 1e-5
on outputs whose magnitude is O(1-10) (zoo weights are scaled for that).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx
import pytest

from grimc import zoo
from grimc.artifacts import onnxruntime_reference
from grimc.driver import build_model
from tests.tiers import spread

RTOL, ATOL = 1e-4, 1e-5


def reference(
    model: onnx.ModelProto, x: np.ndarray, fixed: Mapping[str, np.ndarray] | None = None
) -> list[np.ndarray]:
    """onnxruntime on `x` (the first input) and the `fixed` control inputs."""
    return onnxruntime_reference(model.SerializeToString(), [x], fixed)


def check_model(
    model: onnx.ModelProto,
    tmp_path: Path,
    target: str,
    threads: int = 1,
    scaled: bool = False,
    input_values: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Compare with onnxruntime; `scaled` makes atol relative to the output range.

    Full-size networks (VGG-16: 16 layers with reductions up to K = 25088;
    ResNet-50: 53 convs) sum in a different order than onnxruntime, and fp32
    rounding differences grow with depth to ~1e-5 *of the output scale* (outputs
    here reach |y| ~ 5-8). An output that happens to be near zero then fails a
    fixed atol of 1e-5 although its error is ~3e-6 of the range. For those
    models atol is 1e-5 x max|y|; rtol stays 1e-4.

    `input_values` are compiled in (--input-value) and fed to onnxruntime.
    """
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    expected = reference(model, x, input_values)
    values = input_values or {}
    with build_model(
        model, tmp_path, target=target, threads=threads, input_values=values
    ) as compiled:
        got = compiled.run([x])
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape
        atol = ATOL * max(1.0, float(np.abs(e).max())) if scaled else ATOL
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=atol)


SMALL = {
    "small_cnn": lambda: zoo.small_cnn(),
    "vgg16_32": lambda: zoo.vgg16(image_size=32, width=0.125, num_classes=10),
    "resnet18_32": lambda: zoo.resnet18(image_size=32, width=0.25, num_classes=10),
    "resnet50_32": lambda: zoo.resnet50(image_size=32, width=0.125, num_classes=10),
    "mobilenet_v2_32": lambda: zoo.mobilenet_v2(image_size=32, width=0.25, num_classes=10),
    "gru_small": lambda: zoo.gru(input_size=13, hidden_size=24, num_layers=2, seq_len=7),
    "lstm_small": lambda: zoo.lstm(input_size=13, hidden_size=24, num_layers=2, seq_len=7),
    "rnn_small": lambda: zoo.rnn(input_size=13, hidden_size=24, num_layers=2, seq_len=7),
}


@pytest.mark.parametrize(
    ("name", "threads"), spread(sorted(SMALL), [(1,), (2,)], lambda name, n: f"{n}-{name}")
)
def test_small_models_host(name: str, threads: int, tmp_path: Path) -> None:
    """Every small model on the host; the fast tier with 1 or 2 threads in turn."""
    check_model(SMALL[name](), tmp_path, "host", threads)


@pytest.mark.parametrize("name", ["small_cnn", "resnet18_32", "mobilenet_v2_32"])
def test_small_models_host_avx512(name: str, tmp_path: Path) -> None:
    check_model(SMALL[name](), tmp_path, "host-avx512")


@pytest.mark.parametrize("name", sorted(SMALL))
def test_small_models_aarch64(name: str, tmp_path: Path) -> None:
    check_model(SMALL[name](), tmp_path, "aarch64", threads=2)


FULL = {
    "resnet18": (lambda: zoo.resnet18(), []),
    "mobilenet_v2": (lambda: zoo.mobilenet_v2(), []),
    "gru_2x1024": (lambda: zoo.gru(), []),
    "lstm_2x1024": (lambda: zoo.lstm(), []),
    "vgg16": (lambda: zoo.vgg16(), [pytest.mark.slow]),
    "resnet50": (lambda: zoo.resnet50(), [pytest.mark.slow]),
}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=marks) for n, (_, marks) in sorted(FULL.items())]
)
def test_full_size_models_host(name: str, tmp_path: Path) -> None:
    check_model(FULL[name][0](), tmp_path, "host", scaled=True)


PRUNED = {
    "resnet18_32": (lambda: zoo.resnet18(image_size=32, width=0.5, num_classes=10), (8, 16), 6.0),
    "vgg16_32": (lambda: zoo.vgg16(image_size=32, width=0.25, num_classes=10), (8, 16), 8.0),
    "mobilenet_v2_32": (lambda: zoo.mobilenet_v2(image_size=32, width=1.0, num_classes=10), (4, 16), 3.0),
    "gru_small": (lambda: zoo.gru(input_size=40, hidden_size=64, num_layers=2, seq_len=6), (16, 32), 10.0),
}


def pruned(name: str) -> onnx.ModelProto:
    from grimc.prune import prune_model

    build, block, rate = PRUNED[name]
    return prune_model(build(), block=block, rate=rate).model


@pytest.mark.parametrize("name", sorted(PRUNED))
@pytest.mark.parametrize("target", ["host", "aarch64"])
def test_pruned_models_are_detected_and_match(name: str, target: str, tmp_path: Path) -> None:
    from grimc.driver import compile_model

    model = pruned(name)
    gen = compile_model(model, target=target, threads=2)
    sparse = [k for k in gen.kernels if k.source_op.startswith("bcr.")]
    assert sparse, "grimc prune output was not detected as BCR"
    check_model(model, tmp_path, target, threads=2)


def hand_pruned_odd_model() -> onnx.ModelProto:
    """BCR made by hand (numpy, not grimc prune), every size off the block and vector grid:
    conv 21->37 3x3 (8x16 blocks keep 8x4), strided conv 37->45 (8x16 keep 4x6, rows and
    columns pruned), GEMM 45->70 (4x16 keep 4x3), on a 13x11 input."""
    from onnx import TensorProto, helper, numpy_helper

    from tests.bcr.test_bcr_passes import normal, plant

    rng = np.random.default_rng(11)

    def bcr_weight(shape: tuple[int, ...], block: tuple[int, int], keep: tuple[int, int]):
        w = plant(rng, normal(rng, shape[0], int(np.prod(shape[1:]))) * 0.1, block, keep)
        return w.reshape(shape).astype(np.float32)

    inits = {
        "w1": bcr_weight((37, 21, 3, 3), (8, 16), (8, 4)),
        "w2": bcr_weight((45, 37, 3, 3), (8, 16), (4, 6)),
        "w3": bcr_weight((70, 45), (4, 16), (4, 3)),
        "b3": rng.standard_normal(70).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 0, 1, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["c2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "hand_pruned_odd",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 21, 13, 11])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 70])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("target", ["host", "aarch64"])
def test_hand_pruned_odd_shapes_detected_and_match(target: str, tmp_path: Path) -> None:
    from grimc.driver import compile_model

    model = hand_pruned_odd_model()
    gen = compile_model(model, target=target, threads=2)
    sparse = {k.label for k in gen.kernels if k.source_op.startswith("bcr.")}
    assert sparse == {"w1", "w2", "w3"}  # layers of unnamed nodes are named by their weight
    check_model(model, tmp_path, target, threads=2)


SANITIZED = {
    "small_cnn": lambda: zoo.small_cnn(),
    "mobilenet_v2_32": lambda: zoo.mobilenet_v2(image_size=32, width=0.25, num_classes=10),
    "lstm_small": lambda: zoo.lstm(input_size=13, hidden_size=24, num_layers=2, seq_len=7),
    "resnet18_32_pruned": lambda: pruned("resnet18_32"),
    "gru_small_pruned": lambda: pruned("gru_small"),
    "hand_pruned_odd": hand_pruned_odd_model,
}


SANITIZED_SLOW = {"mobilenet_v2_32"}
"""Whole models that repeat what fast ones cover under the sanitizers: small_cnn has
every kernel kind of mobilenet_v2_32, resnet18_32_pruned has residual arenas."""


def test_fast_sanitized_models_cover_the_kernel_kinds_of_the_slow_ones() -> None:
    from grimc.driver import compile_model

    def kinds(names: set[str]) -> set[str]:
        return {k.kind for n in names for k in compile_model(SANITIZED[n](), threads=2).kernels}

    assert kinds(SANITIZED_SLOW) <= kinds({"small_cnn"})


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=(pytest.mark.slow,) if n in SANITIZED_SLOW else ()) for n in sorted(SANITIZED)],
)
def test_models_clean_under_asan_ubsan(name: str, tmp_path: Path) -> None:
    """Generated code for whole models runs clean under ASan+UBSan (any report aborts)."""
    from grimc.driver import compile_model
    from grimc.runner import ExeModel

    model = SANITIZED[name]()
    gen = compile_model(model, target="host", threads=2)
    exe = ExeModel.build(gen, tmp_path, target="host", threads=2, sanitize=("address", "undefined"))
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    (got,) = exe.run([x])
    np.testing.assert_allclose(got, reference(model, x)[0], rtol=RTOL, atol=ATOL)
