"""`python -m benches.opencl` runs dense and BCR on the OpenCL device and names it."""

from __future__ import annotations

from pathlib import Path

import pytest

from benches import opencl as bench
from tests.opencl.clenv import require_opencl


@pytest.mark.slow
def test_bench_reports_dense_and_bcr(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    require_opencl()
    out = tmp_path / "opencl.md"
    assert bench.main(["--models", "small_cnn", "--repeat", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in printed[1:]]
    assert [r[:2] for r in rows] == [["small_cnn", "dense"], ["small_cnn", "bcr4x"]]
    assert all("|" in " ".join(r) for r in rows)  # "<platform> | <device>"
    assert int(rows[0][3]) == 0 and int(rows[1][3]) >= 1  # BCR kernels only when pruned
    assert all(float(r[6]) < 1e-4 for r in rows)  # max |diff| from onnxruntime
    # The Markdown report holds the same table, the command and each run's kernel profile.
    text = out.read_text()
    assert all(line in text for line in printed)
    assert "`python -m benches.opencl --models small_cnn --repeat 1 --out " in text
    assert [line for line in text.splitlines() if line.startswith("## ")] == [
        "## small_cnn dense", "## small_cnn bcr4x"]
    assert text.count("sum of kernels") == 2


def test_bench_rejects_unknown_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--models", "nope"]) == 2
    assert "unknown model" in capsys.readouterr().err
