"""Build, check and measure candidate schedules of one task.

Each candidate is the task's one-op module (grimc.tune.tasks) with its
schedule set, generated to C in this process and built by a pool of
parallel clang processes (`jobs`, default 2). Every candidate runs once on the same seeded inputs first; its
outputs must match the default schedule's (fp32, rtol 1e-4 and an absolute
tolerance of 1e-5 times the largest output: a new tile order reassociates the
sums), else it is discarded and logged as wrong.

Costs:

- `time_ms` (targets this machine runs): at 1 thread a sample is the CPU time
  of the calling thread (the one-op model runs there: its kernel plus a call's
  overhead, and time other processes take is not counted); with more threads
  the model is built with per-kernel timing and a sample is the kernel's own
  milliseconds. Every model runs twice to warm up; then rounds of one sample per
  candidate in a shuffled order (interleaved: drift hits all alike), each
  sample the mean of enough runs to last `MIN_SAMPLE_S`; the cost is the
  median over rounds.
- `icount` (aarch64, under qemu): instructions executed inside the kernel
  (grimc.tune.icount); exact, so one sample, no noise, and a build counted
  once (the default's twin and re-measurements reuse its count).
- `time_ms` on a remote device (grimc.device): each candidate is a static
  harness built with per-kernel timing; a sample is one run of it on the
  device (`DEVICE_REPEAT` timed runs after warm-up), its kernel's mean
  milliseconds; rounds are interleaved and shuffled as above.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import statistics
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from grimc.device import Device
from grimc.dialects.sched import KnobsAttr
from grimc.emit.codegen import GeneratedModel, generate
from grimc.errors import GrimcError
from grimc.runner import PROFILE_FLAG, ExeModel, HostModel, RunError, write_sources
from grimc.target import Target
from grimc.tune.tasks import Task, task_module
from grimc.tunedb import metric_for

if TYPE_CHECKING:
    from grimc.tune.fanout import RayFanout

MIN_SAMPLE_S = 0.002
"""A sample averages enough runs to last this long (timer resolution, call overhead)."""
MAX_RUNS = 200
RECENT = 16
"""Generated candidates kept for reuse: a batch and its re-measurement."""
DEVICE_REPEAT = 20
"""Timed runs per harness start on a remote device (a start costs a round trip)."""
RTOL = 1e-4
ATOL_SCALE = 1e-5

Perturb = Callable[[KnobsAttr, list[np.ndarray]], list[np.ndarray]]
"""A test hook: rewrites a candidate's outputs before the check (to plant a wrong kernel)."""


@dataclass
class Outcome:
    """One candidate's fate in a measurement batch."""

    attr: KnobsAttr
    status: str = "ok"
    """ok, invalid (the lowering refused it), build-failed, run-failed, wrong (outputs differ)."""
    samples: list[float] = field(default_factory=list)
    message: str = ""

    @property
    def cost(self) -> float:
        return statistics.median(self.samples) if self.samples else math.inf


def _build(c_path: str, out: str, target: str, flags: list[str], exe: bool, opt_level: str) -> str:
    """A pool job: build one candidate at -O`opt_level`; returns '' or the error's first line."""
    from grimc.toolchain import build_executable, build_shared, resolve_target

    spec = resolve_target(target)
    tmp = f"{out}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        if exe:
            harness = str(Path(c_path).with_name(Path(c_path).stem + "_main.c"))
            build_executable(
                [c_path, harness], tmp, spec, static=True, opt_level=opt_level, extra_flags=flags
            )
        else:
            build_shared([c_path], tmp, spec, opt_level=opt_level, extra_flags=flags)
    except GrimcError as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    os.replace(tmp, out)
    return ""


def seeded_inputs(gen: GeneratedModel, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(d.shape).astype(np.float32) for d in gen.inputs]


def same_outputs(got: Sequence[np.ndarray], want: Sequence[np.ndarray]) -> bool:
    scale = max((float(np.max(np.abs(w))) for w in want if w.size), default=1.0)
    return all(
        g.shape == w.shape and np.allclose(g, w, rtol=RTOL, atol=ATOL_SCALE * max(1.0, scale))
        for g, w in zip(got, want, strict=True)
    )


class Measurer:
    """Measures candidate schedules of the tasks of one optimized module."""

    def __init__(
        self,
        module: ModuleOp,
        target: Target,
        threads: int,
        workdir: Path,
        sparse_format: str = "bcr",
        jobs: int = 2,
        rounds: int = 5,
        seed: int = 0,
        perturb: Perturb | None = None,
        log: Callable[[str], None] = lambda _: None,
        opt_level: str = "3",
        device: Device | None = None,
        fanout: RayFanout | None = None,
    ):
        self.module, self.target, self.threads = module, target, threads
        self.opt_level = str(opt_level)
        """clang -O level of every candidate: the one the compiles it tunes for use."""
        self.workdir, self.sparse_format = workdir, sparse_format
        self.jobs, self.rounds, self.perturb, self.log = jobs, rounds, perturb, log
        self.device = device
        self.fanout = fanout
        """Where candidates are built and measured instead of here (grimc.tune.fanout)."""
        self.metric = metric_for(target, device.spec if device is not None else None)
        self.rng = random.Random(seed)
        self.measured = 0
        """Candidates timed or counted so far (a warm database makes none)."""
        self._pool: ThreadPoolExecutor | None = None
        self._counts: dict[Path, tuple[int, list[np.ndarray]]] = {}
        self.seconds_per_candidate: float | None = None
        """Wall time per candidate of recent batches (generate, build, check, measure)."""
        self._recent: OrderedDict[tuple[str, KnobsAttr], GeneratedModel | GrimcError] = OrderedDict()
        """The last candidates generated (or refused): `refusal` generates what `sources`
        builds next, so each candidate is generated once."""

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Measurer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _pool_(self) -> ThreadPoolExecutor:
        # Each job is a clang process; a thread only waits for it. (A process pool
        # would fork this process, models and all, and can hang on Ctrl-C.)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="clang")
        return self._pool

    # ---------------------------------------------------------------- build

    def _generate(self, task: Task, attr: KnobsAttr) -> GeneratedModel:
        module = task_module(self.module, task.op, {task.key: attr})
        return generate(module, self.target, self.threads, "grimc_task", self.sparse_format)

    def generated(self, task: Task, attr: KnobsAttr) -> GeneratedModel:
        """`attr`'s one-op model generated, or the GrimcError of a lowering that refuses it."""
        key = (task.signature + task.key, attr)
        if key not in self._recent:
            try:
                self._recent[key] = self._generate(task, attr)
            except GrimcError as exc:
                self._recent[key] = exc
            while len(self._recent) > RECENT:
                self._recent.popitem(last=False)
        got = self._recent[key]
        if isinstance(got, GrimcError):
            raise got
        return got

    def refusal(self, task: Task, attr: KnobsAttr) -> Outcome | None:
        """An `invalid` outcome when the lowering refuses `attr` (a search leaves it out
        of its batch instead of spending a slot on it), else None."""
        try:
            self.generated(task, attr)
        except GrimcError as exc:
            return Outcome(attr, "invalid", message=str(exc).splitlines()[0])
        return None

    def flops(self, task: Task) -> int:
        """The work of the task's kernel under its default schedule."""
        return self.generated(task, task.default).flops

    def sources(self, task: Task, attrs: Sequence[KnobsAttr]) -> list[tuple[Outcome, GeneratedModel | None, Path | None]]:
        """Generate every candidate here and write its sources; each with the path its
        artifact gets (named by a hash of what it is built from, so it is built once)."""
        exe = self.builds_harness
        out = []
        for attr in attrs:
            try:
                gen = self.generated(task, attr)
            except GrimcError as exc:
                out.append((Outcome(attr, "invalid", message=str(exc).splitlines()[0]), None, None))
                continue
            key = hashlib.sha256(
                (gen.source + self.target.name + gen.harness * exe + self.opt_level).encode()
            )
            cdir = self.workdir / key.hexdigest()[:16]
            write_sources(gen, cdir)
            if exe:
                (cdir / f"{gen.prefix}_main.c").write_text(gen.harness)
            out.append((Outcome(attr), gen, cdir / (gen.prefix if exe else f"{gen.prefix}.so")))
        return out

    @property
    def builds_harness(self) -> bool:
        """Candidates are harness executables (qemu, a device), not shared libraries."""
        return self.metric == "icount" or self.device is not None

    @property
    def build_flags(self) -> list[str]:
        return [] if self.metric == "icount" else [PROFILE_FLAG]

    def build(self, task: Task, attrs: Sequence[KnobsAttr]) -> list[tuple[Outcome, GeneratedModel | None, Path | None]]:
        """Generate every candidate here, build them in the pool."""
        jobs = []
        for outcome, gen, out in self.sources(task, attrs):
            future = None
            if out is not None and not out.exists():
                c_path = out.with_name(f"{gen.prefix}.c")  # type: ignore[union-attr]
                future = self._pool_().submit(
                    _build, str(c_path), str(out), self.target.name, self.build_flags,
                    self.builds_harness, self.opt_level,
                )
            jobs.append((outcome, gen, out, future))
        built = []
        for outcome, gen, out, future in jobs:
            error = future.result() if future is not None else ""
            if error:
                outcome.status, outcome.message = "build-failed", error
            built.append((outcome, gen, out))
        return built

    # -------------------------------------------------------------- measure

    def _sample(self, model: HostModel, inputs: list[np.ndarray], runs: int) -> float:
        """Milliseconds per run: the calling thread's CPU time at 1 thread (time slices
        other processes take do not count), else the kernels' own timers."""
        if self.threads == 1:
            start = time.thread_time()
            for _ in range(runs):
                model.run(inputs)
            return (time.thread_time() - start) * 1e3 / runs
        model.reset_profile()
        for _ in range(runs):
            model.run(inputs)
        return sum(p.ms for p in model.profile())

    def measure(self, task: Task, attrs: Sequence[KnobsAttr], rounds: int | None = None) -> list[Outcome]:
        """Outcomes of `attrs` (the first must be the default: the reference outputs)."""
        start = time.monotonic()
        if self.fanout is not None:
            outcomes = self.fanout.measure(self, task, attrs, rounds or self.rounds)
        elif self.metric == "icount":
            outcomes = self._count(self.build(task, attrs))
        elif self.device is not None:
            outcomes = self._time_on_device(self.build(task, attrs), rounds or self.rounds)
        else:
            outcomes = self._time(self.build(task, attrs), rounds or self.rounds)
        spent = (time.monotonic() - start) / len(attrs)
        self.seconds_per_candidate = spent if self.seconds_per_candidate is None else (
            (self.seconds_per_candidate + spent) / 2)
        for outcome in outcomes:
            if outcome.status != "ok":
                self.log(f"{task.label}: {outcome.status} candidate {outcome.attr}: {outcome.message}")
        return outcomes

    def check(self, outcomes: list[Outcome], outputs: list[list[np.ndarray] | None]) -> None:
        """Mark candidates whose outputs differ from the first (the default's) as wrong."""
        want = outputs[0]
        if want is None or outcomes[0].status != "ok":
            raise GrimcError(f"the default schedule {outcomes[0].attr} failed: {outcomes[0].message}")
        for outcome, got in zip(outcomes[1:], outputs[1:], strict=True):
            if outcome.status == "ok" and got is not None:
                if self.perturb is not None:
                    got = self.perturb(outcome.attr, got)
                if not same_outputs(got, want):
                    outcome.status, outcome.message = "wrong", "outputs differ from the default schedule's"

    def _count(self, built: list[tuple[Outcome, GeneratedModel | None, Path | None]]) -> list[Outcome]:
        from grimc.tune.icount import count_instructions

        outcomes = [b[0] for b in built]
        gen0 = built[0][1]
        inputs = seeded_inputs(gen0) if gen0 is not None else []
        outputs: list[list[np.ndarray] | None] = []
        for outcome, gen, exe in built:
            if outcome.status != "ok" or gen is None or exe is None:
                outputs.append(None)
                continue
            if exe not in self._counts:  # exact: the twin and a re-measurement are not rerun
                self._counts[exe] = count_instructions(gen, exe, inputs, self.threads)
            cost, outs = self._counts[exe]
            outcome.samples.append(float(cost))
            outputs.append(outs)
        self.check(outcomes, outputs)
        self.measured += sum(o.status == "ok" for o in outcomes)
        return outcomes

    def _first_run(
        self, outcome: Outcome, model: HostModel, inputs: list[np.ndarray]
    ) -> list[np.ndarray] | None:
        """A candidate's outputs; None, marked run-failed, when it does not run (an
        OpenCL work-group size the device refuses, say)."""
        try:
            return model.run(inputs)
        except RunError as exc:
            outcome.status, outcome.message = "run-failed", str(exc)
            return None

    def _time(self, built: list[tuple[Outcome, GeneratedModel | None, Path | None]], rounds: int) -> list[Outcome]:
        outcomes = [b[0] for b in built]
        models: dict[int, HostModel] = {}
        try:
            for i, (outcome, gen, lib) in enumerate(built):
                if outcome.status == "ok" and gen is not None and lib is not None:
                    models[i] = HostModel(gen, lib, lib.with_name(f"{gen.prefix}.weights.bin"), self.threads)
            gen0 = built[0][1]
            assert gen0 is not None or outcomes[0].status != "ok"
            inputs = seeded_inputs(gen0) if gen0 is not None else []
            outputs = [
                self._first_run(outcomes[i], models[i], inputs) if i in models else None
                for i in range(len(built))
            ]
            self.check(outcomes, outputs)
            live = [i for i in models if outcomes[i].status == "ok"]
            for i in live:  # warm-up
                models[i].run(inputs)
            start = time.perf_counter()
            models[live[0]].run(inputs)
            once = time.perf_counter() - start
            runs = max(1, min(MAX_RUNS, math.ceil(MIN_SAMPLE_S / max(once, 1e-7))))
            for _ in range(rounds):
                order = list(live)
                self.rng.shuffle(order)
                for i in order:
                    outcomes[i].samples.append(self._sample(models[i], inputs, runs))
            self.measured += len(live)
        finally:
            for model in models.values():
                model.close()
        return outcomes

    def _time_on_device(
        self, built: list[tuple[Outcome, GeneratedModel | None, Path | None]], rounds: int
    ) -> list[Outcome]:
        assert self.device is not None
        outcomes = [b[0] for b in built]
        models = {
            i: ExeModel(gen, exe, exe.with_name(f"{gen.prefix}.weights.bin"), self.target.name,
                        exe.parent, self.threads, self.device)
            for i, (outcome, gen, exe) in enumerate(built)
            if outcome.status == "ok" and gen is not None and exe is not None
        }
        gen0 = built[0][1]
        inputs = seeded_inputs(gen0) if gen0 is not None else []
        outputs = [models[i].run(inputs) if i in models else None for i in range(len(built))]
        self.check(outcomes, outputs)
        live = [i for i in models if outcomes[i].status == "ok"]
        for i, samples in device_rounds(models, live, inputs, rounds, self.rng).items():
            outcomes[i].samples.extend(samples)
        self.measured += len(live)
        return outcomes


def device_rounds(
    models: dict[int, ExeModel], live: list[int], inputs: list[np.ndarray], rounds: int,
    rng: random.Random,
) -> dict[int, list[float]]:
    """Interleaved timing on a device: `rounds` of one sample per live model, shuffled."""
    samples: dict[int, list[float]] = {i: [] for i in live}
    for _ in range(rounds):
        order = list(live)
        rng.shuffle(order)
        for i in order:
            _, stats = models[i].run_with_stats(inputs, repeat=DEVICE_REPEAT)
            samples[i].append(sum(stats.kernel_ms or ()))
    return samples
