"""The learned cost model (grimc.tune.learned) on deterministic instruction counts.

Without xgboost the search takes the plain genetic algorithm's decisions, one
for one; with it, the model's batches differ. On a BCR conv its ranking of
held-out candidates agrees with their measured counts, and the candidates it
picks cost less than the ones the plain algorithm measures. Real clang builds
and qemu runs; a Measurer shared between runs counts each build once.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from grimc.dialects.sched import KnobsAttr, target_of
from grimc.driver import CompileOptions, import_model, optimize
from grimc.tune.learned import MIN_MEASURED, CostModel, features
from grimc.tune.measure import Measurer
from grimc.tune.search import TaskResult, tune_task
from grimc.tune.tasks import Task, extract_tasks
from grimc.tunedb import TuningDB
from grimc.zoo.builder import GraphBuilder
from tests.conftest import require
from tests.tune.helpers import bcr_model, record_batches

Batches = list[list[tuple[KnobsAttr, str, float]]]


@pytest.fixture(scope="module", autouse=True)
def xgboost_installed() -> None:
    try:
        import xgboost  # noqa: F401
    except ImportError:
        require(False, "the Python package xgboost", "xgboost",
                install="grimc[learned] (pip install -e '.[learned]')")


def aarch64_task(tmp: Path, build: Callable[[GraphBuilder, str], str], shape: tuple[int, ...]):
    path = bcr_model(tmp / "model.onnx", build, shape)
    module = optimize(import_model(str(path)), CompileOptions(target="aarch64", use_tuning_db=False))
    (task,) = extract_tasks(module)
    return module, task


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Callable[[Measurer, Task, int, Any], tuple[TaskResult, Batches]]:
    """tune_task for `batches` batches, with every batch's outcomes recorded."""
    log = record_batches(monkeypatch)

    def run(m: Measurer, task: Task, batches: int, learned: bool | None) -> tuple[TaskResult, Batches]:
        log.clear()
        result = tune_task(task, m, time.monotonic() + 3600, seed=1, batches=batches, learned=learned)
        return result, [[(o.attr, o.status, o.cost) for o in b] for b in log]

    return run


def decisions(result: TaskResult) -> tuple[Any, ...]:
    return (result.best, result.default_cost, result.best_cost, result.measured,
            [o.attr for o in result.rejected])


def test_without_xgboost_the_search_is_unchanged(tmp_path: Path, recorder: Any) -> None:
    module, task = aarch64_task(tmp_path, lambda b, x: b.linear(x, 64), (1, 64))
    with Measurer(module, target_of(module), 1, tmp_path / "w") as m:
        plain, plain_batches = recorder(m, task, 3, False)
        with pytest.MonkeyPatch.context() as mp:
            mp.setitem(sys.modules, "xgboost", None)  # as if it were not installed
            missing, missing_batches = recorder(m, task, 3, None)
        learned, learned_batches = recorder(m, task, 3, None)  # installed: used
    assert missing_batches == plain_batches and decisions(missing) == decisions(plain)
    # the third batch is the first with enough measurements: only there the model chooses
    assert learned_batches[:2] == plain_batches[:2]
    assert sum(o[1] == "ok" for b in plain_batches[:2] for o in b[1:]) + 1 >= MIN_MEASURED
    assert learned_batches[2] != plain_batches[2]
    assert learned.measured == plain.measured


def test_features_tell_every_knob_of_the_space_apart() -> None:
    """Each knob the search varies (a joint OpenCL work-group size too) moves the row."""
    from grimc.tune.space import SPACE

    def knobs(space: dict[Any, tuple[Any, ...]], choice: dict[Any, int]) -> dict[str, Any]:
        """The knobs with each knob's first value, or the one `choice` picks."""
        out: dict[str, Any] = {}
        for knob, values in space.items():
            value = values[choice.get(knob, 0)]
            out.update(zip(knob, value, strict=True) if isinstance(knob, tuple) else {knob: value})
        return out

    for kind, space in SPACE.items():
        base = features(kind, knobs(space, {}))
        for knob in space:
            row = features(kind, knobs(space, {knob: 1}))
            assert row != base and len(row) == len(base), (kind, knob)


def ranks(values: list[float]) -> np.ndarray:
    """Ranks with ties averaged (for Spearman's correlation)."""
    arr = np.asarray(values)
    return np.array([np.sum(arr < v) + (np.sum(arr == v) - 1) / 2 for v in arr])


@pytest.mark.slow
def test_learned_model_ranks_and_picks_better_candidates(tmp_path: Path, recorder: Any) -> None:
    module, task = aarch64_task(tmp_path, lambda b, x: b.conv(x, 32, 3), (1, 16, 8, 8))
    with Measurer(module, target_of(module), 1, tmp_path / "w") as m:
        plain, plain_batches = recorder(m, task, 4, False)
        learned, learned_batches = recorder(m, task, 4, True)

    def ok(batches: Batches) -> dict[KnobsAttr, float]:
        return {a: c for b in batches for a, s, c in b[1:] if s == "ok"}

    default = plain_batches[0][0][2]
    train = {a: c / default for a, c in ok(plain_batches[:2]).items()}
    held = {a: c for a, c in ok(plain_batches[2:4]).items() if a not in train}
    assert len(train) >= MIN_MEASURED and len(held) >= 6
    order = CostModel(seed=1).rank(task.kind, train, [], list(held))
    assert order is not None
    predicted = [order.index(a) for a in held]
    rho = np.corrcoef(ranks(predicted), ranks(list(held.values())))[0, 1]
    assert rho > 0, rho
    # the model's batches (from the third on): cheaper picks than the plain algorithm's
    assert learned_batches[:2] == plain_batches[:2]
    picked = [c for b in learned_batches[2:4] for _, s, c in b[2:] if s == "ok"]
    bred = [c for b in plain_batches[2:4] for _, s, c in b[2:] if s == "ok"]
    assert statistics.median(picked) < statistics.median(bred)
    assert learned.measured == plain.measured
    assert learned.best_cost <= learned.default_cost


def test_learned_without_xgboost_is_one_error_line(tmp_path: Path) -> None:
    """--learned asks for the model: without xgboost (its import blocked in the child)
    that is a usage error, exit 2, before anything is measured."""
    import subprocess

    from tests.conftest import tool_env

    path = bcr_model(tmp_path / "model.onnx", lambda b, x: b.linear(x, 64), (1, 64))
    code = ("import sys; sys.modules['xgboost'] = None; from grimc.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    db = tmp_path / "t.sqlite"
    proc = subprocess.run(
        [sys.executable, "-c", code, "tune", str(path), "--target", "aarch64",
         "--learned", "--db", str(db)],
        capture_output=True, text=True, env=tool_env(), timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "grimc[learned]" in proc.stderr
    assert not db.exists() or not list(TuningDB(db).records())
