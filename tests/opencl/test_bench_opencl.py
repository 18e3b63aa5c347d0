"""`python -m benches.opencl` runs dense and BCR on the OpenCL device and names it."""

from __future__ import annotations

import pytest

from benches import opencl as bench
from tests.opencl.clenv import require_opencl


@pytest.mark.slow
def test_bench_reports_dense_and_bcr(capsys: pytest.CaptureFixture[str]) -> None:
    require_opencl()
    assert bench.main(["--models", "small_cnn", "--repeat", "1"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert [r[:2] for r in rows] == [["small_cnn", "dense"], ["small_cnn", "bcr4x"]]
    assert all("|" in " ".join(r) for r in rows)  # "<platform> | <device>"
    assert int(rows[0][3]) == 0 and int(rows[1][3]) >= 1  # BCR kernels only when pruned
    assert all(float(r[6]) < 1e-4 for r in rows)  # max |diff| from onnxruntime


def test_bench_rejects_unknown_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--models", "nope"]) == 2
    assert "unknown model" in capsys.readouterr().err
