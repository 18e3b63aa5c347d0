"""The in-model check of tuned schedules (grimc.tune.confirm): real builds, real timings;
the assertions are on its decisions, made with a margin no noise reaches (3-4x)."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from grimc.dialects.sched import target_of
from grimc.driver import import_model, optimize
from grimc.options import CompileOptions
from grimc.prune import prune_model
from grimc.tune.confirm import confirm_in_model
from grimc.tune.search import TaskResult
from grimc.tune.tasks import extract_tasks
from grimc.tune.tuner import TuneReport, format_report, tune_model
from grimc.tunedb import TuningDB, metric_for, target_key, version_key
from grimc.zoo.builder import GraphBuilder

TARGET = "host"


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two BCR-sparse 3x3 convs, 64->64 at 28x28: two tasks of real size."""
    b = GraphBuilder(0, 17)
    x = b.input("input", (1, 64, 28, 28))
    model = b.finish(["input"], {"output": b.relu(b.conv(b.conv(x, 64, 3), 64, 3))}, "convs")
    path = tmp_path_factory.mktemp("confirm") / "convs.onnx"
    onnx.save(prune_model(model, block="8x16", rate=4.0).model, path)
    return path


def test_a_winner_slower_in_the_model_goes_back_to_the_default(model_path: Path, tmp_path: Path) -> None:
    """A record of a schedule about 4x slower than the default (one row, one vector, no
    unrolling, spatial order), presented as a win, is reverted in the database."""
    opts = CompileOptions(target=TARGET, use_tuning_db=False)
    module = optimize(import_model(str(model_path)), opts)
    task = extract_tasks(module)[0]
    slow = task.default.replace(rows=1, nv=1, unroll=1, order="spatial", tblock=1, pf=48)
    target = target_of(module)
    assert target is not None
    metric = metric_for(target)
    where, version = target_key(target, metric), version_key()
    db = TuningDB(tmp_path / "db.sqlite")
    result = TaskResult(task, slow, 1.0, 0.5, 0.02, peak_cost=0.5)
    db.put(result.record(where, 1, version, metric))

    confirm_in_model(str(model_path), opts, db, [result],
                     lambda r: db.put(r.record(where, 1, version, metric)), tmp_path)
    assert result.in_model is not None and result.in_model > 1.0
    assert result.best == task.default and not result.accepted
    (record,) = db.records()
    assert json.loads(record.knobs) == task.default.knobs()
    line = format_report(TuneReport(1, 0, [result])).splitlines()[1]
    assert "default kept: the winner (0.500x alone) was" in line and "in the model" in line


def test_every_kept_win_is_faster_in_the_model(model_path: Path, tmp_path: Path) -> None:
    """`grimc tune` checks its winners in place: a kept one was faster there, a reverted
    one is recorded as the default."""
    db = TuningDB(tmp_path / "db.sqlite")
    report = tune_model(str(model_path), None, db, budget_s=12, target=TARGET, workdir=tmp_path / "w",
                        batches=1)
    records = {r.signature: r for r in db.records()}
    for r in report.results:
        if r.accepted:
            assert r.in_model is not None and r.in_model < 1.0
        elif r.in_model is not None:  # reverted
            assert json.loads(records[r.task.signature].knobs) == r.task.default.knobs()


def test_the_check_needs_wall_time_here(model_path: Path, tmp_path: Path) -> None:
    from grimc.errors import GrimcError

    with pytest.raises(GrimcError, match="in-model check"):
        tune_model(str(model_path), None, TuningDB(tmp_path / "a.sqlite"), budget_s=1,
                   target="aarch64", confirm=True, workdir=tmp_path / "w")
