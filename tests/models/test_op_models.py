"""Representative models of the operator families of issue 12, built in code
(grimc.zoo, seeded), compiled and compared with onnxruntime on host and aarch64.

aarch64 runs under qemu (40-120x slower than native); variants that take
longer than ~1 min there are slow-tier. Tolerance rtol 1e-4 / atol 1e-5 (outputs are O(1-5)).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from grimc import zoo
from grimc.driver import compile_model
from grimc.zoo.vad import SAMPLE_RATES
from tests.conftest import run_tool
from tests.models.test_models import check_model


def bert() -> onnx.ModelProto:
    """4 layers, sequence 128, hidden 256, 4 heads, feed-forward 1024."""
    return zoo.bert_encoder(seq_len=128, hidden=256, heads=4, num_layers=4)


FAMILIES = {
    "yolo_detector": lambda: zoo.yolo_detector(image_size=64, width=0.25, num_classes=5),
    "text_recognizer": lambda: zoo.text_recognizer(image_width=128, width=0.5),
    "fpn_text_detector": lambda: zoo.fpn_text_detector(image_size=64, width=0.5),
    "super_resolution_d2s": lambda: zoo.super_resolution(image_size=32, upscale=3),
    "super_resolution_deconv": lambda: zoo.super_resolution(
        image_size=32, upscale=2, upsample="conv_transpose"
    ),
    "log_mel": lambda: zoo.log_mel(frames=50),
}
"""One model per family; the operators each one exercises are asserted below."""

FAMILY_OPS = {
    "yolo_detector": {"Split", "Concat", "Sigmoid", "Mul", "Softmax", "Resize", "MaxPool"},
    "text_recognizer": {"LayerNormalization", "ReduceMean", "Softmax", "MatMul", "Erf"},
    "fpn_text_detector": {"Resize", "ConvTranspose", "Concat", "Sigmoid"},
    "super_resolution_d2s": {"DepthToSpace", "Tanh"},
    "super_resolution_deconv": {"ConvTranspose"},
    "log_mel": {"Pow", "Log", "ReduceMax", "MatMul", "Max"},
}
SLOW_ON_AARCH64 = {"yolo_detector"}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_family_model_host(name: str, tmp_path: Path) -> None:
    model = FAMILIES[name]()
    assert FAMILY_OPS[name] <= {n.op_type for n in model.graph.node}
    check_model(model, tmp_path, "host")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=[pytest.mark.slow] if n in SLOW_ON_AARCH64 else [])
        for n in sorted(FAMILIES)
    ],
)
def test_family_model_aarch64(name: str, tmp_path: Path) -> None:
    check_model(FAMILIES[name](), tmp_path, "aarch64", threads=2)


def pruned_bert(model: onnx.ModelProto) -> onnx.ModelProto:
    from grimc.prune import prune_model

    return prune_model(model, block=(8, 16), rate=8).model


def test_bert_is_the_exporters_attention_pattern() -> None:
    ops = [n.op_type for n in bert().graph.node]
    assert ops.count("MatMul") == 4 * (6 + 2)  # q, k, v, out, ff1, ff2 + scores, context
    assert ops.count("LayerNormalization") == 8 and ops.count("Softmax") == 4
    assert {"Reshape", "Transpose", "Erf", "Div"} <= set(ops)


def test_bert_encoder_host(tmp_path: Path) -> None:
    check_model(bert(), tmp_path, "host")


def test_bert_encoder_aarch64(tmp_path: Path) -> None:
    check_model(bert(), tmp_path, "aarch64", threads=2)


def _linear_kernels(model: onnx.ModelProto, target: str) -> dict[str, str]:
    """Kernel kind per BCR weight label of the compiled model."""
    gen = compile_model(model, target=target, threads=2)
    return {k.label: k.kind for k in gen.kernels if k.source_op == "bcr.matmul"}


@pytest.mark.parametrize("target", ["host", "aarch64"])
def test_bert_pruned_8x_runs_on_sparse_gemm(target: str, tmp_path: Path) -> None:
    """grimc prune at 8x keeps 1/8 of every Linear weight; bcr-detect finds all 24
    and, with M = 128 rows, they run on the sparse GEMM kernel (not GEMV)."""
    model = pruned_bert(bert())
    kernels = _linear_kernels(model, target)
    assert len(kernels) == 24, sorted(kernels)
    assert set(kernels.values()) == {"bcr_spmm"}
    check_model(model, tmp_path, target, threads=2)


def test_grimc_prune_and_inspect_cli_on_bert(tmp_path: Path) -> None:
    """The command line: `grimc prune --rate 8` writes the pruned encoder and
    `grimc inspect --json` reports its 24 Linear weights as 8x16 BCR at 1/8."""
    dense, sparse = tmp_path / "bert.onnx", tmp_path / "bert_bcr.onnx"
    onnx.save(bert(), dense)
    pruning = run_tool(["grimc", "prune", str(dense), "--rate", "8", "-o", str(sparse)])
    assert pruning.returncode == 0, pruning.stderr
    inspecting = run_tool(["grimc", "inspect", "--json", str(sparse)])
    assert inspecting.returncode == 0, inspecting.stderr
    layers = json.loads(inspecting.stdout)["layers"]
    bcr = [r for r in layers if r["kernel"] == "bcr"]
    assert len(bcr) == 24
    assert all(r["block"] == [8, 16] and r["density"] == 0.125 for r in bcr)
    dense_rest = [r for r in layers if r["kernel"] != "bcr"]
    assert len(dense_rest) == 8 and all("not a constant" in r["note"] for r in dense_rest)


@pytest.mark.parametrize("target", ["host", "aarch64"])
@pytest.mark.parametrize("rate", SAMPLE_RATES)
def test_vad_specialized_sample_rate(rate: int, target: str, tmp_path: Path) -> None:
    """The voice-activity detector compiled with --input-value sr=RATE: the If
    keeps that rate's front end and the result matches onnxruntime fed sr."""
    model = zoo.vad()
    assert {"If", "Equal", "Conv", "LSTM", "Sigmoid"} <= {n.op_type for n in model.graph.node}
    gen = compile_model(model, target=target, input_values={"sr": rate})
    assert [d.name for d in gen.inputs] == ["input"]
    check_model(
        model, tmp_path, target, threads=2, input_values={"sr": np.array(rate, dtype=np.int64)}
    )


def test_vad_branches_differ() -> None:
    """Each rate compiles its own front end: one more conv for 8 kHz."""
    convs = {
        rate: sum(k.source_op == "graph.conv" for k in compile_model(
            zoo.vad(), target="host", input_values={"sr": rate}
        ).kernels)
        for rate in SAMPLE_RATES
    }
    assert convs == {16000: 2, 8000: 3}


def test_vad_cli(tmp_path: Path) -> None:
    """grimc run --input-value sr=8000 --check matches onnxruntime; without the
    value the sample rate is an int64 run-time input (the If picks its branch at run
    time), and both rates match onnxruntime too."""
    path = tmp_path / "vad.onnx"
    onnx.save(zoo.vad(), path)
    ok = run_tool(["grimc", "run", str(path), "--input-value", "sr=8000", "--check", "-q"])
    assert ok.returncode == 0, ok.stderr
    assert "onnxruntime check: OK" in ok.stdout
    for rate in (16000, 8000):
        sr = tmp_path / f"sr{rate}.npy"
        np.save(sr, np.array(rate, np.int64))
        run = run_tool(["grimc", "run", str(path), "--input", f"sr={sr}", "--check", "-q"])
        assert run.returncode == 0, run.stderr
        assert "onnxruntime check: OK" in run.stdout
