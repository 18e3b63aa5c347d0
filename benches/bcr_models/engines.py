"""The engines every case runs on the same pruned model, and how they are timed.

- ``ort``       onnxruntime (benches.peers' settings: ORT_ENABLE_ALL, sequential,
                intra-op threads = T); the reference every output is checked against
- ``dense``     grimc, `--sparse-format dense`: the graph pipeline, dense kernels
- ``bcr``       grimc's default pipeline (`grimc.driver.default_passes`) and BCR kernels
- ``csr``       the same pipeline, the CSR baseline kernels (`--sparse-format csr`)
- ``no-reorder`` BCR without the `bcr-reorder` pass (rows in model order, no thread balancing)
- ``no-rle``    BCR with the schedules `schedule-select` chose, but the `rle` flag
                cleared: same register tile, every row reloads each input vector.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from benches.bcr_layers import Compiled
from benches.peers.engines import load_onnxruntime
from grimc.dialects.sched import GemvSchedule, SpmmSchedule
from grimc.driver import compile_model, default_passes, import_model, optimize
from grimc.emit.codegen import GeneratedModel


@dataclass(frozen=True)
class Engine:
    name: str
    label: str
    sparse_format: str  # grimc's --sparse-format ("" for onnxruntime)
    drop_pass: str = ""  # a default pass left out
    rle_off: bool = False


ENGINES: tuple[Engine, ...] = (
    Engine("ort", "onnxruntime", ""),
    Engine("dense", "grimc dense", "dense"),
    Engine("bcr", "grimc BCR", "bcr"),
    Engine("csr", "grimc CSR", "csr"),
    Engine("no-reorder", "BCR without reorder", "bcr", drop_pass="bcr-reorder"),
    Engine("no-rle", "BCR without RLE", "bcr", rle_off=True),
)
LABELS = {e.name: e.label for e in ENGINES}


def clear_rle(module: ModuleOp) -> int:
    """Turn RLE off in every BCR kernel's schedule, keeping its other knobs; how many."""
    count = 0
    for op in module.walk():
        for key in ("sched", "sched.proj"):
            sched = op.attributes.get(key)
            if isinstance(sched, SpmmSchedule | GemvSchedule):
                op.attributes[key] = sched.replace(rle=False)
                count += 1
    return count


def compile_engine(engine: Engine, path: Path, target: str, threads: int) -> GeneratedModel:
    """The engine's generated C for the model at `path`."""
    passes = [
        p
        for p in default_passes(target=target, threads=threads, sparse_format=engine.sparse_format)
        if not engine.drop_pass or p.split("{")[0] != engine.drop_pass
    ]
    module = optimize(import_model(str(path)), passes=passes, target=target, threads=threads)
    if engine.rle_off:
        clear_rle(module)
    return compile_model(
        module, target=target, threads=threads, passes=[], sparse_format=engine.sparse_format
    )


def ort_engine(path: Path, threads: int, x: np.ndarray) -> Callable[[], list[np.ndarray]]:
    run, _ = load_onnxruntime(path, threads)
    return lambda: run(x)


def grimc_engine(
    gen: GeneratedModel, workdir: Path, target: str, threads: int, x: np.ndarray
) -> Compiled:
    """Built and loaded in-process; calls go through prebuilt ctypes pointers."""
    return Compiled(gen, workdir, target, threads, x)


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max |want| (benches.peers' check)."""
    if got.size != want.size:
        return float("inf")
    scale = float(np.max(np.abs(want))) or 1.0
    err = float(np.max(np.abs(got.reshape(-1).astype(np.float64) - want.reshape(-1))))
    return err / scale if np.isfinite(err) else float("inf")


class SettledClock:
    """Wall time that leaves out a pause taken whenever the timed engine changes.

    With several threads, onnxruntime's workers spin for tens of ms after a
    run (measured here: ~8-30 ms of CPU) and would take the cores the next
    engine's workers need; grimc's spin 0.1 ms. Each engine's first call after
    another's sleeps `pause` first, and the clock does not count the sleep.
    """

    def __init__(self, pause: float):
        self.pause = pause
        self.paused = 0.0
        self.last: object = None

    def __call__(self) -> float:
        return time.perf_counter() - self.paused

    def wrap(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        def call() -> Any:
            if self.last is not fn:
                t0 = time.perf_counter()
                time.sleep(self.pause)
                self.paused += time.perf_counter() - t0
                self.last = fn
            return fn()

        return call
