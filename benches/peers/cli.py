"""`python -m benches.peers`: grimc against peer inference engines, one command.

    python -m benches.peers                         # the 4 paper models, dense+bcr, 1 and 2 threads
    python -m benches.peers --quick                 # fewer timed runs (minutes, not an hour)
    python -m benches.peers --models resnet18 --threads 1 --engines grimc,onnxruntime
    python -m benches.peers --with-litert           # also LiteRT (creates its own ~2 GB venv)
    python -m benches.peers --render benches/results/report.json   # re-render md/png from JSON

Writes report.json, report.md and chart.png into --out (benches/results/).
Each case runs in its own worker process (`benches.peers.worker`); a peer
that is missing, fails or answers wrongly is reported and skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benches.peers import cases, engines, machine, report

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "benches" / "results"
TOLERANCE = 1e-3
TVM_NOTE = (
    "Apache TVM 0.27 (the PyPI wheel) compiles these ONNX models only untuned here: its "
    "default schedules run 60-80x slower than onnxruntime, and its auto-tuner "
    "(meta_schedule) crashes on this machine, so a TVM row would measure TVM's fallback "
    "schedules rather than TVM. Not included until a tuned build can be produced cheaply."
)


@dataclass(frozen=True)
class Timing:
    warmup: int
    min_repeat: int
    max_repeat: int
    min_seconds: float


FULL = Timing(warmup=3, min_repeat=10, max_repeat=200, min_seconds=3.0)
QUICK = Timing(warmup=1, min_repeat=3, max_repeat=20, min_seconds=0.5)


def default_cache() -> Path:
    env = os.environ.get("GRIMC_BENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "grimc-bench"


def default_grimc_target() -> str:
    """AVX-512 where the CPU has it: the peers use it too."""
    return "host-avx512" if "avx512f" in machine.cpu_flags() else "host"


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benches.peers", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=_csv, default=list(cases.DEFAULT_MODELS),
                   help=f"comma list from {', '.join(cases.MODELS)} "
                        f"(default {','.join(cases.DEFAULT_MODELS)})")
    p.add_argument("--variants", type=_csv, default=list(cases.VARIANTS),
                   help="dense,bcr (default both)")
    p.add_argument("--threads", type=lambda s: [int(t) for t in _csv(s)], default=[1, 2],
                   help="thread counts (default 1,2)")
    p.add_argument("--engines", type=_csv, default=list(engines.DEFAULT_ENGINES),
                   help=f"comma list from {', '.join(engines.ENGINES)}")
    p.add_argument("--quick", action="store_true", help="1 warm-up, >=3 runs, >=0.5 s per case")
    p.add_argument("--with-litert", action="store_true",
                   help="add LiteRT (its converter needs a separate ~2 GB virtualenv)")
    p.add_argument("--block", default="8x16", help="BCR block of the pruned variant (8x16)")
    p.add_argument("--rate", type=float, default=8.0, help="BCR pruning rate (8)")
    p.add_argument("--grimc-target", default=None,
                   help="grimc target (default host-avx512 where the CPU has AVX-512, else host)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report directory")
    p.add_argument("--cache", type=Path, default=None,
                   help="work directory for models and builds (default ~/.cache/grimc-bench)")
    p.add_argument("--litert-venv", type=Path, default=default_cache() / "litert-venv",
                   help="LiteRT's virtualenv, created on first use (~/.cache/grimc-bench/litert-venv)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per case (1800)")
    p.add_argument("--max-busy", type=float, default=0.15,
                   help="before each case, wait until other processes use less than this "
                        "fraction of the CPUs (0.15) ...")
    p.add_argument("--quiet-wait", type=float, default=30.0,
                   help="... for at most this many seconds (30)")
    p.add_argument("--no-icount", action="store_true", help="skip the instruction counts")
    p.add_argument("--resume", action="store_true",
                   help="keep the rows of an existing --out/report.json that were measured and "
                        "started on a quiet CPU; run the others again")
    p.add_argument("--render", type=Path, default=None,
                   help="only re-render report.md/chart.png from this report.json")
    args = p.parse_args(argv)
    for name, allowed in (("models", cases.MODELS), ("variants", cases.VARIANTS),
                          ("engines", engines.ENGINES)):
        bad = [v for v in getattr(args, name) if v not in allowed]
        if bad:
            p.error(f"unknown {name}: {', '.join(bad)} (choose from {', '.join(allowed)})")
    if args.with_litert and "litert" not in args.engines:
        args.engines.append("litert")
    if any(t < 1 for t in args.threads):
        p.error("--threads must be positive")
    return args


class Runner:
    """Runs every case in a worker process and collects rows into the report dict."""

    def __init__(self, args: argparse.Namespace, data: dict[str, Any], workdir: Path):
        self.args, self.data, self.workdir = args, data, workdir
        self.timing = QUICK if args.quick else FULL
        self.previous: dict[tuple, dict] = {}
        self.litert_python: Path | None = None
        self.count = 0
        self.total = 0

    def log(self, text: str) -> None:
        print(text, flush=True)

    def plan(self, prepared: dict[tuple[str, str], cases.PreparedVariant]) -> list[tuple]:
        todo = []
        ordered = ["onnxruntime"] + [e for e in self.args.engines if e != "onnxruntime"]
        for model in self.args.models:
            for variant in self.args.variants:
                for threads in self.args.threads:
                    for name in ordered:
                        if name in self.args.engines and variant in engines.ENGINES[name].variants:
                            todo.append((model, variant, threads, name))
        return todo

    def output_path(self, key: tuple) -> Path:
        model, variant, threads, engine = key
        return self.workdir / "outputs" / f"{model}.{variant}.t{threads}.{engine}.npy"

    def run_case(self, key: tuple, prep: cases.PreparedVariant) -> dict[str, Any]:
        model, variant, threads, engine = key
        row: dict[str, Any] = {"model": model, "variant": variant, "threads": threads,
                               "engine": engine}
        if prep.error:
            return {**row, "status": "unavailable", "reason": prep.error}
        why = self.engine_unavailable(engine)
        if why:
            return {**row, "status": "unavailable", "reason": why}
        spec = {
            "engine": engine, "onnx": str(prep.onnx_path), "input": str(prep.input_path),
            "threads": threads, "workdir": str(self.workdir), "warmup": self.timing.warmup,
            "min_repeat": self.timing.min_repeat, "max_repeat": self.timing.max_repeat,
            "min_seconds": self.timing.min_seconds, "output": str(self.output_path(key)),
            "result": str(self.workdir / "cases" / f"{model}.{variant}.t{threads}.{engine}.json"),
            "options": {"target": self.data["settings"]["grimc_target"]}
            if engine.startswith("grimc") else {},
        }
        return {**row, **self.spawn(spec, engine, threads)}

    def engine_unavailable(self, engine: str) -> str | None:
        if engine != "litert":
            return engines.ENGINES[engine].unavailable()
        if self.litert_python is None:
            try:
                from benches.peers.litert import ensure_venv

                self.litert_python = ensure_venv(self.args.litert_venv, self.log)
            except Exception as exc:
                return f"LiteRT environment unavailable: {cases.first_line(exc)}"
        return None

    def spawn(self, spec: dict[str, Any], engine: str, threads: int) -> dict[str, Any]:
        for sub in ("cases", "outputs"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        spec_path = Path(spec["result"]).with_suffix(".spec.json")
        spec_path.write_text(json.dumps(spec))
        result_path = Path(spec["result"])
        result_path.unlink(missing_ok=True)
        log_path = result_path.with_suffix(".log")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(":")
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads)
        python = str(self.litert_python) if engine == "litert" else sys.executable
        start = time.perf_counter()
        try:
            with log_path.open("w") as log:
                proc = subprocess.run([python, "-m", "benches.peers.worker", str(spec_path)],
                                      stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env,
                                      timeout=self.args.timeout)
        except subprocess.TimeoutExpired:
            return {"status": "error", "reason": f"timed out after {self.args.timeout:g} s"}
        wall = round(time.perf_counter() - start, 1)
        if not result_path.exists():
            tail = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
            reason = f"worker died (exit {proc.returncode})" + (f": {tail[-1][:200]}" if tail else "")
            return {"status": "error", "reason": reason, "case_wall_s": wall}
        result = json.loads(result_path.read_text())
        result["case_wall_s"] = wall
        return result

    def check(self, row: dict[str, Any], reference: np.ndarray | None) -> None:
        """Mark a measured row wrong unless its output matches onnxruntime's."""
        if row["status"] != "ok":
            return
        if reference is None:
            row.update(status="unchecked", reason="no onnxruntime output to check against")
            return
        y = np.load(self.output_path(row_key_tuple(row)))
        if y.size != reference.size:
            row.update(status="wrong", reason=f"output shape {list(y.shape)} != "
                       f"onnxruntime's {list(reference.shape)}")
            return
        scale = float(np.max(np.abs(reference))) or 1.0
        err = float(np.max(np.abs(y.reshape(-1).astype(np.float64) - reference.reshape(-1))))
        rel = err / scale if np.isfinite(err) else float("inf")
        row["check"] = {"max_abs_err": err, "rel_err": rel, "ok": rel <= TOLERANCE}
        if not rel <= TOLERANCE:
            row.update(status="wrong", reason=f"output differs from onnxruntime: max error "
                       f"{rel:.2e} of max |y| (tolerance {TOLERANCE:g})")

    def run(self, prepared: dict[tuple[str, str], cases.PreparedVariant]) -> None:
        todo = self.plan(prepared)
        self.total = len(todo)
        references: dict[tuple[str, str], np.ndarray] = {}
        for i, key in enumerate(todo, 1):
            model, variant, threads, engine = key
            tag = f"[{i:>3}/{len(todo)}] {model:<12} {variant:<5} {threads}T {engine:<12}"
            prev = self.previous.get(key)
            quiet = prev is not None and (prev.get("cpu_busy_before") or 0) <= self.args.max_busy
            if prev and prev["status"] == "ok" and quiet and self.output_path(key).exists():
                row = prev
                self.log(f"{tag} (kept from the previous report)")
            else:
                self.log(f"{tag} ...")
                busy = machine.wait_for_quiet(self.args.max_busy, self.args.quiet_wait)
                load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
                row = self.run_case(key, prepared[model, variant])
                row["load_1m"] = round(load, 2) if load is not None else None
                row["cpu_busy_before"] = round(busy, 3) if busy is not None else None
                row["grimc_commit"] = self.data["machine"]["grimc_commit"]
            if engine == "onnxruntime" and row["status"] == "ok":
                references.setdefault((model, variant), np.load(self.output_path(key)))
            self.check(row, references.get((model, variant)))
            self.add_row(row)
            self.log(f"{tag} {describe_row(row)}")

    def add_row(self, row: dict[str, Any]) -> None:
        rows = self.data["rows"]
        rows[:] = [r for r in rows if row_key_tuple(r) != row_key_tuple(row)] + [row]
        ort = {row_key_tuple(r)[:3]: r for r in rows
               if r["engine"] == "onnxruntime" and r["status"] == "ok"}
        for r in rows:
            base = ort.get(row_key_tuple(r)[:3])
            r["speedup_vs_ort"] = (
                round(base["median_ms"] / r["median_ms"], 4)
                if base and r["status"] == "ok" and r.get("median_ms") else None
            )
        report.write_json(self.data, self.args.out / "report.json")


def row_key_tuple(row: dict[str, Any]) -> tuple:
    return row["model"], row["variant"], int(row["threads"]), row["engine"]


def describe_row(row: dict[str, Any]) -> str:
    if row["status"] == "ok":
        ratio = row.get("speedup_vs_ort")
        vs = f"  {ratio:.2f}x vs ORT" if ratio else ""
        return f"{row['median_ms']:10.3f} ms{vs}  (n={row['repeat']}, set-up {row['setup_s']} s)"
    return f"{row['status'].upper()}: {row.get('reason', '')}"


def run_icount(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The instruction-count section, computed by benches.icount in its own process."""
    out = workdir / "icount.json"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "benches.icount", "--json", str(out), "--workdir",
           str(workdir / "icount")]
    print("instruction counts: " + " ".join(cmd[1:]), flush=True)
    try:
        proc = subprocess.run(cmd, cwd=REPO, timeout=args.timeout, text=True,
                              stdout=None, stderr=subprocess.PIPE)
    except subprocess.TimeoutExpired:
        return {"skipped": f"timed out after {args.timeout:g} s"}
    if not out.exists():
        tail = [ln for ln in (proc.stderr or "").splitlines() if ln.strip()]
        return {"skipped": f"benches.icount failed: {tail[-1] if tail else proc.returncode}"}
    return json.loads(out.read_text())


def new_report(args: argparse.Namespace, command: str) -> dict[str, Any]:
    target = args.grimc_target or default_grimc_target()
    prune = cases.PruneSpec(block=args.block, rate=args.rate)
    not_measured = [{"engine": "TVM", "reason": TVM_NOTE}]
    if "litert" not in args.engines:
        not_measured.append({"engine": "LiteRT", "reason": "not run: opt-in with --with-litert "
                             "(its converter needs a separate ~2 GB virtualenv)"})
    return {
        "schema": report.SCHEMA,
        "command": command,
        "machine": machine.describe(),
        "settings": {
            "models": args.models, "variants": args.variants, "threads": args.threads,
            "engines": args.engines, "quick": args.quick,
            "timing": vars(QUICK if args.quick else FULL),
            "prune": prune.describe(), "block": args.block, "rate": args.rate,
            "grimc_target": target, "tolerance": TOLERANCE,
            "max_busy": args.max_busy, "quiet_wait": args.quiet_wait,
            "engine_defs": [{"name": e.name, "label": e.label, "note": e.note}
                            for e in engines.ENGINES.values()],
        },
        "model_labels": {name: d.label for name, d in cases.MODELS.items()},
        "variants": [],
        "rows": [],
        "not_measured": not_measured,
    }


def merge_previous(data: dict[str, Any], old: dict[str, Any]) -> None:
    """--resume on a subset: the previous report's other models and rows stay in the report."""
    s, o = data["settings"], old.get("settings", {})
    s["models"] = list(dict.fromkeys([*o.get("models", []), *s["models"]]))
    s["threads"] = sorted(set(o.get("threads", [])) | set(s["threads"]))
    data["rows"] = list(old.get("rows", []))
    data["variants"] = list(old.get("variants", []))
    if "icount" in old:
        data["icount"] = old["icount"]
    data["command"] = f"{old.get('command', '?')}; then {data['command']}"
    m, om = data["machine"], old.get("machine", {})
    m["date"] = f"{om.get('date', '?')} (resumed {m['date']})"
    if om.get("grimc_commit") and om["grimc_commit"] != m["grimc_commit"]:
        m["grimc_commit"] = f"{om['grimc_commit']} (resumed at {m['grimc_commit']}; per row in report.json)"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.render:
        data = json.loads(args.render.read_text())
        paths = report.write_all(data, args.render.parent)
        print("wrote " + ", ".join(str(p) for p in paths))
        return 0
    command = "python -m benches.peers" + ("" if not argv else " " + shlex.join(argv))
    data = new_report(args, command)
    workdir = (args.cache or default_cache()) / "run"
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"grimc peer benchmark: {machine.summary(data['machine'])}", flush=True)
    print(f"work directory {workdir}; report in {args.out}", flush=True)
    runner = Runner(args, data, workdir)
    if args.resume and (args.out / "report.json").exists():
        old = json.loads((args.out / "report.json").read_text())
        runner.previous = {row_key_tuple(r): r for r in old.get("rows", [])}
        merge_previous(data, old)
    elif workdir.exists():
        shutil.rmtree(workdir)  # converted/built files of an older run must not be reused
    print("preparing models:", flush=True)
    prepared = cases.prepare_variants(args.models, args.variants, workdir / "models",
                                      cases.PruneSpec(args.block, args.rate), runner.log)
    fresh = [p.to_json() for p in prepared.values()]
    data["variants"] = [v for v in data["variants"]
                        if (v["model"], v["variant"]) not in prepared] + fresh
    start = time.perf_counter()
    runner.run(prepared)
    if not args.no_icount:
        data["icount"] = run_icount(args, workdir)
    data["total_wall_s"] = round(time.perf_counter() - start, 1)
    paths = report.write_all(data, args.out)
    print(f"done in {data['total_wall_s']} s; wrote " + ", ".join(str(p) for p in paths))
    return 0
