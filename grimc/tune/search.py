"""Search one task's schedule space: default, tuned neighbours, then a genetic algorithm.

The first batch holds the cost model's default, the schedules tuned for the
nearest shapes of the same kind (transfer across layers), and one-knob
variations of the default; later batches breed the best measured candidates
(uniform crossover, mutation), seeded, until the task's time is up (with a
learned cost model, grimc.tune.learned, only the most promising of a larger
bred pool are measured). Every
batch measures the default twice (itself and a twin): costs are ratios to the
default of the same batch, and the twins' disagreement together with the
spread of the default's samples is the noise floor. The best few are then
re-measured together with the default, and a winner is accepted only when it
beats the default by more than the noise of that batch (`accept`): its own
default and twin ran beside it, and one disturbed early batch must not bar
every later win.
"""

from __future__ import annotations

import json
import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from grimc.dialects.sched import KnobsAttr
from grimc.tune import space
from grimc.tune.learned import POOL, cost_model
from grimc.tune.measure import Measurer, Outcome
from grimc.tune.tasks import Task
from grimc.tunedb import Record

MIN_NOISE = 0.02
"""The smallest relative noise floor assumed for wall time (timer and frequency jitter)."""
POPULATION = 6
"""New candidates per batch."""
REMEASURE = 3
"""Best candidates re-measured before a winner is accepted."""


def noise_floor(default: Sequence[float], twin: Sequence[float], metric: str) -> float:
    """Relative noise: the twins' disagreement, or the default's interquartile spread."""
    if metric == "icount":
        return 0.0
    d, t = statistics.median(default), statistics.median(twin)
    spread = 0.0
    if len(default) >= 4:
        q = statistics.quantiles(default, n=4)
        spread = (q[2] - q[0]) / d / 2
    return max(MIN_NOISE, abs(d - t) / d, spread)


def accept(default_cost: float, cost: float, noise: float) -> bool:
    """A candidate wins only by more than the noise (exact costs: by anything)."""
    return cost < default_cost * (1.0 - noise)


@dataclass
class TaskResult:
    """What tuning one task decided."""

    task: Task
    best: KnobsAttr
    default_cost: float
    best_cost: float
    noise: float
    measured: int = 0
    rejected: list[Outcome] = field(default_factory=list)
    interrupted: bool = False
    peak_cost: float | None = None
    """The lowest cost any candidate measured, accepted or not (None: `best_cost`):
    how far the default sits from the best schedule the search found."""
    in_model: float | None = None
    """Tuned / default time of this task's kernels inside the whole model (grimc.tune.confirm);
    a winner not below 1 there went back to the default."""

    @property
    def accepted(self) -> bool:
        return self.best != self.task.default

    @property
    def ratio(self) -> float:
        return self.best_cost / self.default_cost if self.default_cost else 1.0

    @property
    def peak_ratio(self) -> float:
        """Best measured / default: below 1 - noise only when the search found a win."""
        peak = self.best_cost if self.peak_cost is None else self.peak_cost
        return peak / self.default_cost if self.default_cost else 1.0

    def record(self, target: str, threads: int, version: str, metric: str) -> Record:
        task = self.task
        return Record(
            task.signature, target, threads, version, task.kind, task.key, task.shapes,
            json.dumps(self.best.knobs(), sort_keys=True),
            json.dumps(task.default.knobs(), sort_keys=True), metric,
            self.best_cost, self.default_cost, self.noise, self.measured,
        )


def _distance(a: str, b: str) -> float:
    va = [x for s in json.loads(a) for x in s]
    vb = [x for s in json.loads(b) for x in s]
    if len(va) != len(vb):
        return math.inf
    return sum(abs(math.log(max(x, 1) / max(y, 1))) for x, y in zip(va, vb, strict=True))


def transferred(task: Task, neighbours: Sequence[Record], measurer: Measurer, limit: int = 2) -> list[KnobsAttr]:
    """The tuned schedules of the nearest shapes, on this task (where they are valid)."""
    out = []
    for record in sorted((r for r in neighbours if r.tuned), key=lambda r: _distance(r.shapes, task.shapes)):
        knobs = {k: v for k, v in json.loads(record.knobs).items() if k in space.tunable(task.default)}
        attr = space.make(task.default, knobs, measurer.target)
        if attr is not None and attr != task.default and attr not in out:
            out.append(attr)
        if len(out) >= limit:
            break
    return out


def first_batch(measurer: Measurer, deadline: float) -> int:
    """Candidates the first batch can afford within the task's time (beside the default,
    its twin and the re-measurement), judged by earlier batches; 2 at least."""
    per = measurer.seconds_per_candidate
    if per is None:
        return POPULATION
    affordable = int((deadline - time.monotonic()) / per) - 2 - REMEASURE
    return max(2, min(POPULATION, affordable))


def tune_task(
    task: Task,
    measurer: Measurer,
    deadline: float,
    neighbours: Sequence[Record] = (),
    seed: int = 0,
    candidates: Sequence[KnobsAttr] | None = None,
    on_batch: Callable[[float], None] = lambda _: None,
    batches: int | None = None,
    learned: bool | None = None,
) -> TaskResult:
    """Tune `task` until `deadline` (time.monotonic); Ctrl-C ends it with what was measured.

    `candidates`: measure exactly these (one batch, no breeding), e.g. in tests.
    `on_batch(best ratio so far)` reports progress. `batches`: stop after this many
    (the first included) even with time left: a search that does not depend on speed.
    `learned`: rank bred candidates with a learned cost model (grimc.tune.learned;
    None: whenever xgboost is installed)."""
    default = task.default
    rng = random.Random(int(task.signature[:8], 16) ^ seed)
    seen: set[KnobsAttr] = {default}
    ratios: dict[KnobsAttr, float] = {}
    rejected: list[Outcome] = []
    noise = MIN_NOISE if measurer.metric == "time_ms" else 0.0
    """The noise of the latest batch: the re-measurement's decides a win, measured beside it."""
    worst = noise
    """The largest of any batch: what an interrupted task's unconfirmed win must beat."""
    default_cost, measured = math.inf, 0
    interrupted = False
    model = cost_model(learned, seed)

    def fresh(attrs: Sequence[KnobsAttr | None], n: int) -> list[KnobsAttr]:
        """Up to `n` candidates not seen before that the lowering accepts (one it
        refuses is logged as rejected and takes no slot in the batch)."""
        out = []
        for attr in attrs:
            if attr is not None and attr not in seen and len(out) < n:
                seen.add(attr)
                refused = measurer.refusal(task, attr)
                if refused is None:
                    out.append(attr)
                else:
                    measurer.log(f"{task.label}: invalid candidate {attr}: {refused.message}")
                    rejected.append(refused)
        return out

    def batch(attrs: list[KnobsAttr], rounds: int | None = None) -> list[Outcome]:
        nonlocal noise, worst, default_cost, measured
        outcomes = measurer.measure(task, [default, default, *attrs], rounds)
        d, t = outcomes[0], outcomes[1]
        noise = noise_floor(d.samples, t.samples, measurer.metric)
        worst = max(worst, noise)
        default_cost = d.cost
        measured += len(attrs)
        for outcome in outcomes[2:]:
            if outcome.status == "ok":
                ratios[outcome.attr] = outcome.cost / d.cost
            else:
                rejected.append(outcome)
                ratios.pop(outcome.attr, None)
        return outcomes

    try:
        if candidates is not None:
            batch(fresh(candidates, len(candidates)))
        else:
            first = transferred(task, neighbours, measurer)
            near = space.neighbours(default, measurer.target)
            rng.shuffle(near)
            batch(fresh([*first, *near], first_batch(measurer, deadline)))
            on_batch(min(ratios.values(), default=1.0))
            done = 1
            while time.monotonic() < deadline and (batches is None or done < batches):
                parents = sorted(ratios, key=ratios.__getitem__)[:4] or [default]
                children: list[KnobsAttr | None] = []
                for _ in range(20 * POPULATION):
                    a, b = rng.choice(parents), rng.choice([*parents, default])
                    child = space.crossover(a, b, measurer.target, rng)
                    children.append(space.mutate(child, measurer.target, rng) if child and rng.random() < 0.7 else child)
                    children.append(space.sample(default, measurer.target, rng))
                ranked = model.rank(
                    default.name, {default: 1.0} | ratios, neighbours,
                    [a for a in dict.fromkeys(children) if a is not None and a not in seen][
                        :POOL * POPULATION],
                ) if model is not None else None
                # half the batch the model's best, half bred as without it (exploration)
                new = fresh([*ranked[:POPULATION // 2], *children] if ranked is not None
                            else children, POPULATION)
                if not new:
                    break  # the space is exhausted
                batch(new)
                done += 1
                on_batch(min(ratios.values(), default=1.0))
    except KeyboardInterrupt:
        interrupted = True
    best, best_cost = default, default_cost
    peak = min([1.0, *ratios.values()])
    top = [a for a in sorted(ratios, key=ratios.__getitem__) if ratios[a] < 1.0][:REMEASURE]
    if top and not interrupted:
        try:  # the best few again, beside the default, with more rounds
            outcomes = batch(top, 2 * measurer.rounds)
            final = [o for o in outcomes[2:] if o.status == "ok"]
            if final:
                winner = min(final, key=lambda o: o.cost)
                best_cost = default_cost
                peak = min(1.0, winner.cost / default_cost)
                if accept(default_cost, winner.cost, noise):
                    best, best_cost = winner.attr, winner.cost
        except KeyboardInterrupt:
            interrupted = True
    elif top and interrupted:  # no time to re-measure: only a clear win counts
        attr = top[0]
        if accept(1.0, ratios[attr], 2 * worst):
            best, best_cost = attr, ratios[attr] * default_cost
    return TaskResult(task, best, default_cost, best_cost, noise, measured, rejected, interrupted,
                      peak * default_cost)
