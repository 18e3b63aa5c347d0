"""Compiler-aware choice of block shape and rate per layer (`grimc prune --auto`).

Each prunable layer gets one of a small set of candidates (block shape x rate)
or stays dense. The choice rests on two measurements:

- **latency**: the real compiled kernels on the target. The model is built once
  dense and once per candidate with every prunable layer pruned at that
  candidate, all with per-kernel profiling (`-DGRIMC_PROFILE`); kernels are
  timed separately, so one build times a candidate for every layer at once.
  The builds run interleaved, round after round, and each kernel's time is the
  median over the rounds (a shared machine is noisy).
- **sensitivity**: the validation loss increase when only that layer is pruned
  one-shot at the candidate (`grimc.train.sensitivity`, given to `choose`).

`choose` then solves the multiple-choice knapsack: one option per layer, the
sum of the chosen kernel times plus the kernels of no layer (pooling, dense
stems, ...) within the budget, at the least total sensitivity (ties: faster).

A *unit* is a node with prunable weights, named as everywhere in grimc
(`grimc.layers`: the profile labels its kernels with that name); its matrices (a
GRU's W and R) run in one kernel, so they share one choice.
"""

from __future__ import annotations

import itertools
import math
import statistics
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from grimc.layers import layer_names
from grimc.prune.discover import Layer, find_layers
from grimc.prune.plan import Options
from grimc.prune.rules import PruneError, Settings, fmt_block, merge_options, parse_block

DEFAULT_BLOCKS = ((4, 16), (8, 16), (16, 32), (8, 8), (16, 16))
DEFAULT_RATES = (2.0, 4.0, 8.0, 16.0)

Step = Callable[[str], None]
"""Progress callback: called once per build, timing round or evaluation, with a label."""


@dataclass(frozen=True)
class Candidate:
    """One block shape and rate a layer may get."""

    block: tuple[int, int]
    rate: float

    @property
    def options(self) -> dict:
        return {"block": fmt_block(self.block), "rate": self.rate}

    def __str__(self) -> str:
        return f"{fmt_block(self.block)} @ {self.rate:g}x"


def candidates(blocks: Iterable[tuple[int, int]] = DEFAULT_BLOCKS,
               rates: Iterable[float] = DEFAULT_RATES, balanced: bool = True) -> list[Candidate]:
    """Every block x rate that balanced blocks can reach (rate <= block cells)."""
    found = [Candidate(tuple(b), float(r)) for b, r in itertools.product(blocks, rates)  # type: ignore[arg-type]
             if not balanced or r <= b[0] * b[1]]
    if not found:
        raise PruneError("--auto: no candidate block x rate is reachable (rate > block cells)")
    return found


def parse_candidates(blocks: str | None, rates: str | None, balanced: bool = True) -> list[Candidate]:
    """Candidates from comma-separated lists (`--auto-blocks 8x16,16x32 --auto-rates 4,8`)."""
    block_list = DEFAULT_BLOCKS if blocks is None else [
        parse_block(b.strip(), "--auto-blocks") for b in blocks.split(",")]
    rate_list: Sequence[float] = DEFAULT_RATES
    if rates is not None:
        try:
            rate_list = [float(r) for r in rates.split(",")]
        except ValueError:
            raise PruneError(f"--auto-rates {rates!r}: expected numbers like 2,4,8") from None
        if not all(math.isfinite(r) and r > 1 for r in rate_list):
            raise PruneError(f"--auto-rates {rates!r}: every rate must be > 1")
    return candidates(block_list, rate_list, balanced)


@dataclass(frozen=True)
class Unit:
    """A node whose prunable matrices share one choice (they run in one kernel)."""

    name: str
    op: str
    layers: tuple[Layer, ...]
    """The matrices that get the choice (those the rules prune)."""

    @property
    def shape(self) -> str:
        return ", ".join(f"{layer.groups}x" * (layer.groups > 1) + "x".join(map(str, layer.matrix))
                         for layer in self.layers)


def find_units(model: onnx.ModelProto, options: Options) -> list[Unit]:
    """The nodes with at least one weight that `options` prunes, in graph order."""
    pruned = {p.layer.weight: p.layer for p in options.plan(find_layers(model))
              if p.dense_reason is None}
    units = []
    for node, name in zip(model.graph.node, layer_names(model.graph), strict=True):
        layers = tuple(pruned.pop(w) for w in node.input if w in pruned)
        if layers:
            units.append(Unit(name, node.op_type, layers))
    return units


def unit_config(units: Sequence[Unit], picks: Mapping[str, Candidate | None]) -> dict:
    """A `grimc prune` config mapping that applies `picks` (None: dense) by exact layer name."""
    layers: dict[str, object] = {}
    for unit in units:
        pick = picks.get(unit.name)
        for layer in unit.layers:
            # layer names are sanitized (no glob characters): each key names one layer
            layers[layer.name] = ("dense" if pick is None else
                                  {"block": fmt_block(pick.block), "rate": pick.rate})
    return {"layers": layers}


# ---------------------------------------------------------------------- measurement


def static_shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    """Input shapes with every symbolic dim (batch, sequence) timed at 1."""
    inits = {t.name for t in model.graph.initializer}
    shapes = {}
    for vi in model.graph.input:
        dims = vi.type.tensor_type.shape.dim
        if vi.name not in inits and any(not d.HasField("dim_value") or d.dim_value < 1
                                        for d in dims):
            shapes[vi.name] = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
                               for d in dims]
    return shapes


class KernelTimer:
    """Builds models with per-kernel profiling and times them interleaved.

    Each round runs every loaded model once to warm its caches, then `runs` times
    and reads its per-kernel means; `measure` returns each kernel's median over the
    rounds. Short rounds, many of them: on a shared machine a round the process
    was preempted in is an outlier the median drops, where one long mean would
    keep it.
    """

    def __init__(self, workdir: Path | None = None, target: str | None = None,
                 threads: int = 1, rounds: int = 40, runs: int = 5, seed: int = 0) -> None:
        from grimc.options import CompileOptions
        from grimc.target import resolve_target

        self.options = CompileOptions(target=target, threads=threads, profile=True)
        if target is not None and not resolve_target(target).runs_natively:
            raise PruneError(f"--target {target}: --auto times kernels in-process, on a target "
                             "this machine runs")
        self._tmp = tempfile.TemporaryDirectory(prefix="grimc-auto-") if workdir is None else None
        self.workdir = Path(self._tmp.name if self._tmp else workdir)  # type: ignore[arg-type]
        self.rounds, self.runs = rounds, runs
        self._rng = np.random.default_rng(seed)
        self._models: list = []
        self._inputs: list[list[np.ndarray]] = []

    def add(self, model: onnx.ModelProto) -> int:
        """Compile and load one model; returns its index for `measure`."""
        from grimc.driver import build_model
        from grimc.runner import HostModel

        index = len(self._models)
        built = build_model(model, self.workdir / f"m{index}", self.options,
                            input_shapes=static_shapes(model), prefix=f"auto{index}")
        assert isinstance(built, HostModel)  # targets were checked in __init__
        gen = built.gen
        self._models.append(built)
        self._inputs.append([self._rng.standard_normal(d.shape).astype(np.float32)
                             for d in gen.inputs])
        return index

    def measure(self, indices: Sequence[int] | None = None,
                step: Step | None = None) -> list[list[tuple[str, float]]]:
        """Per model (all, or those of `indices`, in that order): (kernel label, median ms
        per run) for each kernel."""
        chosen = list(range(len(self._models)) if indices is None else indices)
        samples = {i: [[] for _ in self._models[i].gen.kernels] for i in chosen}
        for r in range(self.rounds):
            if step:
                step(f"timing round {r + 1}/{self.rounds}")
            # interleaved: every round runs each model once; no model always goes first
            for i in (chosen if r % 2 == 0 else reversed(chosen)):
                model = self._models[i]
                model.run(self._inputs[i])  # caches warm again after the other models
                model.reset_profile()
                for _ in range(self.runs):
                    model.run(self._inputs[i])
                for k, prof in enumerate(model.profile()):
                    samples[i][k].append(prof.ms)
        return [[(k.label, statistics.median(times)) for k, times in
                 zip(self._models[i].gen.kernels, samples[i], strict=True)] for i in chosen]

    def close(self) -> None:
        for model in self._models:
            model.close()
        self._models.clear()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> KernelTimer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Latency:
    """Measured milliseconds: per unit dense and at each candidate, and the rest."""

    dense: dict[str, float]
    pruned: dict[str, dict[Candidate, float]]
    other: float
    """Kernels of no unit (identical in every build; median over the builds)."""

    def of(self, unit: str, pick: Candidate | None) -> float:
        return self.dense[unit] if pick is None else self.pruned[unit][pick]

    def model(self, picks: Mapping[str, Candidate | None]) -> float:
        """Predicted model latency: the chosen kernels plus the rest."""
        return self.other + sum(self.of(u, picks.get(u)) for u in self.dense)

    @property
    def dense_model(self) -> float:
        return self.other + sum(self.dense.values())


def split_times(kernels: Sequence[tuple[str, float]], units: Sequence[Unit]) -> tuple[dict[str, float], float]:
    """Kernel times summed per unit (kernels are labelled with their layer), and the sum
    of the kernels of no unit."""
    per_unit = dict.fromkeys((u.name for u in units), 0.0)
    other = 0.0
    for label, ms in kernels:
        if label in per_unit:
            per_unit[label] += ms
        else:
            other += ms
    return per_unit, other


def measure_latency(model: onnx.ModelProto, units: Sequence[Unit], cands: Sequence[Candidate],
                    options: Options, timer: KernelTimer, step: Step | None = None) -> Latency:
    """Build the model dense and once per candidate (every unit pruned at it), time them."""
    from grimc.prune.model import prune_model

    if step:
        step("dense build")
    indices = [timer.add(model)]
    for cand in cands:
        if step:
            step(f"build {cand}")
        base = merge_options(options.base, cand.options)
        pruned = prune_model(model, config=options.config, include=options.include,
                             exclude=options.exclude, **base).model
        indices.append(timer.add(pruned))
    measured = [split_times(kernels, units) for kernels in timer.measure(indices, step)]
    dense, _ = measured[0]
    pruned_ms = {u.name: {c: measured[1 + i][0][u.name] for i, c in enumerate(cands)}
                 for u in units}
    return Latency(dense, pruned_ms, statistics.median(other for _, other in measured))


# ---------------------------------------------------------------------- the choice


@dataclass(frozen=True)
class Pick:
    """One unit's choice: the candidate (None: dense), its measured ms and sensitivity."""

    unit: Unit
    candidate: Candidate | None
    ms: float
    dense_ms: float
    sensitivity: float


@dataclass
class AutoChoice:
    """The chosen per-unit candidates and the latency they predict."""

    picks: list[Pick]
    latency: Latency
    budget_ms: float
    measured_ms: float | None = None
    measured_dense_ms: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def by_unit(self) -> dict[str, Candidate | None]:
        return {p.unit.name: p.candidate for p in self.picks}

    @property
    def predicted_ms(self) -> float:
        return self.latency.model(self.by_unit)

    def config(self) -> dict:
        """The `grimc prune` config mapping that applies the choice."""
        return unit_config([p.unit for p in self.picks], self.by_unit)

    def table(self) -> str:
        """The per-layer table, then predicted (and measured) model latency."""
        head = (f"{'layer':28s} {'shape':>14s} {'block':>6s} {'rate':>5s} {'dense ms':>9s} "
                f"{'pruned ms':>9s} {'val loss +':>10s}")
        rows = [head]
        for p in self.picks:
            block = fmt_block(p.candidate.block) if p.candidate else "dense"
            rate = f"{p.candidate.rate:g}x" if p.candidate else "1x"
            name = p.unit.name if len(p.unit.name) <= 28 else "..." + p.unit.name[-25:]
            rows.append(f"{name:28s} {p.unit.shape:>14s} {block:>6s} {rate:>5s} "
                        f"{p.dense_ms:9.4f} {p.ms:9.4f} {p.sensitivity:+10.4f}")
        rows.append(f"{'other kernels':28s} {'':>14s} {'':>6s} {'':>5s} "
                    f"{self.latency.other:9.4f} {self.latency.other:9.4f}")
        dense = self.latency.dense_model
        rows.append(f"model latency (sum of kernels): target {self.budget_ms:.4f} ms; predicted "
                    f"{self.predicted_ms:.4f} ms ({dense / self.predicted_ms:.2f}x of dense "
                    f"{dense:.4f} ms)")
        if self.measured_ms is not None and self.measured_dense_ms is not None:
            rows.append(f"measured: {self.measured_ms:.4f} ms, dense {self.measured_dense_ms:.4f} "
                        f"ms ({self.measured_dense_ms / self.measured_ms:.2f}x)")
        return "\n".join(rows)


def check_target(target_ms: float | None, speedup: float | None) -> None:
    """Exactly one of a latency target (ms > 0) and a speedup (>= 1)."""
    if (target_ms is None) == (speedup is None):
        raise PruneError("--auto: give one of --latency-target MS or --speedup X")
    if target_ms is not None and not (math.isfinite(target_ms) and target_ms > 0):
        raise PruneError(f"--latency-target {target_ms:g}: expected milliseconds > 0")
    if speedup is not None and not (math.isfinite(speedup) and speedup >= 1):
        raise PruneError(f"--speedup {speedup:g}: expected a factor >= 1")


def budget(latency: Latency, target_ms: float | None = None, speedup: float | None = None) -> float:
    """The latency budget in ms: `target_ms`, or the measured dense model / `speedup`."""
    check_target(target_ms, speedup)
    return target_ms if target_ms is not None else latency.dense_model / speedup  # type: ignore[operator]


def choose(units: Sequence[Unit], latency: Latency,
           sensitivity: Mapping[str, Mapping[Candidate, float]], budget_ms: float,
           resolution: int = 4000) -> AutoChoice:
    """One option per unit (dense or a measured candidate) with the predicted model
    latency within `budget_ms` at the least total sensitivity (negative changes count
    as 0; ties go to the faster option). Exact up to rounding every option's ms up to
    a `budget/resolution` grid, so the result always meets the budget.

    Raises PruneError when even the fastest options exceed the budget.
    """
    options: list[list[tuple[Candidate | None, float, float]]] = []
    for unit in units:
        opts: list[tuple[Candidate | None, float, float]] = [(None, latency.dense[unit.name], 0.0)]
        for cand, ms in latency.pruned[unit.name].items():
            opts.append((cand, ms, max(0.0, float(sensitivity[unit.name][cand]))))
        options.append(opts)
    fastest = latency.other + sum(min(ms for _, ms, _ in opts) for opts in options)
    if fastest > budget_ms:
        raise PruneError(
            f"--auto: latency target {budget_ms:.4f} ms is out of reach: the fastest choice "
            f"measures {fastest:.4f} ms (dense {latency.dense_model:.4f} ms)")
    cap = budget_ms - latency.other
    quantum = cap / resolution
    tie = 1e-9 / max(cap, 1e-12)
    best = np.full(resolution + 1, np.inf)
    best[0] = 0.0
    back: list[np.ndarray] = []
    for opts in options:
        new = np.full_like(best, np.inf)
        arg = np.full(best.shape, -1)
        for j, (_, ms, sens) in enumerate(opts):
            w = math.ceil(ms / quantum - 1e-9)
            if w > resolution:
                continue
            shifted = np.full_like(best, np.inf)
            shifted[w:] = best[: resolution + 1 - w] + sens + tie * ms
            better = shifted < new
            new[better] = shifted[better]
            arg[better] = j
        back.append(arg)
        best = new
    if np.isinf(best).all():  # rounding up lost a feasible but tight solution
        chosen = [min(range(len(opts)), key=lambda j, o=opts: o[j][1]) for opts in options]
    else:
        k = int(np.argmin(best))
        chosen = []
        for opts, arg in zip(reversed(options), reversed(back), strict=True):
            j = int(arg[k])
            chosen.append(j)
            k -= math.ceil(opts[j][1] / quantum - 1e-9)
        chosen.reverse()
    picks = [Pick(unit, opts[j][0], opts[j][1], latency.dense[unit.name],
                  0.0 if opts[j][0] is None else float(sensitivity[unit.name][opts[j][0]]))
             for unit, opts, j in zip(units, options, chosen, strict=True)]
    return AutoChoice(picks, latency, budget_ms)


def measure_model(model: onnx.ModelProto, reference: onnx.ModelProto, timer: KernelTimer,
                  step: Step | None = None) -> tuple[float, float]:
    """(ms of `model`, ms of `reference`) as the sum of their kernels, timed interleaved."""
    times = timer.measure([timer.add(model), timer.add(reference)], step)
    return sum(ms for _, ms in times[0]), sum(ms for _, ms in times[1])


def settings_for(options: Options, cand: Candidate) -> Settings:
    """The rule a layer gets at `cand` under the run's other options (balanced, row_share)."""
    return Settings.from_options(merge_options(options.base,
                                               {"block": cand.block, "rate": cand.rate}))
