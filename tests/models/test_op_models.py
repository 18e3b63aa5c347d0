"""Representative models of the operator families of issue 12, built in code
(grimc.zoo, seeded), compiled and compared with onnxruntime on host and aarch64.

aarch64 runs under qemu (40-120x slower than native); variants that take
longer than ~20 s there are slow-tier. Tolerance rtol 1e-4 / atol 1e-5 (outputs are O(1-5)).
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from grimc import zoo
from grimc.driver import compile_model
from tests.conftest import run_tool
from tests.models.test_models import check_model


def bert() -> onnx.ModelProto:
    """4 layers, sequence 128, hidden 256, 4 heads, feed-forward 1024."""
    return zoo.bert_encoder(seq_len=128, hidden=256, heads=4, num_layers=4)


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
