"""benches.bcr_models end to end on a small model, and its parts.

No timing is asserted: only that every engine ran, matched onnxruntime, and
that the report (markdown + JSON) has every table the issue asks for.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benches.bcr_models import cases, cli, engines
from benches.peers.cli import TOLERANCE
from grimc.runner import KernelProfile

REPO = Path(__file__).resolve().parents[2]
TARGET = "host"  # runs on any x86-64 CI machine; the benchmark itself defaults to AVX-512


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, str]:
    """`--quick` on the small ResNet-18 at 1 thread: (report JSON, markdown, stdout)."""
    tmp = tmp_path_factory.mktemp("bcr_models")
    out = tmp / "report.md"
    args = ["--models", "resnet18", "--quick", "--threads", "1", "--quiet-wait", "0",
            "--target", TARGET, "--out", str(out), "--workdir", str(tmp / "work")]  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "benches.bcr_models", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.with_suffix(".json").read_text()), out.read_text(), proc.stdout


def test_every_engine_ran_and_matched_onnxruntime(quick_report: tuple[dict, str, str]) -> None:
    data, _, _ = quick_report
    (row,) = data["rows"]
    assert row["case"] == "resnet18-6x" and row["threads"] == 1
    assert set(row["engines"]) == {e.name for e in engines.ENGINES}
    for name, result in row["engines"].items():
        assert result["status"] == "ok", (name, result)
        assert result["rel_err"] <= TOLERANCE
        assert result["ms"] > 0
    kernels = {name: row["engines"][name]["kernels"] for name in ("dense", "bcr", "csr")}
    assert "bcr_spmm" not in kernels["dense"] and "csr_conv" not in kernels["dense"]
    assert kernels["bcr"]["bcr_spmm"] == row["prune"]["pruned_layers"]
    assert kernels["csr"]["csr_conv"] == row["prune"]["pruned_layers"]
    assert row["prune"]["compression"] > 5


def test_report_has_every_table(quick_report: tuple[dict, str, str]) -> None:
    data, md, stdout = quick_report
    assert data["fma_peak_gflops"] > 0
    assert data["command"].startswith("python -m benches.bcr_models --models resnet18")
    assert data["machine"]["cpu"] and data["rows"][0]["cpu_busy_before"] is not None
    for heading in ("## Summary", "## Engines, per model", "## Ablation", "## Per layer"):
        assert heading in md
    for e in engines.ENGINES:
        assert f"| {e.label} |" in md
        assert e.label in stdout
    assert "WRONG:" not in md and "ERROR:" not in md


def test_per_layer_profile_covers_the_bcr_layers(quick_report: tuple[dict, str, str]) -> None:
    data, md, _ = quick_report
    row = data["rows"][0]
    assert "profile_error" not in row
    sparse = [p for p in row["layers"] if p["op"].startswith("bcr.")]
    assert len(sparse) == row["prune"]["pruned_layers"]
    assert all(p["flops"] > 0 and p["ms"] > 0 and p["gflops"] > 0 for p in sparse)
    assert all(f"| {p['label']} |" in md for p in row["layers"])


def test_no_rle_engine_clears_rle_and_keeps_the_tile(tmp_path: Path) -> None:
    pruned = cases.prune_case(cases.select(["resnet18"], quick=True)[0], tmp_path)
    by_name = {e.name: e for e in engines.ENGINES}
    gens = {
        n: engines.compile_engine(by_name[n], pruned.path, TARGET, 1) for n in ("bcr", "no-rle")
    }
    params = {n: [k.params for k in g.kernels if k.kind == "bcr_spmm"] for n, g in gens.items()}
    assert params["bcr"] and all(p["rle"] for p in params["bcr"])
    assert all(not p["rle"] for p in params["no-rle"])
    assert [(p["rows"], p["nv"]) for p in params["bcr"]] == [
        (p["rows"], p["nv"]) for p in params["no-rle"]
    ]


def test_no_reorder_engine_drops_only_the_reorder_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(engines, "optimize", lambda module, passes, **kw: seen.append(passes))
    monkeypatch.setattr(engines, "import_model", lambda path: None)
    monkeypatch.setattr(engines, "compile_model", lambda *a, **kw: None)
    by_name = {e.name: e for e in engines.ENGINES}
    for name in ("bcr", "no-reorder"):
        engines.compile_engine(by_name[name], Path("m.onnx"), "host-avx512", 2)
    full, dropped = seen
    assert "bcr-reorder{threads=2}" in full
    assert dropped == [p for p in full if not p.startswith("bcr-reorder")]


def test_kernels_of_one_layer_are_summed() -> None:
    profiles = [
        KernelProfile("k0_phase_split", "bcr.conv2d", "conv_5", 0.0, 0.5, 1),
        KernelProfile("k1_bcr_spmm", "bcr.conv2d", "conv_5", 3e6, 1.5, 1),
        KernelProfile("k2_pool2d", "graph.max_pool", "", 1e3, 0.25, 1),
        KernelProfile("k3_pool2d", "graph.max_pool", "", 1e3, 0.25, 1),
    ]
    layers = cli.group_layers(profiles, np.array([p.ms for p in profiles]))
    assert [(g["label"], g["kernels"], g["ms"], g["flops"]) for g in layers] == [
        ("conv_5", ["k0_phase_split", "k1_bcr_spmm"], 2.0, 3e6),
        ("k2_pool2d", ["k2_pool2d"], 0.25, 1e3),
        ("k3_pool2d", ["k3_pool2d"], 0.25, 1e3),
    ]
    rated = cli.with_rates(layers[0], peak=3.0)
    assert rated["gflops"] == pytest.approx(1.5) and rated["peak_pct"] == pytest.approx(50.0)


class FakeTime:
    """perf_counter and sleep on a counter that only sleeping advances."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_settled_clock_leaves_out_the_pause_between_engines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeTime()
    monkeypatch.setattr(engines, "time", fake)
    clock = engines.SettledClock(0.05)
    calls: list[str] = []
    a = clock.wrap(lambda: calls.append("a"))
    b = clock.wrap(lambda: calls.append("b"))
    t0 = clock()
    a()
    a()
    b()
    assert calls == ["a", "a", "b"]
    assert fake.now == pytest.approx(0.1)  # paused before the first a and before b only
    assert clock() - t0 == pytest.approx(0.0)


def test_quick_cases_keep_rates_and_blocks() -> None:
    full, quick = cases.select(list(cases.CASES), False), cases.select(list(cases.CASES), True)
    assert [(c.name, c.block, c.rate) for c in full] == [(c.name, c.block, c.rate) for c in quick]
    assert [c.name for c in full] == ["vgg16-8x", "vgg16-16x", "resnet18-6x", "mobilenet_v2-3x",
                                      "gru-10x"]  # fmt: skip
    assert {c.name for c in full if c.target} == {"vgg16-8x", "vgg16-16x", "gru-10x"}
