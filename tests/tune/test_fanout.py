"""Ray fan-out (grimc.tune.fanout) decides exactly as the serial tuner.

A local Ray instance (2 CPUs) tunes a small aarch64 BCR GEMV by instruction
count: every candidate's count, the winner and the database record equal the
serial run's with the same seed. Timings on a device (the scratch runner of
examples/runners, declared as the instance's device resource) keep the serial
decisions: the same wrong candidate caught, every other one timed. Real clang
builds, qemu runs and device runs.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grimc.device import parse_device
from grimc.dialects.sched import target_of
from grimc.driver import CompileOptions, import_model, optimize
from grimc.errors import GrimcError
from grimc.tune import space
from grimc.tune.fanout import RayFanout, device_resource
from grimc.tune.measure import Measurer
from grimc.tune.tasks import extract_tasks
from grimc.tune.tuner import tune_model
from grimc.tunedb import TuningDB
from tests.conftest import REPO, tool_env
from tests.tune.helpers import bcr_model, record_batches

DEVICE = f"cmd:{REPO / 'examples' / 'runners' / 'scratch.sh'}"


@pytest.fixture(scope="module")
def ray_module() -> Any:
    from tests.conftest import require

    try:
        import ray
    except ImportError:
        ray = None
    require(ray is not None, "the Python package ray", "ray", install="grimc[ray] (pip install -e '.[ray]')")
    return ray


@pytest.fixture(scope="module")
def ray_local(ray_module: Any) -> Iterator[Any]:
    ray = ray_module
    ray.init(num_cpus=2, object_store_memory=80 * 2**20, include_dashboard=False,
             resources={device_resource(DEVICE): 1})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def gemv_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One BCR-sparse fully connected layer 64 -> 64: a single sched.gemv task."""
    return bcr_model(tmp_path_factory.mktemp("fanout") / "fc.onnx", lambda b, x: b.linear(x, 64), (1, 64))


def tuned(path: Path, tmp: Path, monkeypatch: pytest.MonkeyPatch, **kw: Any):
    """Tune with every batch's outcomes (candidate, status, samples) recorded."""
    log = record_batches(monkeypatch)
    db = TuningDB(tmp / "t.sqlite")
    report = tune_model(str(path), None, db, budget_s=600, target="aarch64", seed=3, batches=1,
                        workdir=tmp / "w", **kw)
    monkeypatch.undo()
    batches = [[(str(o.attr), o.status, list(o.samples)) for o in b] for b in log]
    return report, batches, [dataclasses.replace(r, created=0.0) for r in db.records()]


def test_ray_fanout_equals_serial(
    ray_local: Any, gemv_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serial, serial_batches, serial_records = tuned(gemv_path, tmp_path / "s", monkeypatch)
    fanned, fanned_batches, fanned_records = tuned(gemv_path, tmp_path / "r", monkeypatch, ray="local")
    assert ray_local.is_initialized()  # the test's instance served it (and is not shut down)
    assert serial.metric == fanned.metric == "icount"
    costs = {c for batch in serial_batches for _, status, s in batch if status == "ok" for c in s}
    assert len(costs) > 1  # the candidates differ: equal lists below are no accident
    assert fanned_batches == serial_batches
    assert [r.best for r in fanned.results] == [r.best for r in serial.results]
    assert fanned_records == serial_records and len(serial_records) == 1
    assert fanned.measured == serial.measured > 0
    # the serial run built its candidates here; the fanned-out one only wrote their sources
    assert list((tmp_path / "s" / "w").rglob("grimc_task"))
    assert not list((tmp_path / "r" / "w").rglob("grimc_task"))


def test_ray_refuses_host_timing(ray_local: Any, gemv_path: Path, tmp_path: Path) -> None:
    """Timings on this machine fanned out would disturb each other: refused, nothing measured."""
    db = TuningDB(tmp_path / "t.sqlite")
    with pytest.raises(GrimcError, match="one at a time"):
        tune_model(str(gemv_path), None, db, budget_s=5, target="host", ray="local")
    assert not list(db.records())


def test_ray_missing_is_one_error_line(gemv_path: Path, tmp_path: Path) -> None:
    """Without ray (its import blocked in the child), --ray is a usage error, exit 2."""
    code = ("import sys; sys.modules['ray'] = None; from grimc.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run(
        [sys.executable, "-c", code, "tune", str(gemv_path), "--target", "aarch64", "--ray",
         "--db", str(tmp_path / "t.sqlite")],
        capture_output=True, text=True, env=tool_env(), timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "grimc[ray]" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_device_timing_fans_out_with_the_serial_decisions(
    ray_local: Any, gemv_path: Path, tmp_path: Path
) -> None:
    module = optimize(import_model(str(gemv_path)), CompileOptions(target="host", use_tuning_db=False))
    (task,) = extract_tasks(module)
    broken, fine = space.neighbours(task.default, target_of(module))[:2]

    def corrupt(attr, outputs):  # the planted bug: this schedule's kernel is off by one
        return [o + 1.0 for o in outputs] if attr == broken else outputs

    device = parse_device(DEVICE)
    runs = {}
    for name in ("serial", "ray"):
        fanout = RayFanout("local", "time_ms", 2, device) if name == "ray" else None
        with Measurer(module, target_of(module), 1, tmp_path / name, rounds=2, perturb=corrupt,
                      device=device, fanout=fanout) as m:
            runs[name] = m.measure(task, [task.default, task.default, broken, fine])
    for outcomes in runs.values():
        assert [o.status for o in outcomes] == ["ok", "ok", "wrong", "ok"]
        assert [len(o.samples) for o in outcomes] == [2, 2, 0, 2]
        assert all(s > 0 for o in outcomes for s in o.samples)
    assert not list((tmp_path / "ray").rglob("*.so"))


def test_device_resource_must_exist(ray_local: Any) -> None:
    """A cluster without the device's resource has no node that may time on it."""
    with pytest.raises(GrimcError, match="no node of the Ray cluster has the resource"):
        RayFanout("local", "time_ms", 2, parse_device("cmd:/bin/true"))
    assert ray_local.is_initialized()  # the caller's instance stays up


def test_unreachable_cluster_is_one_error_line(ray_module: Any, gemv_path: Path, tmp_path: Path) -> None:
    """An address nobody answers fails at once (Ray alone retries it for minutes)."""
    from tests.conftest import run_tool

    proc = run_tool(["grimc", "tune", str(gemv_path), "--target", "aarch64", "--ray",
                     "127.0.0.1:1", "--db", str(tmp_path / "t.sqlite")], timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "--ray 127.0.0.1:1: cannot connect" in proc.stderr


@pytest.mark.slow
def test_cli_starts_its_own_ray_instance(ray_module: Any, gemv_path: Path, tmp_path: Path) -> None:
    """`grimc tune --ray` without an address starts (and stops) a local instance."""
    from tests.conftest import run_tool

    db = tmp_path / "t.sqlite"
    proc = run_tool(["grimc", "tune", str(gemv_path), "--target", "aarch64", "--ray",
                     "--budget", "5s", "--db", str(db)])
    assert proc.returncode == 0, proc.stderr
    (record,) = TuningDB(db).records()
    assert record.metric == "icount" and record.measured > 0
