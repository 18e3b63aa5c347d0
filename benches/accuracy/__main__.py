"""Accuracy of BCR-pruned models on real data: `python -m benches.accuracy`.

For each model (a CNN on scikit-learn's digits, a GRU on UEA JapaneseVowels),
seed and rate: the dense accuracy, one-shot magnitude pruning, and retraining
with each method of grimc.train (one-shot + masked fine-tuning, the gradual
cubic schedule, ADMM), distillation without labels through the ONNX path
(`grimc prune --distill`'s library call), and the grimc vs onnxruntime
latency of the retrained pruned model (batch 1, one thread). Writes
benches/results/accuracy.{md,json,png}.

    python -m benches.accuracy                  # 3 seeds, rates 2 4 8 16
    python -m benches.accuracy --quick          # 1 seed, rate 8, short training
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import math
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import torch

from benches.accuracy.models import CASES, Case
from benches.accuracy.report import write_report
from grimc.train import BCRPruner
from grimc.train.fit import evaluate, fit
from grimc.train.onnx_torch import OnnxModule
from grimc.train.retrain import retrain_model
from grimc.train.schedule import schedule_for

RESULTS = Path(__file__).resolve().parents[1] / "results"
METHODS = ("one-shot", "retrained", "gradual", "admm", "distilled")


def deterministic(seed: int, threads: int) -> None:
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)


def export(model: torch.nn.Module, example: torch.Tensor) -> onnx.ModelProto:
    buffer = io.BytesIO()
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), buffer, dynamo=False, opset_version=17)
    return onnx.load_from_string(buffer.getvalue())


def median_ms(fn, runs: int) -> float:
    for _ in range(max(3, runs // 10)):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def latency(model: onnx.ModelProto, x: np.ndarray, workdir: Path, runs: int) -> dict:
    """grimc (compiled, BCR kernels, 1 thread) and onnxruntime (1 thread) on the same model."""
    import onnxruntime as ort

    from grimc.driver import build_model

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    ref = session.run(None, {name: x})[0]
    path = workdir / "model.onnx"
    path.write_bytes(model.SerializeToString())
    with build_model(path, workdir / "build") as compiled:
        out = compiled.run([x])[0]
        grimc_ms = median_ms(lambda: compiled.run([x]), runs)
    ort_ms = median_ms(lambda: session.run(None, {name: x}), runs)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)  # the same model, fp32
    return {"grimc_ms": grimc_ms, "ort_ms": ort_ms,
            "max_abs_diff": float(np.abs(out - ref).max()), "max_abs_ref": float(np.abs(ref).max())}


def run_case(case: Case, seeds: list[int], rates: list[float], block: str, args,
             save: Callable[[dict], None]) -> dict:
    train, test = case.load()
    tr, te, unlabeled = case.samples(train), case.samples(test), case.samples(train, False)
    epochs = max(1, case.epochs // args.shorten)
    ft = max(1, case.finetune_epochs // args.shorten)
    steps_per_epoch = math.ceil(len(tr) / case.batch_size)
    kw = {"lr": case.lr, "batch_size": case.batch_size}
    runs: list[dict] = []
    for seed in seeds:
        deterministic(seed, args.threads)
        t0 = time.perf_counter()
        dense = case.build()
        fit(dense, tr, epochs=epochs, seed=seed, **kw)
        dense_s = time.perf_counter() - t0
        dense_acc = evaluate(dense, te)[1]
        dense_onnx = export(copy.deepcopy(dense), case.example(train))
        dense_ort = dense_onnx.SerializeToString()
        for rate in rates:
            row: dict = {"seed": seed, "rate": rate, "dense": dense_acc, "dense_train_s": dense_s}
            t0 = time.perf_counter()
            model = copy.deepcopy(dense)
            pruner = BCRPruner(model, rate=rate, block=block)
            row["one-shot"] = evaluate(model, te)[1]
            fit(model, tr, epochs=ft, pruner=pruner, seed=seed, **kw)
            row["retrained"] = evaluate(model, te)[1]
            retrained = model
            for method in ("gradual", "admm"):
                deterministic(seed, args.threads)
                model = copy.deepcopy(dense)
                schedule = schedule_for(method, ft, steps_per_epoch, args.rho)
                fit(model, tr, epochs=ft, seed=seed,
                    pruner=BCRPruner(model, rate=rate, block=block, schedule=schedule), **kw)
                row[method] = evaluate(model, te)[1]
            deterministic(seed, args.threads)
            distilled = retrain_model(onnx.load_from_string(dense_ort), unlabeled, epochs=ft,
                                      distill=True, seed=seed, lr=case.lr,
                                      batch_size=case.batch_size,
                                      prune_options={"rate": rate, "block": block})
            row["distilled"] = evaluate(OnnxModule(distilled.result.model), te)[1]
            row["pruned_layers"] = [
                {"layer": r.name, "density": r.density, "block": r.block, "keep": r.keep}
                for r in distilled.result.layers if r.pruned]
            row["train_s"] = time.perf_counter() - t0
            if seed == seeds[0] and not args.no_latency:
                with tempfile.TemporaryDirectory(prefix="grimc-accuracy-") as tmp:
                    row["latency"] = latency(export(copy.deepcopy(retrained), case.example(train)),
                                             case.example(train).numpy(), Path(tmp), args.runs)
            runs.append(row)
            save(summary := {"name": case.name, "title": case.title, "epochs": epochs,
                             "finetune_epochs": ft, "block": block, "runs": runs})
            print(f"{case.name} seed {seed} rate {rate:g}: dense {100 * dense_acc:.2f}  " + "  ".join(
                f"{m} {100 * row[m]:.2f}" for m in METHODS) + f"  ({row['train_s']:.0f} s)",
                file=sys.stderr, flush=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benches.accuracy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=sorted(CASES), default=sorted(CASES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rates", type=float, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--block", default="8x16")
    parser.add_argument("--rho", type=float, default=0.05, help="ADMM penalty (default 0.05)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--runs", type=int, default=200, help="latency runs (median)")
    parser.add_argument("--shorten", type=int, default=1, help="divide every epoch count")
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--quick", action="store_true", help="seed 0, rate 8, epochs / 4")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for accuracy.*")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.rates, args.shorten, args.runs = [0], [8.0], 4, 50
    results: dict = {
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "cpu": platform.processor() or platform.machine(), "threads": args.threads},
        "seeds": args.seeds, "rates": args.rates, "models": [],
    }
    args.out.mkdir(parents=True, exist_ok=True)

    def save(model: dict) -> None:
        """Write the report so far (a long run leaves its finished rows if cut short)."""
        models = [m for m in results["models"] if m["name"] != model["name"]] + [model]
        partial = results | {"models": models}
        (args.out / "accuracy.json").write_text(json.dumps(partial, indent=1) + "\n")
        write_report(partial, args.out)

    for name in args.models:
        results["models"].append(run_case(CASES[name], args.seeds, args.rates, args.block,
                                          args, save))
    print(f"wrote {args.out / 'accuracy.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
