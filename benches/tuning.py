"""Default against tuned schedules, end to end: `python -m benches.tuning`.

    python -m benches.tuning                                  # ResNet-18 6x and the GRU, 1 thread
    python -m benches.tuning --models resnet18 --budget 5m --threads 1,2 --quick

For each case of benches.bcr_models (pruned as that bench prunes it), `grimc
tune` runs into a fresh database with the given budget; then the model is
built twice, with the cost model's schedules (`use_tuning_db=False`) and with
the database's, and both run interleaved (median of thread CPU time at 1
thread, wall time otherwise). Reported: the tuner's per-task decisions, the
end-to-end ratio tuned/default, and the noise floor (the default against a
second build of itself). Results go to benches/results/tuning.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benches.bcr_models.cases import CASES, model_input, prune_case, select
from grimc.driver import CompileOptions, build_model
from grimc.tune.tuner import format_report, tune_model
from grimc.tunedb import TuningDB

RESULTS = Path(__file__).parent / "results" / "tuning.md"


def run_medians(models: list, x: np.ndarray, repeat: int, threads: int) -> list[float]:
    clock = time.thread_time if threads == 1 else time.perf_counter
    for m in models:
        m.run([x])
    times: list[list[float]] = [[] for _ in models]
    for _ in range(repeat):
        for m, ts in zip(models, times, strict=True):
            t0 = clock()
            m.run([x])
            ts.append(clock() - t0)
    return [statistics.median(ts) * 1e3 for ts in times]


def bench_case(case, target: str, threads: int, budget: float, repeat: int, workdir: Path) -> dict:
    pruned = prune_case(case, workdir / case.name)
    db = TuningDB(workdir / f"{case.name}-{threads}.sqlite")
    start = time.monotonic()
    report = tune_model(str(pruned.path), None, db, budget, target=target, threads=threads,
                        workdir=workdir / f"tune-{case.name}-{threads}")
    tuning_s = time.monotonic() - start
    x = model_input(pruned.model)
    opts = CompileOptions(target=target, threads=threads, tuning_db=str(db.path))
    builds = [
        build_model(str(pruned.path), workdir / f"{case.name}-{threads}-{name}",
                    opts.replace(use_tuning_db=use))
        for name, use in (("default", False), ("twin", False), ("tuned", True))
    ]
    outs = [m.run([x])[0] for m in builds]
    default, twin, tuned = run_medians(builds, x, repeat, threads)
    for m in builds:
        m.close()
    return {
        "case": case.title, "threads": threads, "default_ms": default, "tuned_ms": tuned,
        "ratio": tuned / default, "noise": abs(twin - default) / default,
        "max_diff": float(np.max(np.abs(outs[2] - outs[0]))), "tuning_s": tuning_s,
        "tasks": report.tasks, "accepted": sum(r.accepted for r in report.results),
        "report": format_report(report),
    }


def markdown(rows: list[dict], args: argparse.Namespace) -> str:
    lines = [
        "# Tuned against default schedules",
        "",
        f"`python -m benches.tuning {' '.join(sys.argv[1:])}` (target {args.target}, budget "
        f"{args.budget:g} s per model{', quick variants' if args.quick else ''}; machine shared "
        "with other jobs, 2 cores).",
        "",
        "| model | threads | default ms | tuned ms | tuned/default | noise floor | tasks tuned | tuning s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['threads']} | {r['default_ms']:.3f} | {r['tuned_ms']:.3f} | "
            f"{r['ratio']:.3f} | {r['noise']:.1%} | {r['accepted']}/{r['tasks']} | {r['tuning_s']:.0f} |"
        )
    lines += ["", "Per task (the tuner's report):", ""]
    for r in rows:
        lines += [f"## {r['case']}, {r['threads']} thread(s)", "", "```", r["report"], "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benches.tuning", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="resnet18,gru", help=f"of {', '.join(CASES)}")
    p.add_argument("--target", default="native")
    p.add_argument("--threads", default="1")
    p.add_argument("--budget", type=float, default=300.0, help="tuning seconds per model")
    p.add_argument("--repeat", type=int, default=15)
    p.add_argument("--quick", action="store_true", help="the small variants of the models")
    p.add_argument("--no-write", action="store_true", help=f"do not write {RESULTS}")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="grimc-bench-tuning-") as tmp:
        for case in select(args.models.split(","), args.quick):
            for threads in (int(t) for t in args.threads.split(",")):
                row = bench_case(case, args.target, threads, args.budget, args.repeat, Path(tmp))
                print(f"{row['case']} x{threads}: default {row['default_ms']:.3f} ms, tuned "
                      f"{row['tuned_ms']:.3f} ms, ratio {row['ratio']:.3f} (noise "
                      f"{row['noise']:.1%}), {row['accepted']}/{row['tasks']} tasks tuned",
                      flush=True)
                print(row["report"], flush=True)
                rows.append(row)
    if not args.no_write:
        RESULTS.write_text(markdown(rows, args) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
