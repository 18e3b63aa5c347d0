"""benches.accuracy: the real data sets load as documented, the .ts reader parses the
format, and a shortened run writes its report (md, json, png) with every column."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benches.accuracy.__main__ import main
from benches.accuracy.data import digits, parse_ts, vowels

TS = """# comment
@problemName Tiny
@univariate false
@dimensions 2
@classLabel true 1 2
@data
1.0,2.0,3.0:4.0,5.0,6.0:2
0.5:0.25:1
"""


def test_parse_ts_reads_unequal_multivariate_series() -> None:
    series, labels = parse_ts(TS)
    assert [s.shape for s in series] == [(3, 2), (1, 2)]
    np.testing.assert_array_equal(series[0][:, 1], [4.0, 5.0, 6.0])
    np.testing.assert_array_equal(labels, [1, 0])


def test_data_sets_have_their_published_sizes() -> None:
    train, test = digits()
    assert train.x.shape == (1347, 1, 8, 8) and test.x.shape == (450, 1, 8, 8)
    assert 0.0 <= train.x.min() and train.x.max() <= 1.0
    train, test = vowels()
    assert train.x.shape == (270, 29, 12) and test.x.shape == (370, 29, 12)
    assert set(train.y) == set(test.y) == set(range(9))
    assert np.all(train.x[:, 0] == 0) or np.any(train.x[:, -1] != 0)  # padding in front


@pytest.mark.slow  # trains every method and compiles the model: ~20 s on a quiet machine
def test_shortened_run_writes_the_report(tmp_path: Path) -> None:
    assert main(["--models", "digits", "--seeds", "0", "--rates", "8", "--shorten", "20",
                 "--runs", "5", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "accuracy.json").read_text())
    run = results["models"][0]["runs"][0]
    for column in ("dense", "one-shot", "retrained", "gradual", "admm", "distilled"):
        assert 0.0 <= run[column] <= 1.0
    assert run["retrained"] > run["one-shot"]
    latency = run["latency"]  # grimc computes what onnxruntime does, at fp32 tolerance
    assert latency["max_abs_diff"] <= 1e-5 + 1e-4 * latency["max_abs_ref"]
    assert latency["grimc_ms"] > 0 and latency["ort_ms"] > 0
    md = (tmp_path / "accuracy.md").read_text()
    assert "| 8x |" in md and "Done-when checks" in md
    assert (tmp_path / "accuracy.png").read_bytes()[:4] == b"\x89PNG"


def test_training_is_deterministic_for_a_seed() -> None:
    import torch

    from benches.accuracy.__main__ import deterministic
    from benches.accuracy.models import CASES
    from grimc.train import BCRPruner
    from grimc.train.fit import fit

    case = CASES["digits"]
    train, _ = digits()
    data = case.samples(train)
    data.inputs, data.labels = [data.inputs[0][:256]], data.labels[:256]

    def trained(seed: int) -> dict:
        deterministic(seed, 1)
        model = case.build()
        fit(model, data, epochs=1, seed=seed, pruner=BCRPruner(model, rate=8), batch_size=32)
        return {k: v.clone() for k, v in model.state_dict().items()}

    a, b, c = trained(0), trained(0), trained(1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
