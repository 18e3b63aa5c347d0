"""Ray fan-out (grimc.tune.fanout) decides exactly as the serial tuner.

A local Ray instance (2 CPUs) tunes a small aarch64 BCR GEMV by instruction
count: every candidate's count, the winner and the database record equal the
serial run's with the same seed. Real clang builds and real qemu runs.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx
import pytest

from grimc.errors import GrimcError
from grimc.prune import prune_model
from grimc.tune.measure import Measurer
from grimc.tune.tuner import tune_model
from grimc.tunedb import TuningDB
from grimc.zoo.builder import GraphBuilder
from tests.conftest import tool_env


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    from tests.conftest import require

    try:
        import ray
    except ImportError:
        ray = None
    require(ray is not None, "the Python package ray", "ray", install="grimc[ray] (pip install -e '.[ray]')")
    ray.init(num_cpus=2, object_store_memory=80 * 2**20, include_dashboard=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def gemv_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One BCR-sparse fully connected layer 64 -> 64: a single sched.gemv task."""
    b = GraphBuilder(0, 17)
    x = b.input("input", (1, 64))
    model = b.finish(["input"], {"output": b.linear(x, 64)}, "fc")
    path = tmp_path_factory.mktemp("fanout") / "fc.onnx"
    onnx.save(prune_model(model, block="8x16", rate=4.0).model, path)
    return path


def tuned(path: Path, tmp: Path, monkeypatch: pytest.MonkeyPatch, **kw: Any):
    """Tune with every batch's outcomes (candidate, status, samples) recorded."""
    batches: list[list[tuple[str, str, list[float]]]] = []
    measure = Measurer.measure

    def recording(self, task, attrs, rounds=None):
        outcomes = measure(self, task, attrs, rounds)
        batches.append([(str(o.attr), o.status, list(o.samples)) for o in outcomes])
        return outcomes

    monkeypatch.setattr(Measurer, "measure", recording)
    db = TuningDB(tmp / "t.sqlite")
    report = tune_model(str(path), None, db, budget_s=600, target="aarch64", seed=3, batches=1,
                        workdir=tmp / "w", **kw)
    monkeypatch.undo()
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
