"""What grimc is for, in one run: BCR pruning and the speedup it buys.

Builds the example CNN (examples/make_example.py, seeded), prunes it to 8x with
8x16 BCR blocks (`grimc.prune`, magnitude only: no retraining, so the pruned
model is a different model, compared with onnxruntime running that same pruned
model), compiles both the dense and the pruned model with grimc, runs them on
one seeded input and prints the latency of grimc dense, grimc BCR and
onnxruntime on each, and the largest error against onnxruntime.

    .venv/bin/python examples/run_example.py [--target native|host|host-avx512|aarch64] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from make_example import example_cnn

from grimc.artifacts import ATOL, RTOL
from grimc.driver import compile_model
from grimc.prune import prune_model
from grimc.runner import ExeModel
from grimc.target import resolve_target


def onnxruntime_run(model: onnx.ModelProto, x: np.ndarray, threads: int, repeat: int):
    """Output and median milliseconds of onnxruntime (CPU, `threads` intra-op threads)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feeds = {sess.get_inputs()[0].name: x}
    y = sess.run(None, feeds)[0]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - t0) * 1e3)
    return y, statistics.median(times)


def grimc_run(model: onnx.ModelProto, x: np.ndarray, args: argparse.Namespace, workdir: Path):
    """Compile, build and run with grimc: output, median milliseconds, kernels."""
    gen = compile_model(model, target=args.target, threads=args.threads)
    exe = ExeModel.build(gen, workdir, threads=args.threads)
    (y,), stats = exe.run_with_stats([x], repeat=args.repeat)
    return y, stats.median_ms, gen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="native", help="native (default: this CPU's target), host, host-avx512, aarch64")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    emulated = resolve_target(args.target).needs_qemu
    if emulated:
        args.repeat = 2
    start = time.perf_counter()

    dense = example_cnn()
    pruned = prune_model(dense, block=(8, 16), rate=8)
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="grimc-example-") as tmp:
        y_dense, ms_dense, gen = grimc_run(dense, x, args, Path(tmp) / "dense")
        y_bcr, ms_bcr, gen_bcr = grimc_run(pruned.model, x, args, Path(tmp) / "bcr")
    weights = sum(int(np.prod(w.dims)) for w in dense.graph.initializer)
    print(f"example CNN: 3x64x64 -> 10 classes, {weights / 1e6:.1f} M weights, "
          f"{gen.flops / 1e9:.2f} GFLOP dense; pruned copy: 8x16 BCR blocks at 8x "
          f"(magnitude pruning, no retraining)")
    ref_dense, ort_dense = onnxruntime_run(dense, x, args.threads, args.repeat)
    ref_bcr, ort_bcr = onnxruntime_run(pruned.model, x, args.threads, args.repeat)

    rows = [
        ("grimc dense", ms_dense, y_dense, ref_dense),
        ("grimc BCR", ms_bcr, y_bcr, ref_bcr),
        ("onnxruntime dense", ort_dense, None, None),
        ("onnxruntime on the pruned model", ort_bcr, None, None),
    ]
    note = " (qemu: emulated, not a device timing)" if emulated else ""
    print(f"{'':34s} {'ms':>8s} {'speedup':>9s}  max abs error vs onnxruntime")
    ok = True
    for name, ms, y, ref in rows:
        line = f"{name:34s} {ms:8.3f} {ort_dense / ms:8.2f}x"
        if y is not None:
            err = float(np.max(np.abs(y - ref)))
            good = bool(np.allclose(y, ref, rtol=RTOL, atol=ATOL))
            ok &= good
            line += f"  {err:.2g} ({'OK' if good else 'MISMATCH'})"
        print(line)
    print(f"speedup: over onnxruntime dense. grimc BCR over grimc dense: "
          f"{ms_dense / ms_bcr:.2f}x{note}; "
          f"{len(gen_bcr.kernels)} kernels, target {gen_bcr.target}, {args.threads} thread(s), "
          f"medians of {args.repeat} runs; tolerance rtol {RTOL:g} atol {ATOL:g}")
    print(f"total {time.perf_counter() - start:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
