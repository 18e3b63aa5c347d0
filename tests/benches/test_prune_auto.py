"""benches.prune_auto: a shortened run writes its report with the fixed and --auto rows, and
every --auto choice it reports meets the latency target it was given (predicted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benches.prune_auto import main


@pytest.mark.slow  # trains three pruned models and compiles ~25 builds: minutes on 2 cores
def test_shortened_run_writes_the_report(tmp_path: Path) -> None:
    assert main(["--models", "digits", "--seeds", "0", "--shorten", "20", "--rounds", "3",
                 "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "prune_auto.json").read_text())
    (model,) = results["models"]
    (run,) = model["runs"]
    assert set(run["accuracy"]) == {"fixed", "auto = fixed ms", "auto faster"}
    assert all(0.0 <= a <= 1.0 for a in run["accuracy"].values())
    predicted = run["predicted_ms"]
    assert predicted["auto = fixed ms"] <= predicted["fixed"] * (1 + 1e-9)
    assert all(ms > 0 for ms in run["measured_ms"].values())
    md = (tmp_path / "prune_auto.md").read_text()
    assert "| fixed 8x16 @ 8x |" in md and "Against fixed 8x16 @ 8x" in md
    assert "model latency (sum of kernels)" in md
