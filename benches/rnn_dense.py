"""Dense recurrent cells, grimc vs onnxruntime: the GRIM paper's speech GRU by default.

    python benches/rnn_dense.py [--cell gru|lstm|rnn] [--target host-avx512]
        [--threads 1,2] [--hidden 1024] [--layers 2] [--seq 100] [--input 153]
        [--batch 1] [--repeat 20]

The model is `grimc.zoo.<cell>` (stacked ONNX layers, layout 0, seeded
weights). For each thread count, onnxruntime (intra_op_num_threads = threads)
and the grimc build of the same model run alternately in this process after a
warm-up; the median latency of each and the ratio grimc / onnxruntime (< 1:
grimc is faster) are printed, with the outputs' max abs difference. At 1
thread the clock is the calling thread's CPU time (both engines then compute
on it), so other processes on a shared core do not count; wall time otherwise.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from grimc import zoo
from grimc.driver import build_model, compile_model


def interleaved_medians(
    fns: list[Callable[[], object]], repeat: int, clock: Callable[[], float]
) -> list[float]:
    """Median seconds of each fn; runs interleaved so that noise hits all alike."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, ts in zip(fns, times, strict=True):
            t0 = clock()
            fn()
            ts.append(clock() - t0)
    return [statistics.median(ts) for ts in times]


def ort_session(model: onnx.ModelProto, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def bench(model: onnx.ModelProto, target: str, threads: int, repeat: int, workdir: Path) -> dict:
    """Median seconds of onnxruntime and grimc on one model at `threads` threads."""
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(1).standard_normal(shape, dtype=np.float32)
    sess = ort_session(model, threads)
    name = sess.get_inputs()[0].name
    gen = compile_model(model, target=target, threads=threads)
    with build_model(gen, workdir, target=target, threads=threads) as compiled:
        diff = float(np.max(np.abs(compiled.run([x])[0] - sess.run(None, {name: x})[0])))
        clock = time.thread_time if threads == 1 else time.perf_counter
        t_ort, t_grimc = interleaved_medians(
            [lambda: sess.run(None, {name: x}), lambda: compiled.run([x])], repeat, clock
        )
    return {"ort": t_ort, "grimc": t_grimc, "flops": float(gen.flops), "diff": diff}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cell", choices=("gru", "lstm", "rnn"), default="gru")
    ap.add_argument("--target", default="host-avx512")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--seq", type=int, default=100)
    ap.add_argument("--input", type=int, default=153)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--direction", default="forward")
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args(argv)
    model = getattr(zoo, args.cell)(
        input_size=args.input, hidden_size=args.hidden, num_layers=args.layers,
        seq_len=args.seq, batch=args.batch, direction=args.direction,
    )  # fmt: skip
    print(
        f"{args.cell} {args.input}->{args.layers}x{args.hidden} {args.direction}, {args.seq} steps, "
        f"batch {args.batch}, target {args.target}, median of {args.repeat} interleaved runs"
    )
    print(
        f"{'threads':>7s} {'ort ms':>8s} {'grimc ms':>9s} {'grimc GF/s':>10s} {'ratio':>6s} {'max|diff|':>10s}"
    )
    with tempfile.TemporaryDirectory(prefix="grimc_rnn_bench_") as tmp:
        for threads in (int(t) for t in args.threads.split(",")):
            r = bench(model, args.target, threads, args.repeat, Path(tmp) / f"t{threads}")
            print(
                f"{threads:7d} {r['ort'] * 1e3:8.2f} {r['grimc'] * 1e3:9.2f} "
                f"{r['flops'] / r['grimc'] / 1e9:10.1f} {r['grimc'] / r['ort']:6.2f} {r['diff']:10.2e}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
