"""`grimc prune --auto` against a fixed 8x16 block and rate: `python -m benches.prune_auto`.

For each model of benches.accuracy (digits CNN, JapaneseVowels GRU) and seed:
train the dense model on 80 % of the training split (the other 20 % is the
validation data `--auto` measures sensitivity on), then

- *fixed*: every prunable layer 8x16 at 8x (`--rate`), retrained (one-shot + masked
  fine-tuning, the `grimc prune --retrain` path);
- *auto = fixed ms*: `--auto` with the latency target set to the fixed
  choice's measured latency, retrained the same way (equal latency: does it
  keep more accuracy?);
- *auto faster*: `--auto` at a tighter target (`--faster` of the fixed
  latency, or the fastest choice when that is out of reach): does it keep
  the fixed choice's accuracy at lower latency?

Accuracy is top-1 on the test split. Latency is the sum of the model's
kernel times in profiled builds (batch 1, one thread), each kernel's median
over interleaved rounds; the dense, fixed and auto models of a seed are timed
in one session. Writes benches/results/prune_auto.{md,json}.

    python -m benches.prune_auto                 # 3 seeds, both models
    python -m benches.prune_auto --models digits --rate 16   # add digits against 16x
    python -m benches.prune_auto --quick         # seed 0, digits, short training
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from benches.accuracy.__main__ import deterministic, export
from benches.accuracy.data import Split
from benches.accuracy.models import CASES, Case
from grimc.prune.auto import (
    AutoChoice,
    Candidate,
    KernelTimer,
    candidates,
    choose,
    find_units,
    measure_latency,
)
from grimc.prune.plan import Options
from grimc.train.fit import evaluate, fit
from grimc.train.onnx_torch import OnnxModule
from grimc.train.retrain import retrain_model
from grimc.train.sensitivity import sensitivity

RESULTS = Path(__file__).resolve().parent / "results"


def split_val(train: Split, seed: int) -> tuple[Split, Split]:
    """(fit, validation): a stratified 80/20 split of the training data."""
    from sklearn.model_selection import train_test_split

    xa, xb, ya, yb = train_test_split(train.x, train.y, test_size=0.2, random_state=seed,
                                      stratify=train.y)
    return Split(xa, ya), Split(xb, yb)


def kernel_ms(timer: KernelTimer, models: list[onnx.ModelProto]) -> list[float]:
    """Sum-of-kernels latency of each model, timed interleaved in one session."""
    indices = [timer.add(m) for m in models]
    return [sum(ms for _, ms in kernels) for kernels in timer.measure(indices)]


def table_rows(choice: AutoChoice) -> list[dict]:
    return [{"layer": p.unit.name, "shape": p.unit.shape,
             "block": None if p.candidate is None else list(p.candidate.block),
             "rate": 1.0 if p.candidate is None else p.candidate.rate,
             "dense_ms": p.dense_ms, "ms": p.ms, "sensitivity": p.sensitivity}
            for p in choice.picks]


def run_case(case: Case, seeds: list[int], args) -> dict:
    train_all, test = case.load()
    te = case.samples(test)
    cands = candidates()
    options = Options.resolve()
    runs: list[dict] = []
    for seed in seeds:
        deterministic(seed, args.threads)
        train, val = split_val(train_all, seed)
        tr, va = case.samples(train), case.samples(val)
        dense = case.build()
        fit(dense, tr, epochs=max(1, case.epochs // args.shorten), seed=seed, lr=case.lr,
            batch_size=case.batch_size)
        dense_onnx = export(copy.deepcopy(dense), case.example(train))
        units = find_units(dense_onnx, options)
        t0 = time.perf_counter()
        _, sens = sensitivity(dense_onnx, units, cands, va, options)
        with KernelTimer(rounds=args.rounds, runs=args.runs, seed=seed) as timer:
            latency = measure_latency(dense_onnx, units, cands, options, timer)
        fixed = Candidate((8, 16), args.rate)
        fixed_ms = latency.model({u.name: fixed for u in units})
        fastest = latency.other + sum(min(latency.dense[u.name], *latency.pruned[u.name].values())
                                      for u in units)
        targets = {"auto = fixed ms": fixed_ms, "auto faster": max(args.faster * fixed_ms, fastest)}
        choices = {name: choose(units, latency, sens, ms) for name, ms in targets.items()}
        measure_s = time.perf_counter() - t0
        ft = max(1, case.finetune_epochs // args.shorten)
        kw = {"epochs": ft, "seed": seed, "lr": case.lr, "batch_size": case.batch_size}
        models = {"fixed": {"block": "8x16", "rate": args.rate}} | {
            name: {"config": choice.config()} for name, choice in choices.items()}
        row: dict = {"seed": seed, "dense": evaluate(dense, te)[1], "measure_s": measure_s,
                     "predicted_ms": {"dense": latency.dense_model, "fixed": fixed_ms} | {
                         n: c.predicted_ms for n, c in choices.items()},
                     "choices": {n: table_rows(c) for n, c in choices.items()},
                     "accuracy": {}, "tables": {n: c.table() for n, c in choices.items()}}
        pruned = {}
        for name, prune_options in models.items():
            deterministic(seed, args.threads)
            result = retrain_model(onnx.load_from_string(dense_onnx.SerializeToString()), tr,
                                   prune_options=prune_options, **kw).result
            row["accuracy"][name] = evaluate(OnnxModule(result.model), te)[1]
            pruned[name] = result.model
        with KernelTimer(rounds=args.rounds, runs=args.runs, seed=seed) as timer:
            measured = kernel_ms(timer, [dense_onnx, *pruned.values()])
        row["measured_ms"] = dict(zip(["dense", *pruned], measured, strict=True))
        runs.append(row)
        print(f"{case.name} seed {seed}: dense {100 * row['dense']:.2f}  " + "  ".join(
            f"{n} {100 * a:.2f} ({row['measured_ms'][n]:.4f} ms)"
            for n, a in row["accuracy"].items()), file=sys.stderr, flush=True)
    return {"name": case.name, "title": case.title, "rate": args.rate, "runs": runs,
            "faster": args.faster, "candidates": [str(c) for c in cands]}


def _cell(values: list[float], scale: float = 100.0, digits: int = 2) -> str:
    mean = statistics.fmean(values) * scale
    spread = statistics.stdev(values) * scale if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {spread:.{digits}f}"


def write_report(results: dict, out: Path) -> None:
    lines = ["# `grimc prune --auto` against fixed 8x16 blocks (`python -m benches.prune_auto`)",
             "",
             "Top-1 test accuracy in %, mean ± standard deviation over the seeds listed. "
             "Latency: sum of the model's kernel times (batch 1, one thread, profiled build, "
             "median over interleaved rounds), in ms, mean ± spread over the seeds' sessions. "
             f"torch {results['machine']['torch']}, {results['machine']['cpu']}. Every pruned "
             "model is retrained the same way (one-shot, then masked fine-tuning, the `grimc "
             "prune --retrain` path); `--auto` measured sensitivity on 20 % of the training "
             "split, held out from training. Candidates: "
             f"{', '.join(results['models'][0]['candidates']) if results['models'] else ''}.",
             ""]
    for model in results["models"]:
        runs = model["runs"]
        names = list(runs[0]["accuracy"])
        rate = model["rate"]
        lines += [f"## {model['title']}: fixed 8x16 @ {rate:g}x", "",
                  "| choice | accuracy | measured ms | predicted ms |", "|---|---|---|---|",
                  f"| dense | {_cell([r['dense'] for r in runs])} | "
                  f"{_cell([r['measured_ms']['dense'] for r in runs], 1, 4)} | "
                  f"{_cell([r['predicted_ms']['dense'] for r in runs], 1, 4)} |"]
        for name in names:
            label = {"fixed": f"fixed 8x16 @ {rate:g}x",
                     "auto faster": f"auto at {model['faster']:g} x fixed ms (or the fastest "
                                    "choice if slower)"}.get(name, name)
            lines.append(f"| {label} | {_cell([r['accuracy'][name] for r in runs])} | "
                         f"{_cell([r['measured_ms'][name] for r in runs], 1, 4)} | "
                         f"{_cell([r['predicted_ms'][name] for r in runs], 1, 4)} |")
        lines += ["", f"Per seed {[r['seed'] for r in runs]} (accuracy %, measured ms):", "",
                  "| seed | dense | " + " | ".join(names) + " |",
                  "|---" * (2 + len(names)) + "|"]
        for r in runs:
            lines.append(f"| {r['seed']} | {100 * r['dense']:.2f} | " + " | ".join(
                f"{100 * r['accuracy'][n]:.2f} ({r['measured_ms'][n]:.4f})" for n in names) + " |")
        lines += ["", verdict(runs, rate), ""]
        for name in (n for n in names if n != "fixed"):
            lines += [f"`--auto` table, {name}, seed {runs[0]['seed']} (ms, validation loss "
                      "increase when the layer alone is pruned one-shot):", "", "```",
                      runs[0]["tables"][name], "```", ""]
    (out / "prune_auto.md").write_text("\n".join(lines))


def verdict(runs: list[dict], rate: float) -> str:
    """The issue's criterion: lower latency at equal accuracy, or more accuracy at equal latency."""
    def mean(key: str, name: str) -> float:
        return statistics.fmean(r[key][name] for r in runs)

    fixed_acc, fixed_ms = mean("accuracy", "fixed"), mean("measured_ms", "fixed")
    parts = []
    for name in (n for n in runs[0]["accuracy"] if n != "fixed"):
        acc, ms = mean("accuracy", name), mean("measured_ms", name)
        parts.append(f"{name}: {100 * (acc - fixed_acc):+.2f} points, "
                     f"{ms / fixed_ms:.2f}x the fixed choice's measured latency")
    return f"Against fixed 8x16 @ {rate:g}x (means over seeds): " + "; ".join(parts) + "."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benches.prune_auto", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=sorted(CASES), default=sorted(CASES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rate", type=float, default=8.0, help="the fixed choice's rate (8)")
    parser.add_argument("--faster", type=float, default=0.8,
                        help="tighter target as a fraction of the fixed latency (default 0.8)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--rounds", type=int, default=40, help="timing rounds (median)")
    parser.add_argument("--runs", type=int, default=5, help="runs per round")
    parser.add_argument("--shorten", type=int, default=1, help="divide every epoch count")
    parser.add_argument("--quick", action="store_true", help="seed 0, digits, epochs / 4")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for prune_auto.*")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.models, args.shorten, args.rounds = [0], ["digits"], 4, 10
    if not (0 < args.faster <= 1 and math.isfinite(args.faster)):
        parser.error("--faster: expected a fraction in (0, 1]")
    warnings.simplefilter("ignore")
    results: dict = {"machine": {"python": platform.python_version(), "torch": torch.__version__,
                                 "cpu": platform.processor() or platform.machine(),
                                 "threads": args.threads},
                     "seeds": args.seeds, "models": []}
    args.out.mkdir(parents=True, exist_ok=True)
    saved = args.out / "prune_auto.json"
    if saved.exists():  # other models and rates stay; a rerun replaces its own
        results["models"] = json.loads(saved.read_text())["models"]
    for name in args.models:
        model = run_case(CASES[name], args.seeds, args)
        results["models"] = [m for m in results["models"] if (m["name"], m.get("rate", 8.0)) !=
                             (name, args.rate)] + [model]
        saved.write_text(json.dumps(results, indent=1) + "\n")
        write_report(results, args.out)
    print(f"wrote {args.out / 'prune_auto.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
