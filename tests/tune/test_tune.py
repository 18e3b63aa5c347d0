"""grimc tune: database keys and staleness, warm runs, wrong-candidate rejection,
noise-aware acceptance, the tuned schedule in --emit=ir, CLI errors.

Real kernels, real clang builds and real timings; assertions are on decisions
(what was measured, rejected, accepted, recorded), never on times.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from grimc.dialects.sched import SplitSchedule, target_of
from grimc.driver import CompileOptions, import_model, optimize
from grimc.prune import prune_model
from grimc.tune.measure import Measurer
from grimc.tune.search import accept, noise_floor, tune_task
from grimc.tune.tasks import extract_tasks
from grimc.tune.tuner import TuneReport, format_report, tune_model
from grimc.tunedb import Record, TuningDB, metric_for, target_key, task_signature, version_key
from grimc.zoo.builder import GraphBuilder
from tests.conftest import run_tool

TARGET = "host"  # AVX2: runs on every x86-64 CI machine


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One BCR-sparse 3x3 conv (32->32 at 8x8): a single tuning task."""
    b = GraphBuilder(0, 17)
    x = b.input("input", (1, 32, 8, 8))
    model = b.finish(["input"], {"output": b.conv(x, 32, 3)}, "conv")
    pruned = prune_model(model, block="8x16", rate=4.0).model
    path = tmp_path_factory.mktemp("tune") / "conv.onnx"
    onnx.save(pruned, path)
    return path


def optimized(path: Path):
    module = optimize(import_model(str(path)), CompileOptions(target=TARGET, use_tuning_db=False))
    return module, target_of(module)


def test_db_keys_and_staleness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = TuningDB(tmp_path / "t.sqlite")
    rec = Record("sig", "host@x", 1, version_key(), "sched.csr", "sched", "[]",
                 '{"nv": 2, "threads": 1}', '{"nv": 1, "threads": 1}', "time_ms", 1.0, 2.0, 0.02, 3)
    db.put(rec)
    assert db.lookup("sig", "host@x", 1) is not None
    assert db.lookup("sig", "host@x", 2) is None  # threads are part of the key
    assert db.lookup("sig", "host-avx512@x", 1) is None  # so is the target
    assert db.lookup("other", "host@x", 1) is None
    monkeypatch.setenv("GRIMC_TUNING_VERSION", "0.0.0-other")
    version_key.cache_clear()
    try:
        assert db.lookup("sig", "host@x", 1) is None  # a stale record is never used
    finally:
        monkeypatch.delenv("GRIMC_TUNING_VERSION")
        version_key.cache_clear()
    assert db.lookup("sig", "host@x", 1) is not None


def test_warm_db_measures_nothing_and_version_change_retunes(
    model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = TuningDB(tmp_path / "t.sqlite")
    first = tune_model(str(model_path), None, db, budget_s=2, target=TARGET, workdir=tmp_path / "w")
    assert first.tasks == 1 and first.cached == 0 and first.measured > 0
    warm = tune_model(str(model_path), None, db, budget_s=2, target=TARGET, workdir=tmp_path / "w")
    assert warm.cached == 1 and warm.measured == 0 and not warm.results
    monkeypatch.setenv("GRIMC_TUNING_VERSION", "0.0.0-other")
    version_key.cache_clear()
    try:
        again = tune_model(str(model_path), None, db, budget_s=2, target=TARGET, workdir=tmp_path / "w")
        assert again.cached == 0 and again.measured > 0
    finally:
        monkeypatch.delenv("GRIMC_TUNING_VERSION")
        version_key.cache_clear()


def test_sweeps_are_not_tasks(tmp_path: Path) -> None:
    """Pools and element-wise sweeps carry a #sched.split but no knobs to search:
    only the conv is a task."""
    b = GraphBuilder(0, 17)
    x = b.input("input", (1, 8, 16, 16))
    y = b.maxpool(b.add(b.conv(x, 8, 3), x))
    path = tmp_path / "sweeps.onnx"
    onnx.save(b.finish(["input"], {"output": y}, "sweeps"), path)
    module, _ = optimized(path)
    kinds = {op.attributes["sched"].name for op in module.walk() if "sched" in op.attributes}
    assert "sched.split" in kinds
    assert [task.kind for task in extract_tasks(module)] == ["sched.conv"]


def built(workdir: Path) -> set[bytes]:
    return {path.read_bytes() for path in workdir.rglob("*.so")}


def test_candidates_build_at_the_compile_opt_level(model_path: Path, tmp_path: Path) -> None:
    """-O reaches the candidates' builds: grimc tune -O0 times -O0 code, the code the
    compiles it tunes for get (it used to build every candidate at -O3)."""
    module, target = optimized(model_path)
    (task,) = extract_tasks(module)
    levels = {}
    for level in ("0", "3"):
        with Measurer(module, target, 1, tmp_path / f"m{level}", opt_level=level) as m:
            (outcome, _, _), = m.build(task, [task.default])
        assert outcome.status == "ok"
        (levels[level],) = built(tmp_path / f"m{level}")
    assert levels["0"] != levels["3"]
    db = TuningDB(tmp_path / "t.sqlite")
    tune_model(
        str(model_path), None, db, budget_s=1, target=TARGET, opt_level="0", workdir=tmp_path / "w"
    )
    assert levels["0"] in built(tmp_path / "w") and levels["3"] not in built(tmp_path / "w")


def test_signature_ignores_schedules(model_path: Path) -> None:
    """A task's signature is what its kernel computes: no schedule attribute (a strided
    conv's phase split included) changes it."""
    module, _ = optimized(model_path)
    (task,) = extract_tasks(module)
    before = task_signature(task.op, "sched")
    task.op.attributes["sched.phase"] = SplitSchedule(threads=2, over="planes", align=1)
    task.op.attributes["sched"] = task.default.replace(unroll=1)
    assert task_signature(task.op, "sched") == before


def test_wrong_candidate_is_rejected(model_path: Path, tmp_path: Path) -> None:
    module, target = optimized(model_path)
    (task,) = extract_tasks(module)
    broken = task.default.replace(rows=1, nv=1)
    fine = task.default.replace(unroll=1)
    logged: list[str] = []

    def corrupt(attr, outputs):  # the planted bug: this schedule's kernel is off by one
        return [o + 1.0 for o in outputs] if attr == broken else outputs

    with Measurer(module, target, 1, tmp_path, perturb=corrupt, log=logged.append, rounds=2) as m:
        result = tune_task(task, m, deadline=0, candidates=[broken, fine])
    assert [o.attr for o in result.rejected] == [broken]
    assert result.rejected[0].status == "wrong"
    assert result.best != broken
    assert any("wrong" in line and "rows = 1" in line for line in logged)


def test_a_candidate_the_lowering_refuses_takes_no_slot(tmp_path: Path) -> None:
    """A GEMV over one batch row refuses nb_tile = 2 at generation: the search logs it as
    invalid and never builds or times it (it used to fill a place in the batch)."""
    b = GraphBuilder(0, 17)
    x = b.input("input", (1, 128))
    model = b.finish(["input"], {"output": b.gemm(x, 64, gain=1.0)}, "gemv")
    path = tmp_path / "gemv.onnx"
    onnx.save(prune_model(model, block="16x32", rate=4.0).model, path)
    module, target = optimized(path)
    (task,) = extract_tasks(module)
    assert task.kind == "sched.gemv"
    refused, other = task.default.replace(nb_tile=2), task.default.replace(rle=not task.default.knobs()["rle"])
    logged: list[str] = []
    batches: list[list] = []
    with Measurer(module, target, 1, tmp_path / "w", log=logged.append, rounds=2) as m:
        measure = m.measure

        def spy(task, attrs, rounds=None):  # the real measurement; records what it was given
            batches.append(list(attrs))
            return measure(task, attrs, rounds)

        m.measure = spy  # type: ignore[method-assign]
        result = tune_task(task, m, deadline=0, candidates=[refused, other])
    assert batches[0] == [task.default, task.default, other]
    assert [(o.attr, o.status) for o in result.rejected] == [(refused, "invalid")]
    assert "nb_tile exceeds" in result.rejected[0].message
    assert any("invalid" in line for line in logged)


def test_default_twin_is_never_a_winner(model_path: Path, tmp_path: Path) -> None:
    module, target = optimized(model_path)
    (task,) = extract_tasks(module)
    with Measurer(module, target, 1, tmp_path, rounds=5) as m:
        default, twin = m.measure(task, [task.default, task.default])
        result = tune_task(task, m, deadline=0, candidates=[task.default])
    noise = noise_floor(default.samples, twin.samples, "time_ms")
    assert not accept(default.cost, twin.cost, noise)
    assert not accept(twin.cost, default.cost, noise)
    assert result.best == task.default and not result.accepted and result.measured == 0


def test_peak_is_the_best_measured_even_when_the_default_is_kept(model_path: Path, tmp_path: Path) -> None:
    """The report says how close a kept default sits to the best candidate measured."""
    module, target = optimized(model_path)
    (task,) = extract_tasks(module)
    others = [task.default.replace(unroll=1), task.default.replace(rows=2, nv=1)]
    with Measurer(module, target, 1, tmp_path, rounds=3) as m:
        result = tune_task(task, m, deadline=0, candidates=others)
    assert result.peak_cost is not None and result.peak_ratio <= 1.0
    if result.accepted:
        assert result.peak_cost == result.best_cost < result.default_cost
    else:
        assert result.best_cost == result.default_cost and result.peak_ratio >= 1.0 - result.noise
    line = format_report(TuneReport(1, 0, [result])).splitlines()[1]
    assert ("best measured" in line) == (not result.accepted and result.peak_ratio < 1.0)


def test_accept_needs_more_than_the_noise() -> None:
    assert not accept(1.0, 0.99, 0.02)
    assert accept(1.0, 0.97, 0.02)
    assert noise_floor([1.0] * 5, [1.0] * 5, "icount") == 0.0
    assert noise_floor([1.0, 1.0, 1.0, 1.0], [1.1] * 4, "time_ms") == pytest.approx(0.1)


def tuned_record(model_path: Path, db: TuningDB) -> str:
    """Record a (hand-picked) tuned schedule for the model's task; returns its IR text."""
    module, target = optimized(model_path)
    (task,) = extract_tasks(module)
    tuned = task.default.replace(rows=2, nv=1, unroll=1)
    assert tuned != task.default
    metric = metric_for(target)
    db.put(Record(task.signature, target_key(target, metric), 1, version_key(), task.kind,
                  task.key, task.shapes, json.dumps(tuned.knobs()),
                  json.dumps(task.default.knobs()), metric, 1.0, 2.0, 0.02, 1))
    return str(tuned)


def test_tuned_schedule_in_emit_ir(model_path: Path, tmp_path: Path) -> None:
    db = TuningDB(tmp_path / "t.sqlite")
    text = tuned_record(model_path, db)
    db.close()
    base = ["grimc", str(model_path), "--emit=ir", "--target", TARGET]
    with_db = run_tool([*base, "--tuning-db", str(db.path)])
    assert with_db.returncode == 0, with_db.stderr
    assert text in with_db.stdout
    without = run_tool([*base, "--no-tuning-db"])
    assert without.returncode == 0 and text not in without.stdout


def test_tuned_schedule_is_compiled_and_correct(model_path: Path, tmp_path: Path) -> None:
    from grimc.driver import build_model

    db = TuningDB(tmp_path / "t.sqlite")
    tuned_record(model_path, db)
    x = np.random.default_rng(0).standard_normal((1, 32, 8, 8)).astype(np.float32)
    outs = []
    for use in (True, False):
        opts = CompileOptions(target=TARGET, tuning_db=str(db.path), use_tuning_db=use)
        with build_model(str(model_path), tmp_path / f"b{use}", opts) as m:
            outs.append(m.run([x])[0])
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-4, atol=1e-5)


def test_export_import_round_trip(model_path: Path, tmp_path: Path) -> None:
    db = TuningDB(tmp_path / "a.sqlite")
    tuned_record(model_path, db)
    out = tmp_path / "records.jsonl"
    assert run_tool(["grimc", "tune", "--db", str(db.path), "--export", str(out)]).returncode == 0
    other = tmp_path / "b.sqlite"
    proc = run_tool(["grimc", "tune", "--db", str(other), "--import", str(out)])
    assert proc.returncode == 0, proc.stderr
    assert list(TuningDB(other).export_lines()) == list(db.export_lines())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budget", "5x"], "--budget '5x'"),
        (["--budget", "0"], "--budget '0'"),
        (["--db", "{tmp}"], "is a directory"),
        (["--db", "{tmp}/junk.db"], "not a usable tuning database"),
    ],
)
def test_cli_errors(model_path: Path, tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "junk.db").write_text("not sqlite\n")
    args = [a.format(tmp=tmp_path) for a in args]
    proc = run_tool(["grimc", "tune", str(model_path), *args])
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr and "Traceback" not in proc.stderr


def test_compile_with_missing_tuning_db_is_an_error(model_path: Path, tmp_path: Path) -> None:
    proc = run_tool(["grimc", str(model_path), "--tuning-db", str(tmp_path / "none.sqlite")])
    assert proc.returncode == 2 and "no such file" in proc.stderr and proc.stderr.count("\n") == 1


@pytest.mark.slow
def test_aarch64_tunes_by_exact_instruction_counts(model_path: Path, tmp_path: Path) -> None:
    """Under qemu the cost is the kernel's instruction count: exact, so the twins agree,
    the noise floor is zero and any fewer instructions win."""
    module = optimize(import_model(str(model_path)), CompileOptions(target="aarch64", use_tuning_db=False))
    (task,) = extract_tasks(module)
    with Measurer(module, target_of(module), 1, tmp_path) as m:
        assert m.metric == "icount"
        default, twin, other = m.measure(task, [task.default, task.default, task.default.replace(unroll=1)])
    assert default.samples == twin.samples and len(default.samples) == 1
    assert noise_floor(default.samples, twin.samples, "icount") == 0.0
    assert other.status == "ok" and other.cost != default.cost  # another kernel, other count
    assert accept(default.cost, other.cost, 0.0) == (other.cost < default.cost)
    db = TuningDB(tmp_path / "a.sqlite")
    report = tune_model(str(model_path), None, db, budget_s=5, target="aarch64", workdir=tmp_path / "w")
    (result,) = report.results
    (record,) = db.records()
    assert record.metric == "icount" and record.noise == 0.0 and record.target == "aarch64"
    assert result.accepted == (result.best_cost < result.default_cost)


@pytest.mark.slow
def test_ctrl_c_keeps_what_was_measured(tmp_path: Path) -> None:
    """SIGINT after the first task is recorded: exit 130, no traceback, the record stays."""
    import signal
    import subprocess
    import time

    from tests.conftest import BIN_DIR, tool_env

    b = GraphBuilder(0, 17)
    x = b.input("input", (1, 32, 8, 8))
    y = b.conv(b.conv(x, 32, 3), 64, 3)
    path = tmp_path / "two.onnx"
    onnx.save(prune_model(b.finish(["input"], {"output": y}, "two"), block="8x16", rate=4.0).model, path)
    db = tmp_path / "t.sqlite"
    proc = subprocess.Popen(
        [str(BIN_DIR / "grimc"), "tune", str(path), "--target", TARGET, "--db", str(db),
         "--budget", "60s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=tool_env(),
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists() and list(TuningDB(db).records()):
                break
            time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted" in out + err
    assert len(list(TuningDB(db).records())) >= 1


def test_every_knob_tells_candidates_apart() -> None:
    """Schedules that differ in any one knob are different candidates (the search keeps
    a set of those seen): `rows`, declared once in a mixin, used to be left out of
    equality and hashing, so no `rows` variant of a sparse kernel was ever measured."""
    from xdsl.utils.exceptions import VerifyException

    from grimc.dialects.sched import KnobsAttr

    def kinds(cls: type) -> list[type]:
        return [k for sub in cls.__subclasses__() for k in (sub, *kinds(sub))]

    checked = 0
    for cls in kinds(KnobsAttr):
        if "FIELDS" not in dir(cls) or not getattr(cls, "name", None):
            continue
        words = cls.WORDS
        flags = cls.FLAGS
        base = {f: (words[f][0] if f in words else 0 if f in flags else 4) for f in cls.FIELDS}
        one = cls(**base)
        for f in cls.FIELDS:
            if f in words and len(words[f]) < 2:
                continue
            try:
                other = cls(**{**base, f: words[f][1] if f in words else 1 if f in flags else 8})
            except VerifyException:  # a value this knob takes only with others changed
                continue
            assert one != other and len({one, other}) == 2, f"{cls.name}: {f}"
            checked += 1
    assert checked > 20
