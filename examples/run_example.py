"""The main job end to end on the bundled example model.

Compiles examples/small_cnn.onnx with grimc for the host (and, with
--target aarch64, for arm64 run under qemu), builds it with clang, runs it on
seeded random input, compares the output with onnxruntime and prints the
maximum error and the median latency of both.

    .venv/bin/python examples/run_example.py [--target host|host-avx512|aarch64] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from grimc.artifacts import ATOL, RTOL
from grimc.driver import compile_model
from grimc.runner import ExeModel

MODEL = Path(__file__).resolve().parent / "small_cnn.onnx"


def onnxruntime_run(x: np.ndarray, threads: int, repeat: int) -> tuple[np.ndarray, float]:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(MODEL), opts, providers=["CPUExecutionProvider"])
    feeds = {sess.get_inputs()[0].name: x}
    y = sess.run(None, feeds)[0]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - t0) * 1e3)
    return y, statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="host")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()

    gen = compile_model(MODEL, target=args.target, threads=args.threads)
    print(f"compiled {MODEL.name}: {len(gen.kernels)} kernels, {gen.flops / 1e6:.1f} MFLOP, "
          f"weights {len(gen.blob) / 1024:.0f} KiB, target {args.target}")
    x = np.random.default_rng(0).standard_normal(gen.inputs[0].shape).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="grimc-example-") as tmp:
        exe = ExeModel.build(gen, Path(tmp), target=args.target, threads=args.threads)
        repeat = args.repeat if args.target != "aarch64" else 3
        (y,), stats = exe.run_with_stats([x], repeat=repeat)
    ref, ort_ms = onnxruntime_run(x, args.threads, args.repeat)
    err = float(np.max(np.abs(y - ref)))
    ok = bool(np.allclose(y, ref, rtol=RTOL, atol=ATOL))
    print(f"max abs error vs onnxruntime: {err:.3g} ({'OK' if ok else 'MISMATCH'} at rtol "
          f"{RTOL:g}, atol {ATOL:g})")
    note = " (under qemu: not a real arm64 timing)" if args.target == "aarch64" else ""
    print(f"grimc latency: {stats.median_ms:.3f} ms median of {stats.repeat} runs{note}, "
          f"arena {stats.arena_bytes} bytes, {args.threads} thread(s)")
    print(f"onnxruntime latency: {ort_ms:.3f} ms median of {args.repeat} runs")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
