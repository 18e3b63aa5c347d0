"""Tune every task of a model and record the decisions in the tuning database.

    report = tune_model("model.onnx", CompileOptions(threads=2), TuningDB(), budget_s=300)

Tasks already in the database (current version key) are skipped: a warm
database makes zero measurements. Tasks run largest first (by their
kernel's multiply-adds) and share the budget evenly; each finished task is
written at once, so Ctrl-C keeps everything measured (the interrupted task
decides from its completed batches).
"""

from __future__ import annotations

import functools
import math
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grimc.device import parse_device
from grimc.dialects.sched import target_of
from grimc.driver import ModelSource, import_model, optimize
from grimc.errors import GrimcError
from grimc.options import CompileOptions
from grimc.progress import progress
from grimc.target import Target
from grimc.tune.confirm import SHARE as CONFIRM_SHARE
from grimc.tune.confirm import confirm_in_model
from grimc.tune.learned import cost_model
from grimc.tune.measure import Measurer, Perturb
from grimc.tune.search import TaskResult, tune_task
from grimc.tune.tasks import extract_tasks
from grimc.tunedb import TuningDB, metric_for, target_key, version_key


@dataclass
class TuneReport:
    """Tasks found, those the database already had, and the new results."""

    tasks: int
    cached: int
    results: list[TaskResult] = field(default_factory=list)
    measured: int = 0
    interrupted: bool = False
    metric: str = "time_ms"
    skipped: int = 0
    """Tasks left untuned when the budget ran out."""


def _eta(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


def measurer_for(target: Target, opts: CompileOptions) -> Callable[..., Measurer]:
    """The measurer class of `target` (OpenCL: device time at the compile's precision)."""
    if target.family == "opencl":
        if opts.device is not None:
            raise GrimcError(
                "--target opencl tunes on this machine's OpenCL device (GRIMC_OPENCL_DEVICE "
                "selects it); --device is for CPU targets"
            )
        from grimc.tune.opencl import ClMeasurer

        return functools.partial(ClMeasurer, precision=opts.precision)
    return Measurer


def tune_model(
    source: ModelSource,
    options: CompileOptions | None = None,
    db: TuningDB | None = None,
    budget_s: float = 300.0,
    *,
    seed: int = 0,
    jobs: int = 2,
    workdir: str | Path | None = None,
    perturb: Perturb | None = None,
    log: Callable[[str], None] = lambda _: None,
    ray: str | None = None,
    batches: int | None = None,
    learned: bool | None = None,
    confirm: bool | None = None,
    **fields: Any,
) -> TuneReport:
    """Tune the tasks of `source` compiled with `options` (the cost model's schedules
    as the baseline: the database is not applied while tuning).

    `ray`: measure on a Ray cluster at this address (`auto`, `ray://host:10001`) or a
    local instance (`local`) (grimc.tune.fanout). `batches`: per task, stop after this
    many batches even with budget left; `learned`: rank bred candidates with a learned
    cost model, None: when xgboost is installed (grimc.tune.search.tune_task).
    `confirm`: check the new winners inside the whole model and revert those not faster
    there (grimc.tune.confirm); None: for wall time on this machine, which it needs."""
    if ray is not None:
        from grimc.tune.fanout import import_ray

        import_ray()  # before minutes of work
    if learned:
        cost_model(True)  # xgboost is there
    opts = CompileOptions.of(options, **fields).replace(use_tuning_db=False)
    db = db if db is not None else TuningDB()
    module = optimize(import_model(source, opts.input_shapes, opts.input_values), opts)
    target = target_of(module)
    assert target is not None
    metric = metric_for(target, opts.device)
    where, version = target_key(target, metric, opts.device, opts.precision), version_key()
    tasks = extract_tasks(module)
    todo = [t for t in tasks if db.lookup(t.signature, where, opts.threads) is None]
    report = TuneReport(len(tasks), len(tasks) - len(todo), metric=metric)
    if not todo:
        return report
    make_measurer = measurer_for(target, opts)
    device = parse_device(opts.device) if opts.device is not None else None
    if device is not None:
        device.check()
    local_time = metric == "time_ms" and device is None and target.family != "opencl"
    if confirm and not local_time:
        raise GrimcError("the in-model check needs wall time on this machine's CPU")
    confirm = local_time if confirm is None else confirm
    search_s = budget_s * (1.0 - CONFIRM_SHARE) if confirm else budget_s
    own = tempfile.TemporaryDirectory(prefix="grimc-tune-") if workdir is None else None
    root = Path(own.name if own is not None else workdir)  # type: ignore[arg-type]
    fanout = None
    try:
        if ray is not None:
            from grimc.tune.fanout import RayFanout

            fanout = RayFanout(ray, metric, jobs, device)
        start = time.monotonic()  # the budget is for measuring: a cluster's start-up is not in it
        with make_measurer(
            module, target, opts.threads, root, opts.kernel_format, jobs=jobs, seed=seed,
            perturb=perturb, log=log, opt_level=opts.opt_level, device=device, fanout=fanout,
        ) as measurer, progress(len(todo), "tune") as bar:
            # the biggest kernels first: a budget that runs out leaves the small ones
            todo.sort(key=lambda t: -measurer.flops(t))
            for index, task in enumerate(todo):
                now = time.monotonic()
                left = search_s - (now - start)
                if left <= 0:
                    report.skipped = len(todo) - index  # the next run continues from here
                    break
                deadline = now + max(0.0, left / (len(todo) - index))
                eta = _eta(left)

                def show(best: float, task=task, eta=eta) -> None:
                    bar.step(f"{task.label}: best {best:.3f}x of default, ETA {eta}")

                bar.step(f"{task.label}: measuring, ETA {eta}")
                neighbours = db.neighbours(task.kind, task.key, where, opts.threads)
                result = tune_task(task, measurer, deadline, neighbours, seed, on_batch=show,
                                   batches=batches, learned=learned)
                if math.isinf(result.default_cost):  # interrupted before one batch finished
                    report.interrupted = True
                    break
                db.put(result.record(where, opts.threads, version, metric))
                report.results.append(result)
                if result.interrupted:
                    report.interrupted = True
                    break
            report.measured = measurer.measured
        if confirm and not report.interrupted and any(r.accepted for r in report.results):
            log(f"checking {sum(r.accepted for r in report.results)} tuned schedule(s) in the model")
            confirm_in_model(source, opts, db, report.results,
                             lambda r: db.put(r.record(where, opts.threads, version, metric)), root)
    finally:
        if fanout is not None:
            fanout.close()
        if own is not None:
            own.cleanup()
    return report


def format_report(report: TuneReport) -> str:
    """One line per task: default and tuned cost, ratio, the winning schedule; for a
    kept default, the best candidate measured (how close the default is to it)."""
    unit = "ms" if report.metric == "time_ms" else "insns"
    lines = [f"{report.tasks} tasks, {report.cached} already tuned, {len(report.results)} tuned now, "
             f"{report.measured} candidates measured"]
    for r in report.results:
        verdict = "tuned" if r.accepted else "default kept"
        if r.in_model is not None:
            verdict += (f" ({r.in_model:.3f}x in the model)" if r.accepted else
                        f": the winner ({r.peak_ratio:.3f}x alone) was {r.in_model:.3f}x in the model")
        lines.append(
            f"  {r.task.label}: default {r.default_cost:.4g} {unit}, best {r.best_cost:.4g} {unit} "
            f"({r.ratio:.3f}x, noise {r.noise:.1%}), {verdict}"
            + (f": {r.best}" if r.accepted else
               f" (best measured {r.peak_ratio:.3f}x)" if r.peak_ratio < 1.0 and r.in_model is None
               else "")
            + "".join(f"; {n} {status}" for status, n in sorted(Counter(o.status for o in r.rejected).items()))
        )
    if report.skipped:
        lines.append(f"budget spent: {report.skipped} tasks left for the next run")
    if report.interrupted:
        lines.append("interrupted: the tasks above were saved")
    return "\n".join(lines)
