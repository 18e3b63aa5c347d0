"""Default against tuned schedules, end to end: `python -m benches.tuning`.

    python -m benches.tuning                                  # ResNet-18 6x and the GRU, 1 thread
    python -m benches.tuning --models resnet18,gru-dense,layers --budget 300 --threads 1,2

Models: the cases of benches.bcr_models (pruned as that bench prunes them),
`gru-dense` (the same GRU unpruned) and `layers`, the per-layer set of
benches/bcr_layers.py as one-layer models, pruned with the same blocks and
rates. For each, `grimc tune` runs into a fresh database with the given
budget; then the model is built `--copies` times (3) with the cost model's
schedules (`use_tuning_db=False`) and as many times with the database's: the
same code loaded at other addresses runs some % apart, which one build of
each cannot tell from a schedule's effect. All run in rotating order,
`--rounds` times; a sample is the mean of enough runs for 10 ms (thread CPU
time at 1 thread, wall time otherwise).

Reported per model: the median over rounds of tuned/default (the means of the
builds, paired within each round so that drift hits both); the noise floor
(`compare`): the larger of that median's 95 % half-width (1.96 x 1.2533 x
IQR / 1.349 / sqrt(rounds)) and 1.96 standard errors of a ratio of two
means of `--copies` builds, from each build's distance to its group's mean;
the verdict (faster / slower beyond the noise, else within noise); and, from the
tuner's own per-task report, the share of the default's kernel time in tasks
whose cost-model schedule is within 10 % of the best candidate the search
measured ("default near best"). Results go to benches/results/tuning.md.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from benches.bcr_models.cases import CASES, Case, model_input, select
from grimc import zoo
from grimc.driver import CompileOptions, build_model
from grimc.prune import prune_model
from grimc.tune.tuner import TuneReport, format_report, tune_model
from grimc.tunedb import TuningDB

RESULTS = Path(__file__).parent / "results" / "tuning.md"
SAMPLE_S = 0.010
NEAR = 0.10
"""A default within this of the best measured schedule counts as near it."""


@dataclass(frozen=True)
class Bench:
    """One model to tune: how to build it, and its BCR block and rate (None: dense)."""

    name: str
    title: str
    build: Callable[[], onnx.ModelProto]
    block: str = "8x16"
    rate: float | None = None
    exclude: tuple[str, ...] = ()
    layer: bool = False
    """One of the per-layer set (tuned with --layer-budget)."""

    def model(self) -> onnx.ModelProto:
        model = self.build()
        if self.rate is None:
            return model
        return prune_model(model, block=self.block, rate=self.rate, exclude=self.exclude).model


def _of_case(case: Case) -> Bench:
    return Bench(case.name, case.title, lambda: zoo.build(case.model, **case.kwargs),
                 case.block, case.rate, case.exclude)


def _conv(cin: int, cout: int, hw: int, k: int) -> Callable[[], onnx.ModelProto]:
    def build() -> onnx.ModelProto:
        b = zoo.GraphBuilder(seed=0)
        x = b.input("input", (1, cin, hw, hw))
        return b.finish(["input"], {"output": b.conv(x, cout, k, bias=True)})
    return build


def _linear(rows: int, k: int, n: int) -> Callable[[], onnx.ModelProto]:
    def build() -> onnx.ModelProto:
        b = zoo.GraphBuilder(seed=0)
        x = b.input("input", (rows, k))
        return b.finish(["input"], {"output": b.gemm(x, n, gain=1.0)})
    return build


def layer_set(quick: bool) -> list[Bench]:
    """benches/bcr_layers.py's shapes as one-layer models (spatial size / 4 and the
    GEMMs / 4 under --quick), pruned 8x in 8x16 blocks (the GEMMs 10x in 16x32)."""
    q = 4 if quick else 1
    convs = [(256, 256, 56, 3), (512, 512, 14, 3), (64, 64, 56, 3), (256, 256, 28, 1)]
    out = [Bench(f"conv{k}x{k}-{ci}-{co}-{hw}", f"conv{k}x{k} {ci}->{co} @{hw // q}, 8x",
                 _conv(ci, co, hw // q, k), "8x16", 8.0, layer=True) for ci, co, hw, k in convs]
    for rows in (1, 100):
        out.append(Bench(f"gemm-{rows}", f"GEMM {rows}x{1024 // q}->{3072 // q}, 10x",
                         _linear(rows, 1024 // q, 3072 // q), "16x32", 10.0, layer=True))
    return out


def benches(names: list[str], quick: bool) -> list[Bench]:
    """The named models in order (`layers`: the per-layer set; `gru-dense`: the GRU unpruned)."""
    out: list[Bench] = []
    for name in names:
        if name == "layers":
            out += layer_set(quick)
        elif name == "gru-dense":
            (gru,) = select(["gru"], quick)
            out.append(Bench("gru-dense", gru.title.rsplit(",", 1)[0] + ", dense",
                             lambda gru=gru: zoo.build(gru.model, **gru.kwargs)))
        else:
            out += [_of_case(c) for c in select([name], quick)]
    return out


def run_rounds(models: list, x: np.ndarray, rounds: int, threads: int) -> list[list[float]]:
    """Milliseconds per run of each model: `rounds` samples each, in rotating order."""
    clock = time.thread_time if threads == 1 else time.perf_counter
    for m in models:
        m.run([x])
    start = time.perf_counter()
    models[0].run([x])
    runs = max(1, math.ceil(SAMPLE_S / max(time.perf_counter() - start, 1e-6)))
    samples: list[list[float]] = [[] for _ in models]
    for r in range(rounds):
        order = [(i + r) % len(models) for i in range(len(models))]
        for i in order:
            t0 = clock()
            for _ in range(runs):
                models[i].run([x])
            samples[i].append((clock() - t0) * 1e3 / runs)
    return samples


def paired(samples: list[float], base: list[float]) -> tuple[float, float]:
    """Median of the per-round ratios samples/base, and the half-width of its 95 % interval."""
    ratios = [s / b for s, b in zip(samples, base, strict=True)]
    q = statistics.quantiles(ratios, n=4)
    return statistics.median(ratios), 1.96 * 1.2533 * (q[2] - q[0]) / 1.349 / math.sqrt(len(ratios))


def compare(default: list[list[float]], tuned: list[list[float]]) -> tuple[float, float]:
    """tuned/default from K builds of each (samples per build, same rounds): the median over
    rounds of the ratio of the builds' means, and its noise floor, the larger of that
    median's 95 % half-width and 1.96 standard errors of a ratio of two K-build means,
    estimated from how far each build sits from its group's mean (the same code, loaded
    at other addresses, runs some % apart: one twin build cannot tell that)."""
    rounds = range(len(default[0]))
    ratio, half = paired([statistics.fmean(b[r] for b in tuned) for r in rounds],
                         [statistics.fmean(b[r] for b in default) for r in rounds])
    devs = []
    for group in (default, tuned):
        medians = [statistics.median(b) for b in group]
        devs += [m / statistics.fmean(medians) - 1.0 for m in medians]
    spread = math.sqrt(sum(e * e for e in devs) / max(1, len(devs) - 2))
    return ratio, max(half, 1.96 * spread * math.sqrt(2.0 / len(default)))


def near_share(report: TuneReport) -> float:
    """Share of the default's kernel time in tasks whose default is within NEAR of the best
    measured candidate (a task's time counts once per layer it serves)."""
    weight = {id(r): r.default_cost * len(r.task.layers or [0]) for r in report.results}
    total = sum(weight.values())
    near = sum(weight[id(r)] for r in report.results if r.peak_ratio >= 1.0 - NEAR)
    return near / total if total else 1.0


def verdict(ratio: float, noise: float) -> str:
    return "faster" if ratio < 1.0 - noise else "slower" if ratio > 1.0 + noise else "within noise"


def bench_case(bench: Bench, target: str, threads: int, budget: float, rounds: int,
               workdir: Path, copies: int = 3) -> dict:
    model = bench.model()
    path = workdir / f"{bench.name}.onnx"
    onnx.save(model, path)
    db = TuningDB(workdir / f"{bench.name}-{threads}.sqlite")
    start = time.monotonic()
    report = tune_model(str(path), None, db, budget, target=target, threads=threads,
                        workdir=workdir / f"tune-{bench.name}-{threads}")
    tuning_s = time.monotonic() - start
    x = model_input(model)
    opts = CompileOptions(target=target, threads=threads, tuning_db=str(db.path))
    builds = [
        build_model(str(path), workdir / f"{bench.name}-{threads}-{name}{i}",
                    opts.replace(use_tuning_db=use))
        for name, use in (("default", False), ("tuned", True)) for i in range(copies)
    ]
    outs = [m.run([x])[0] for m in builds]
    samples = run_rounds(builds, x, rounds, threads)
    for m in builds:
        m.close()
    default, tuned = samples[:copies], samples[copies:]
    ratio, noise = compare(default, tuned)
    return {
        "case": bench.title, "threads": threads,
        "default_ms": statistics.median(s for b in default for s in b),
        "tuned_ms": statistics.median(s for b in tuned for s in b), "ratio": ratio, "noise": noise,
        "verdict": verdict(ratio, noise), "near": near_share(report),
        "max_diff": float(max(np.max(np.abs(o - outs[0])) for o in outs)), "tuning_s": tuning_s,
        "tasks": report.tasks, "accepted": sum(r.accepted for r in report.results),
        "report": format_report(report),
    }


def markdown(rows: list[dict], args: argparse.Namespace) -> str:
    lines = [
        "# Tuned against default schedules",
        "",
        f"`python -m benches.tuning {' '.join(sys.argv[1:])}` (target {args.target}, budget "
        f"{args.budget:g} s per model, {args.layer_budget:g} s per layer"
        f"{', quick variants' if args.quick else ''}; machine shared "
        "with other jobs, 2 cores).",
        "",
        "| model | threads | default ms | tuned ms | tuned/default | noise floor | verdict "
        "| tasks tuned | default near best | tuning s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['threads']} | {r['default_ms']:.3f} | {r['tuned_ms']:.3f} | "
            f"{r['ratio']:.3f} | {r['noise']:.1%} | {r['verdict']} | {r['accepted']}/{r['tasks']} | "
            f"{r['near']:.0%} | {r['tuning_s']:.0f} |"
        )
    lines += ["", "Per task (the tuner's report):", ""]
    for r in rows:
        lines += [f"## {r['case']}, {r['threads']} thread(s)", "", "```", r["report"], "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benches.tuning", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="resnet18,gru",
                   help=f"of {', '.join(CASES)}, gru-dense, layers (the per-layer set)")
    p.add_argument("--target", default="native")
    p.add_argument("--threads", default="1")
    p.add_argument("--budget", type=float, default=300.0, help="tuning seconds per model")
    p.add_argument("--layer-budget", type=float, default=60.0,
                   help="tuning seconds per model of the per-layer set (one task each)")
    p.add_argument("--rounds", type=int, default=31, help="samples per build, rotating order")
    p.add_argument("--copies", type=int, default=3,
                   help="builds of each variant (default and tuned), loaded side by side")
    p.add_argument("--quick", action="store_true", help="the small variants of the models")
    p.add_argument("--out", type=Path, default=RESULTS, help="the Markdown report")
    p.add_argument("--no-write", action="store_true", help="do not write the report")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="grimc-bench-tuning-") as tmp:
        for case in benches(args.models.split(","), args.quick):
            for threads in (int(t) for t in args.threads.split(",")):
                budget = args.layer_budget if case.layer else args.budget
                row = bench_case(case, args.target, threads, budget, args.rounds, Path(tmp),
                                 args.copies)
                print(f"{row['case']} x{threads}: default {row['default_ms']:.3f} ms, tuned "
                      f"{row['tuned_ms']:.3f} ms, ratio {row['ratio']:.3f} (noise "
                      f"{row['noise']:.1%}, {row['verdict']}), {row['accepted']}/{row['tasks']} "
                      f"tasks tuned, default near best for {row['near']:.0%} of kernel time",
                      flush=True)
                print(row["report"], flush=True)
                rows.append(row)
    if not args.no_write:
        args.out.write_text(markdown(rows, args) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
