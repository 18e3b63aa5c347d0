"""`python -m benches.bcr_models`: the command line, and one (case, threads) measured."""

from __future__ import annotations

import argparse
import collections
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benches.bcr_layers import bench_clock, fma_peak, interleaved_medians
from benches.bcr_models import cases, engines, report
from benches.peers import machine
from benches.peers.cases import first_line
from benches.peers.cli import TOLERANCE, default_grimc_target
from benches.peers.report import write_json
from grimc.emit.codegen import GeneratedModel
from grimc.runner import HostModel, KernelProfile

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "benches" / "results" / "bcr_models.md"
SETTLE_S = 0.05  # untimed pause when the engine changes, with several threads
REPEAT, QUICK_REPEAT = 15, 3


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benches.bcr_models",
        description=sys.modules["benches.bcr_models"].__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--models",
        type=_csv,
        default=list(cases.DEFAULT_MODELS),
        help=f"comma list from {','.join(cases.CASES)} (default all)",
    )
    p.add_argument(
        "--threads",
        type=lambda s: [int(t) for t in _csv(s)],
        default=[1, 2],
        help="thread counts (default 1,2)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=None,
        help=f"timed samples per engine (default {REPEAT}, --quick {QUICK_REPEAT})",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="markdown report; the JSON goes next to it (default %(default)s)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"small variants of the models, {QUICK_REPEAT} samples (for tests)",
    )
    p.add_argument(
        "--target",
        default=None,
        help="grimc target (default host-avx512 where the CPU has AVX-512, else host)",
    )
    p.add_argument(
        "--max-busy",
        type=float,
        default=0.15,
        help="before timing, wait until other processes use less than this "
        "fraction of the CPUs (0.15) ...",
    )
    p.add_argument(
        "--quiet-wait", type=float, default=30.0, help="... for at most this many seconds (30)"
    )
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep the pruned models and builds here (default: a temporary dir)",
    )
    args = p.parse_args(argv)
    bad = [m for m in args.models if m not in cases.CASES]
    if bad:
        p.error(f"unknown models: {', '.join(bad)} (choose from {', '.join(cases.CASES)})")
    if not args.threads or any(t < 1 for t in args.threads):
        p.error("--threads must be positive")
    if args.repeat is None:
        args.repeat = QUICK_REPEAT if args.quick else REPEAT
    if args.repeat < 1:
        p.error("--repeat must be positive")
    args.target = args.target or default_grimc_target()
    return args


def new_report(args: argparse.Namespace, command: str) -> dict[str, Any]:
    timing = (
        f"median of {args.repeat} samples per engine, engines interleaved, each sample "
        "at least 2 ms of back-to-back runs (benches.bcr_layers.interleaved_medians); "
        "1 thread: the calling thread's CPU time (all engines then compute on it); more: "
        f"wall time, with an untimed {1e3 * SETTLE_S:.0f} ms pause whenever the engine "
        "changes (onnxruntime's workers spin for tens of ms after a run)"
    )
    return {
        "schema": 1,
        "command": command,
        "machine": machine.describe(),
        "settings": {
            "models": args.models,
            "threads": args.threads,
            "repeat": args.repeat,
            "quick": args.quick,
            "target": args.target,
            "tolerance": TOLERANCE,
            "max_busy": args.max_busy,
            "quiet_wait": args.quiet_wait,
            "timing": timing,
            "engines": dict(engines.LABELS),
        },
        "rows": [],
    }


def kernel_kinds(gen: GeneratedModel) -> dict[str, int]:
    """How many kernels of each kind: shows which layers got sparse kernels."""
    return dict(collections.Counter(k.kind for k in gen.kernels))


def build_engines(
    pruned: cases.Pruned, x: np.ndarray, threads: int, target: str, workdir: Path
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, GeneratedModel]]:
    """Every engine loaded and checked against onnxruntime: (callables, results, gens)."""
    fns: dict[str, Any] = {"ort": engines.ort_engine(pruned.path, threads, x)}
    want = fns["ort"]()[0]
    results: dict[str, dict[str, Any]] = {"ort": {"status": "ok", "rel_err": 0.0}}
    gens: dict[str, GeneratedModel] = {}
    for e in engines.ENGINES[1:]:
        t0 = time.perf_counter()
        try:
            gen = engines.compile_engine(e, pruned.path, target, threads)
            compiled = engines.grimc_engine(
                gen, workdir / f"{e.name}-t{threads}", target, threads, x
            )
        except Exception as exc:  # one engine failing must not end a long run
            results[e.name] = {"status": "error", "reason": first_line(exc)}
            print(f"  {e.label}: ERROR {results[e.name]['reason']}", flush=True)
            continue
        rel = engines.relative_error(compiled.output(), want)
        results[e.name] = {
            "status": "ok" if rel <= TOLERANCE else "wrong",
            "rel_err": rel,
            "setup_s": round(time.perf_counter() - t0, 2),
            "kernels": kernel_kinds(gen),
        }
        if rel > TOLERANCE:
            results[e.name]["reason"] = f"max error {rel:.2e} of max |y_ort|"
        print(
            f"  {e.label}: built in {results[e.name]['setup_s']} s, "
            f"{results[e.name]['status']} ({rel:.1e})",
            flush=True,
        )
        fns[e.name], gens[e.name] = compiled, gen
    return fns, results, gens


def time_engines(fns: dict[str, Any], threads: int, repeat: int) -> dict[str, float]:
    """Median ms per engine (see the report's timing line)."""
    if threads == 1:
        clock, calls = bench_clock(1), list(fns.values())
    else:
        clock = engines.SettledClock(SETTLE_S)
        calls = [clock.wrap(fn) for fn in fns.values()]
    medians = interleaved_medians(calls, repeat, clock)
    return {name: 1e3 * t for name, t in zip(fns, medians, strict=True)}


def profile_layers(
    gen: GeneratedModel,
    x: np.ndarray,
    threads: int,
    runs: int,
    args: argparse.Namespace,
    workdir: Path,
    peak: float,
) -> list[dict[str, Any]]:
    """Per-kernel ms of a profiled build of the BCR engine's C, with GFLOP/s.

    The profile times kernels in wall time, so each run is profiled on its
    own and every kernel gets its median over the runs: a time slice taken
    by another process then inflates one run, not the figure.
    """
    per_run: list[list[float]] = []
    with HostModel.build(
        gen, workdir / f"bcr-profile-t{threads}", threads=threads, target=args.target, profile=True
    ) as model:
        model.run([x])
        for _ in range(runs):
            model.reset_profile()
            model.run([x])
            profiles = model.profile()
            per_run.append([p.ms for p in profiles])
    medians = np.median(np.array(per_run), axis=0)
    return [with_rates(layer, peak * threads) for layer in group_layers(profiles, medians)]


def group_layers(profiles: list[KernelProfile], ms: np.ndarray) -> list[dict[str, Any]]:
    """Kernels of one layer (same op and output, e.g. a strided conv's input split and
    its spmm) summed into one entry; unlabelled kernels (pools) stay alone."""
    layers: dict[tuple[str, str], dict[str, Any]] = {}
    for p, t in zip(profiles, ms, strict=True):
        key = (p.op, p.label or p.name)
        layer = layers.setdefault(
            key, {"label": key[1], "op": p.op, "kernels": [], "flops": 0.0, "ms": 0.0}
        )
        layer["kernels"].append(p.name)
        layer["flops"] += p.flops
        layer["ms"] += float(t)
    return list(layers.values())


def with_rates(layer: dict[str, Any], peak: float) -> dict[str, Any]:
    """The layer with its GFLOP/s and that rate as % of `peak` (GFLOP/s)."""
    gflops = layer["flops"] / (layer["ms"] * 1e6) if layer["ms"] > 0 else 0.0
    return {**layer, "gflops": gflops, "peak_pct": 100 * gflops / peak}


def measure(
    pruned: cases.Pruned, threads: int, args: argparse.Namespace, workdir: Path, peak: float
) -> dict[str, Any]:
    """One report row: every engine timed on the case's pruned model at `threads`."""
    case, start = pruned.case, time.perf_counter()
    x = cases.model_input(pruned.model)
    row: dict[str, Any] = {
        "case": case.name,
        "title": case.title,
        "model": case.model,
        "block": case.block,
        "rate": case.rate,
        "target": case.target,
        "note": case.note,
        "threads": threads,
        "prune": pruned.info,
        "peak_gflops": peak * threads,
    }
    fns, row["engines"], gens = build_engines(pruned, x, threads, args.target, workdir)
    busy = machine.wait_for_quiet(args.max_busy, args.quiet_wait)
    row["cpu_busy_before"] = None if busy is None else round(busy, 3)
    row["load_1m"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    for name, ms in time_engines(fns, threads, args.repeat).items():
        row["engines"][name]["ms"] = ms
    for fn in fns.values():
        if isinstance(fn, engines.Compiled):
            fn.model.close()
    fns.clear()
    if "bcr" not in gens:
        row["profile_error"] = "grimc BCR did not build"
    else:
        try:
            row["layers"] = profile_layers(
                gens["bcr"], x, threads, args.repeat, args, workdir, peak
            )
            row["profile_runs"] = args.repeat
        except Exception as exc:  # the timings above stand without the profile
            row["profile_error"] = first_line(exc)
    row["wall_s"] = round(time.perf_counter() - start, 1)
    return row


def write_report(data: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(data, out.with_suffix(".json"))
    out.write_text(report.render_markdown(data))


def run(args: argparse.Namespace, data: dict[str, Any], workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    peak = fma_peak(args.target, workdir)
    data["fma_peak_gflops"] = peak
    print(f"measured FMA peak {peak:.1f} GFLOP/s per core ({args.target})", flush=True)
    for case in cases.select(args.models, args.quick):
        t0 = time.perf_counter()
        pruned = cases.prune_case(case, workdir / "models")
        print(
            f"\n{case.name}: pruned {pruned.compression:.2f}x on {pruned.info['pruned_layers']}"
            f" layers in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        for threads in args.threads:
            row = measure(pruned, threads, args, workdir / case.name, peak)
            row["grimc_commit"] = data["machine"]["grimc_commit"]
            data["rows"].append(row)
            report.print_row(row, args.max_busy)
            write_report(data, args.out)
            sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    command = "python -m benches.bcr_models" + (" " + shlex.join(argv) if argv else "")
    data = new_report(args, command)
    print(f"grimc BCR model benchmark: {machine.summary(data['machine'])}", flush=True)
    start = time.perf_counter()
    if args.workdir:
        run(args, data, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="grimc_bcr_models_") as tmp:
            run(args, data, Path(tmp))
    data["total_wall_s"] = round(time.perf_counter() - start, 1)
    write_report(data, args.out)
    print(
        f"\ndone in {data['total_wall_s']:.0f} s; wrote {args.out} and "
        f"{args.out.with_suffix('.json')}"
    )
    return 0
