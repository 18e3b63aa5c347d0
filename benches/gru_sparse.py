"""BCR-sparse GRU end to end: grimc BCR vs onnxruntime vs grimc dense vs grimc CSR.

    python benches/gru_sparse.py [--block 16x32] [--rate 10] [--target host-avx512]
        [--threads 1,2] [--hidden 1024] [--layers 2] [--seq 100] [--input 153]
        [--repeat 15] [--engines ort,bcr,dense,csr]

The model is the GRIM paper's speech GRU (`grimc.zoo.gru`: 2 stacked layers of
1024 units over 153 inputs, 100 steps, batch 1), BCR-pruned by
`grimc.prune.prune_model(block, rate)` (balanced; W and R of both layers).
Every engine runs that same pruned model: onnxruntime (dense kernels, so the
zeros cost it nothing and save it nothing), and grimc through its default
pipeline with `sparse_format` bcr (the sparse recurrent kernels), dense (the
dense recurrent kernels on the same weights) and csr (the CSR baseline).

Reported per thread count: median latency of each engine (runs interleaved
after a warm-up; thread CPU time at 1 thread, so that time slices taken by
other processes do not count; wall time otherwise), the speedup of each over
onnxruntime, the BCR speedup over grimc dense, and the outputs' max abs
difference from onnxruntime. The issue's target: BCR speedup over
onnxruntime >= compression / 2 (>= 5x at 10x).

Block choice: 16x32 blocks keep 3 whole columns of 32 in every 16-row block
(10.67x, pure column pruning). On AVX-512 one vector then covers exactly one
block stripe (16 rows, q = 1: one broadcast of h per 16 FMAs, no zeros
stored); 8x16 blocks pruned 10x keep 6x2 (row pruning adds stored zeros and
q = 2 merges two columns per vector), which streams ~1.3x more bytes per step.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

from benches.rnn_dense import interleaved_medians, ort_session
from grimc import zoo
from grimc.driver import build_model, compile_model
from grimc.prune import parse_block, prune_model

ENGINES = ("ort", "bcr", "dense", "csr")


def pruned_gru(args: argparse.Namespace) -> tuple[onnx.ModelProto, float]:
    """The zoo GRU pruned to `--rate` with `--block`; returns it and its compression."""
    model = zoo.gru(
        input_size=args.input, hidden_size=args.hidden, num_layers=args.layers,
        seq_len=args.seq, batch=1,
    )  # fmt: skip
    result = prune_model(model, block=parse_block(args.block, "--block"), rate=args.rate)
    return result.model, 1.0 / result.density


def kernel_notes(gen) -> str:
    """What the sparse cells compiled to: format, lane layout and projection kernel."""
    notes = []
    for k in gen.kernels:
        if k.kind == "bcr_recurrent":
            q = f"q={k.params['q']} " if k.params["format"] == "bcr" else ""
            notes.append(f"{k.params['format']}({q}tasks={k.params['ntasks']}, proj={k.params['proj'].kind})")
        elif k.kind in ("gru", "lstm", "rnn"):
            notes.append(f"dense {k.kind}")
    return ", ".join(notes)


def bench(model: onnx.ModelProto, args: argparse.Namespace, threads: int, workdir: Path) -> dict:
    """Median seconds and max |diff| vs onnxruntime of every engine at `threads`."""
    x = np.random.default_rng(1).standard_normal((args.seq, 1, args.input), dtype=np.float32)
    sess = ort_session(model, threads)
    name = sess.get_inputs()[0].name
    want = sess.run(None, {name: x})[0]
    engines = [e for e in args.engines.split(",") if e != "ort"]
    fns = [lambda: sess.run(None, {name: x})]
    out: dict[str, dict] = {"ort": {"diff": 0.0, "notes": "onnxruntime"}}
    opened = []
    try:
        for engine in engines:
            gen = compile_model(model, target=args.target, threads=threads, sparse_format=engine)
            compiled = build_model(gen, workdir / engine, target=args.target, threads=threads)
            opened.append(compiled)
            got = compiled.run([x])[0]
            out[engine] = {"diff": float(np.max(np.abs(got - want))), "notes": kernel_notes(gen)}
            fns.append(lambda c=compiled: c.run([x]))
        clock = time.thread_time if threads == 1 else time.perf_counter
        times = interleaved_medians(fns, args.repeat, clock)
    finally:
        for compiled in opened:
            compiled.close()
    for engine, t in zip(["ort", *engines], times, strict=True):
        out[engine]["time"] = t
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--block", default="16x32")
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--target", default="host-avx512")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--seq", type=int, default=100)
    ap.add_argument("--input", type=int, default=153)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--engines", default=",".join(ENGINES[1:]), help="of bcr,dense,csr")
    args = ap.parse_args(argv)
    model, compression = pruned_gru(args)
    print(
        f"gru {args.input}->{args.layers}x{args.hidden}, {args.seq} steps, batch 1, blocks "
        f"{args.block} pruned {compression:.2f}x, target {args.target}, median of "
        f"{args.repeat} interleaved runs (target: bcr/ort >= {compression / 2:.2f}x)"
    )
    print(f"{'threads':>7s} {'engine':>6s} {'ms':>8s} {'vs ort':>7s} {'max|diff|':>10s}  kernels")
    with tempfile.TemporaryDirectory(prefix="grimc_gru_sparse_") as tmp:
        for threads in (int(t) for t in args.threads.split(",")):
            res = bench(model, args, threads, Path(tmp) / f"t{threads}")
            for engine, r in res.items():
                print(
                    f"{threads:7d} {engine:>6s} {r['time'] * 1e3:8.2f} "
                    f"{res['ort']['time'] / r['time']:6.2f}x {r['diff']:10.2e}  {r['notes']}"
                )
            if "bcr" in res and "dense" in res:
                print(f"{threads:7d} bcr vs grimc dense: {res['dense']['time'] / res['bcr']['time']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
