"""grimc tune --target opencl: work-group sizes and the other OpenCL knobs, measured
on the OpenCL device (PoCL in CI) with its profiling events.

Real kernels on a real device; assertions are on decisions (the tasks, what was
measured, rejected and recorded, under which device key, what a compile then
uses), never on times.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from grimc import zoo
from grimc.dialects.sched import ClLinearSchedule, target_of
from grimc.driver import CompileOptions, compile_model, import_model, optimize
from grimc.opencl_device import selected_device
from grimc.prune import prune_model
from grimc.tune import space
from grimc.tune.opencl import ClMeasurer
from grimc.tune.search import tune_task
from grimc.tune.tasks import extract_tasks
from grimc.tune.tuner import tune_model
from grimc.tunedb import Record, TuningDB, target_key, version_key
from grimc.zoo.builder import GraphBuilder
from tests.conftest import run_tool
from tests.opencl.clenv import require_opencl
from tests.opencl.clmodel import device_names, run_on_device

TARGET = "opencl"


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One BCR-sparse 3x3 conv (32->32 at 8x8): a single OpenCL tuning task."""
    b = GraphBuilder(0, 17)
    x = b.input("input", (1, 32, 8, 8))
    model = b.finish(["input"], {"output": b.conv(x, 32, 3)}, "conv")
    path = tmp_path_factory.mktemp("cltune") / "conv.onnx"
    onnx.save(prune_model(model, block="8x16", rate=4.0).model, path)
    return path


def optimized(path: Path | onnx.ModelProto):
    source = str(path) if isinstance(path, Path) else path
    module = optimize(import_model(source), CompileOptions(target=TARGET, use_tuning_db=False))
    return module, target_of(module)


def test_tasks_are_the_opencl_schedules() -> None:
    """A conv's #sched.cl_linear; a recurrence's #sched.cl_cell and its projection's
    #sched.cl_linear. The work-group size is one joint knob (lx, ly, lz)."""
    module, _ = optimized(zoo.gru(input_size=16, hidden_size=32, num_layers=1, seq_len=3))
    kinds = sorted((t.kind, t.key) for t in extract_tasks(module))
    assert kinds == [("sched.cl_cell", "sched"), ("sched.cl_linear", "sched.proj")]
    cell = next(t for t in extract_tasks(module) if t.kind == "sched.cl_cell")
    assert {"rows", "local"} <= space.tunable(cell.default)
    linear = next(t for t in extract_tasks(module) if t.kind == "sched.cl_linear")
    values = space.knob_values(linear.default)
    assert values[("lx", "ly", "lz")][0] == (0, 0, 0)  # the driver's choice first
    neighbours = space.neighbours(linear.default, target_of(module))
    assert any(n.local == (16, 1, 1) for n in neighbours)  # one step: all three set
    assert all(isinstance(n, ClLinearSchedule) for n in neighbours)


def test_records_are_keyed_by_the_device_and_a_warm_rerun_measures_nothing(
    model_path: Path, tmp_path: Path
) -> None:
    require_opencl()
    device = selected_device()
    platform, name = device.split(" | ")
    assert platform in device_names() and name in device_names()
    db = TuningDB(tmp_path / "t.sqlite")
    first = tune_model(str(model_path), None, db, budget_s=4, target=TARGET, workdir=tmp_path / "w")
    assert first.tasks == 1 and first.cached == 0 and first.measured > 0
    (record,) = db.records()
    assert record.target == f"opencl@{device}" and record.metric == "time_ms"
    assert record.kind == "sched.cl_linear" and record.measured > 0
    warm = tune_model(str(model_path), None, db, budget_s=4, target=TARGET, workdir=tmp_path / "w")
    assert warm.cached == 1 and warm.measured == 0 and not warm.results
    # the compile uses the record: its schedule is the one in the IR
    tuned = ClLinearSchedule(**json.loads(record.knobs))
    db.close()
    proc = run_tool(["grimc", str(model_path), "--emit=ir", "--target", TARGET,
                     "--tuning-db", str(db.path)])  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert str(tuned) in proc.stdout


def put(db: TuningDB, task, tuned: ClLinearSchedule, where: str) -> None:
    db.put(Record(task.signature, where, 1, version_key(), task.kind, task.key, task.shapes,
                  json.dumps(tuned.knobs()), json.dumps(task.default.knobs()), "time_ms",
                  1.0, 2.0, 0.02, 1))  # fmt: skip


def test_another_devices_records_are_never_used(model_path: Path, tmp_path: Path) -> None:
    """A record measured on another GPU (or at another precision) leaves the cost
    model's schedule; one for this device is compiled in and computes the same."""
    require_opencl()
    module, target = optimized(model_path)
    (task,) = extract_tasks(module)
    tuned = task.default.replace(rows=4, lx=16, ly=1, lz=1)
    assert tuned != task.default
    db = TuningDB(tmp_path / "t.sqlite")
    put(db, task, tuned, "opencl@Other Platform | Other GPU")
    put(db, task, tuned, target_key(target, "time_ms", precision="fp16-storage"))
    db.close()
    opts = CompileOptions(target=TARGET, tuning_db=str(db.path))
    assert str(tuned) not in str(optimize(import_model(str(model_path)), opts))
    half = opts.replace(precision="fp16-storage")  # its own record is used at its precision
    assert str(tuned) in str(optimize(import_model(str(model_path)), half))
    db = TuningDB(tmp_path / "t.sqlite")
    put(db, task, tuned, target_key(target, "time_ms"))
    db.close()
    assert str(tuned) in str(optimize(import_model(str(model_path)), opts))
    x = np.random.default_rng(0).standard_normal((1, 32, 8, 8)).astype(np.float32)
    outs = [
        run_on_device(compile_model(str(model_path), opts, use_tuning_db=use), [x], tmp_path / f"{use}")
        for use in (True, False)
    ]
    np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-4, atol=1e-5)


def test_wrong_and_unrunnable_candidates_are_rejected(model_path: Path, tmp_path: Path) -> None:
    """A planted wrong kernel is caught by the output check; a work-group size the
    device refuses is run-failed; neither can win and the task still finishes."""
    require_opencl()
    module, target = optimized(model_path)
    (task,) = extract_tasks(module)
    broken = task.default.replace(lx=16, ly=1, lz=1)
    refused = task.default.replace(lx=1 << 20, ly=1, lz=1)  # beyond any device's limit
    fine = task.default.replace(order="rows")
    logged: list[str] = []

    def corrupt(attr, outputs):  # the planted bug: this schedule's kernel is off by one
        return [o + 1.0 for o in outputs] if attr == broken else outputs

    with ClMeasurer(module, target, 1, tmp_path, perturb=corrupt, log=logged.append, rounds=2) as m:
        result = tune_task(task, m, deadline=0, candidates=[broken, refused, fine])
    assert {o.attr: o.status for o in result.rejected} == {broken: "wrong", refused: "run-failed"}
    assert result.best not in (broken, refused)
    assert any("wrong" in line and "lx = 16" in line for line in logged)


def test_device_option_is_refused_for_opencl(model_path: Path, tmp_path: Path) -> None:
    """--device names a remote CPU device; OpenCL tunes on the selected OpenCL device."""
    require_opencl()
    proc = run_tool(["grimc", "tune", str(model_path), "--target", TARGET, "--db",
                     str(tmp_path / "t.sqlite"), "--device", "ssh://nobody@nowhere"])  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "--device is for CPU targets" in proc.stderr


@pytest.mark.slow
def test_recurrent_cell_and_projection_are_tuned(tmp_path: Path) -> None:
    """A GRU's two tasks (the recurrence's #sched.cl_cell, the projection's
    #sched.cl_linear) are measured on the device and recorded (a run whose
    budget runs out leaves the rest to the next); the compile that uses them
    matches the untuned one."""
    require_opencl()
    path = tmp_path / "gru.onnx"
    onnx.save(zoo.gru(input_size=16, hidden_size=32, num_layers=1, seq_len=4), path)
    db = TuningDB(tmp_path / "t.sqlite")
    for _ in range(4):
        report = tune_model(str(path), None, db, budget_s=8, target=TARGET, workdir=tmp_path / "w")
        assert report.tasks == 2 and report.measured > 0
        if not report.skipped:
            break
    assert sorted(r.kind for r in db.records()) == ["sched.cl_cell", "sched.cl_linear"]
    assert all(r.measured > 0 for r in db.records())
    db.close()
    x = np.random.default_rng(0).standard_normal((4, 1, 16)).astype(np.float32)
    opts = CompileOptions(target=TARGET, tuning_db=str(db.path))
    outs = [
        run_on_device(compile_model(str(path), opts, use_tuning_db=use), [x], tmp_path / f"{use}")
        for use in (True, False)
    ]
    for tuned, untuned in zip(outs[0], outs[1], strict=True):
        np.testing.assert_allclose(tuned, untuned, rtol=1e-4, atol=1e-5)


def test_a_compile_without_opencl_records_does_not_probe_the_device(
    model_path: Path, tmp_path: Path
) -> None:
    """Finding the device means building the runtime into a probe: a compile
    only does it when the database holds OpenCL records at all."""
    from grimc import opencl_device

    module, target = optimized(model_path)
    (task,) = extract_tasks(module)
    db = TuningDB(tmp_path / "t.sqlite")
    put(db, task, task.default.replace(rows=4), "host@cpu")  # a CPU target's record only
    db.close()
    opts = CompileOptions(target=TARGET, tuning_db=str(db.path))
    opencl_device._select.cache_clear()  # forget this process's earlier answers
    opencl_device._probe.cache_clear()
    optimize(import_model(str(model_path)), opts)
    assert opencl_device._probe.cache_info().currsize == 0
    db = TuningDB(tmp_path / "t.sqlite")
    put(db, task, task.default.replace(rows=4), "opencl@Other Platform | Other GPU")
    db.close()
    optimize(import_model(str(model_path)), opts)
    assert opencl_device._probe.cache_info().currsize == 1
