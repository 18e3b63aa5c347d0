"""One benchmark case in its own process: load, warm up, time, save the output.

    python -m benches.peers.worker SPEC.json

SPEC.json holds the case (engine, onnx path, input .npy, threads, timing
budget, work dir, result path). The worker writes RESULT.json with either
``{"status": "ok", "median_ms": ..., "times_ms": [...], ...}`` or
``{"status": "unavailable" | "error", "reason": "<one line>"}`` and the
first output as OUTPUT.npy for the parent to check against onnxruntime.
Its own process gives every engine a clean heap, its own thread pools and
no interference from the others' caches or JIT state.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np


def time_runs(
    run: Any, x: np.ndarray, warmup: int, min_repeat: int, max_repeat: int, min_seconds: float
) -> tuple[list[float], list[np.ndarray]]:
    """Warm-up runs, then at least min_repeat timed runs and min_seconds, at most max_repeat."""
    outputs = run(x)
    for _ in range(max(0, warmup - 1)):
        run(x)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_repeat and (
        len(times) < min_repeat or time.perf_counter() - start < min_seconds
    ):
        t0 = time.perf_counter_ns()
        run(x)
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return times, outputs


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    from benches.peers.engines import LOADERS, Unavailable

    x = np.load(spec["input"])
    threads = int(spec["threads"])
    t0 = time.perf_counter()
    try:
        run, info = LOADERS[spec["engine"]](
            Path(spec["onnx"]), threads, workdir=Path(spec["workdir"]),
            input_path=Path(spec["input"]),
            **spec.get("options", {}),
        )
    except Unavailable as exc:
        return {"status": "unavailable", "reason": str(exc)}
    setup_s = time.perf_counter() - t0
    times, outputs = time_runs(
        run, x, spec["warmup"], spec["min_repeat"], spec["max_repeat"], spec["min_seconds"]
    )
    np.save(spec["output"], np.asarray(outputs[0], dtype=np.float32))
    return {
        "status": "ok",
        "median_ms": float(np.median(times)),
        "min_ms": float(np.min(times)),
        "q1_ms": float(np.percentile(times, 25)),
        "q3_ms": float(np.percentile(times, 75)),
        "repeat": len(times),
        "warmup": int(spec["warmup"]),
        "setup_s": round(setup_s, 2),
        "info": info,
    }


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    try:
        result = measure(spec)
    except Exception as exc:  # any engine failure is a row reason, never a crash of the run
        traceback.print_exc()
        from benches.peers.cases import first_line

        result = {"status": "error", "reason": first_line(exc)}
    result["pid"] = os.getpid()
    Path(spec["result"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
