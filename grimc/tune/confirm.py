"""Confirm tuned schedules in the whole model: a kernel that won alone must not lose in place.

A candidate wins on its one-op model (grimc.tune.measure), with the same
cache-warm inputs every run. In the model its inputs come from the layer
before, its neighbours share the caches, and its code lands elsewhere; a win
there is not guaranteed. So after the search the model is built twice with
kernel timers (`-DGRIMC_PROFILE`): with the cost model's schedules and with
the database's. The two run in rotating order; per round, the time of a
newly tuned task's kernels (those of its layers) in the tuned build over the
same kernels in the default build is a paired ratio. A record whose median
ratio is not below 1 goes back to the default schedule.

Only for wall time on this machine: instruction counts (qemu) do not depend
on the neighbours, and a remote device or OpenCL has no in-process timers.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

from grimc.artifacts import make_inputs
from grimc.driver import ModelSource, build_model
from grimc.options import CompileOptions
from grimc.tune.search import TaskResult
from grimc.tunedb import TuningDB

ROUNDS = 15
SAMPLE_S = 0.010
"""A sample runs the model enough times to last this long."""
SHARE = 0.1
"""Of `grimc tune`'s budget, what the search leaves for this check."""


def _layer_ms(model, inputs: list, runs: int) -> dict[str, float]:
    """Milliseconds per run of each layer's kernels."""
    model.reset_profile()
    for _ in range(runs):
        model.run(inputs)
    out: dict[str, float] = defaultdict(float)
    for p in model.profile():
        out[p.label] += p.ms
    return out


def confirm_in_model(
    source: ModelSource,
    opts: CompileOptions,
    db: TuningDB,
    results: Sequence[TaskResult],
    record: Callable[[TaskResult], None],
    workdir: Path,
    rounds: int = ROUNDS,
) -> None:
    """Set each accepted result's `in_model` ratio; revert (and `record` again) those
    that are not faster in the model."""
    accepted = [r for r in results if r.accepted]
    if not accepted:
        return
    builds = [
        build_model(source, workdir / f"confirm-{name}",
                    opts.replace(use_tuning_db=use, tuning_db=str(db.path), profile=True))
        for name, use in (("default", False), ("tuned", True))
    ]
    try:
        gen = builds[0].gen
        inputs = make_inputs(gen, {}, 0, [d.name for d in gen.inputs])
        for model in builds:
            model.run(inputs)  # warm-up
        start = time.perf_counter()
        builds[0].run(inputs)
        runs = max(1, math.ceil(SAMPLE_S / max(time.perf_counter() - start, 1e-6)))
        samples: list[list[dict[str, float]]] = [[], []]
        for r in range(rounds):
            for i in ((0, 1) if r % 2 == 0 else (1, 0)):
                samples[i].append(_layer_ms(builds[i], inputs, runs))
    finally:
        for model in builds:
            model.close()
    for result in accepted:
        layers = result.task.layers
        ratios = [
            sum(t.get(layer, 0.0) for layer in layers) / d_ms
            for d, t in zip(*samples, strict=True)
            if (d_ms := sum(d.get(layer, 0.0) for layer in layers)) > 0
        ]
        if not ratios:
            continue  # no timed kernel carries these layers' names
        result.in_model = statistics.median(ratios)
        if result.in_model >= 1.0:
            result.best, result.best_cost = result.task.default, result.default_cost
            record(result)
