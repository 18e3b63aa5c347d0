"""benches.tuning's statistics and its per-layer set (the bench itself runs for minutes)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import onnx.numpy_helper
import pytest

from benches.tuning import benches, compare, layer_set, near_share, paired, verdict
from grimc.tune.search import TaskResult
from grimc.tune.tuner import TuneReport


def test_paired_ratio_is_the_median_of_per_round_ratios() -> None:
    base = [1.0, 2.0, 1.0, 2.0, 1.0]
    ratio, half = paired([0.9, 1.8, 0.9, 1.8, 0.9], base)  # drift hits both alike
    assert ratio == pytest.approx(0.9) and half == pytest.approx(0.0)
    ratio, half = paired([1.0, 2.2, 0.8, 2.0, 1.0], base)
    assert ratio == pytest.approx(1.0) and half > 0.05


def test_compare_counts_the_spread_between_builds_of_the_same_code() -> None:
    """Three builds each: identical ones leave only the rounds' noise; builds of the same
    code 5 % apart widen the floor so a 5 % difference is no verdict."""
    flat = [[1.0] * 9 for _ in range(3)]
    ratio, noise = compare(flat, [[0.9] * 9 for _ in range(3)])
    assert ratio == pytest.approx(0.9) and noise == pytest.approx(0.0)
    placed = [[1.0] * 9, [1.05] * 9, [0.95] * 9]  # one schedule, three placements
    ratio, noise = compare(placed, [[v * 0.97 for v in b] for b in placed])
    assert ratio == pytest.approx(0.97) and noise > 0.03
    assert verdict(ratio, noise) == "within noise"


def test_verdict_needs_more_than_the_noise() -> None:
    assert verdict(0.89, 0.05) == "faster"
    assert verdict(0.97, 0.05) == "within noise"
    assert verdict(1.06, 0.05) == "slower"


def _result(default: float, peak: float, layers: int) -> TaskResult:
    task = SimpleNamespace(layers=[f"l{i}" for i in range(layers)], default="d")
    return TaskResult(task, "d", default, default, 0.02, peak_cost=peak)  # type: ignore[arg-type]


def test_near_share_weighs_tasks_by_kernel_time_and_layers() -> None:
    report = TuneReport(3, 0, [_result(1.0, 0.95, 1), _result(1.0, 0.5, 2), _result(2.0, 2.0, 1)])
    # near: 1.0 (0.95x) + 2.0 (1.0x) of 1.0 + 2 x 1.0 + 2.0
    assert near_share(report) == pytest.approx(3.0 / 5.0)
    assert near_share(TuneReport(0, 0)) == 1.0


def test_layer_set_models_are_pruned_at_their_rates() -> None:
    for bench in layer_set(quick=True):
        model = bench.model()
        (w,) = [onnx.numpy_helper.to_array(t) for t in model.graph.initializer if t.dims[0] > 1
                and len(t.dims) > 1]
        assert bench.rate is not None
        assert np.count_nonzero(w) / w.size == pytest.approx(1.0 / bench.rate, rel=0.25), bench.name


def test_gru_dense_is_the_unpruned_gru() -> None:
    (dense,) = benches(["gru-dense"], quick=True)
    (pruned,) = benches(["gru"], quick=True)
    assert dense.rate is None and pruned.rate == 10.0
    w = [a for t in dense.model().graph.initializer if (a := onnx.numpy_helper.to_array(t)).ndim == 3]
    assert w and all(np.count_nonzero(a) == a.size for a in w)
