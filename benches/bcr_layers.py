"""BCR sparse layers: grimc BCR vs onnxruntime dense (same pruned weights) vs grimc CSR.

    python benches/bcr_layers.py [--target host-avx512] [--threads 1] [--repeat 15]
        [--layers NAME,...] [--ablation]

Layers are the prototype's shapes (docs/bcr.md): 3x3 convs with 8x16 blocks and column
pruning (each block keeps 2 of 16 columns: 8x; or 1: 16x), a 1x1 conv, and a
GRU-like 3072x1024 recurrent GEMV at 10x (blocks keep 1 or 2 columns,
unbalanced). Weights are pruned here, packed into BCRC and lowered straight
from a bcr.conv2d / bcr.matmul op (the kernel alone, no detection); onnxruntime
runs the same weights as a dense Conv / MatMul.

Reported per layer: median ms (thread CPU time at 1 thread, so that time
slices taken by other processes on a shared core do not count; runs of the
three engines interleaved; each sample times enough back-to-back runs to last
>= 2 ms), GFLOP/s on the nonzero multiply-adds (2 * nnz * pixels), that rate
as % of a measured FMA peak (a C micro-benchmark of independent FMA chains,
built for the same target in the same run), the compression (dense weights /
nonzeros), the speedup over dense onnxruntime and that speedup / compression.
Targets (the issue): >= 40% of peak on nonzero MACs for the sparse convs, and a
speedup of ~0.5-0.7x the compression. `--ablation` adds BCR without RLE and
with the other loop order.
"""

from __future__ import annotations

import argparse
import ctypes
import math
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Block, Region

from grimc.bcr_format import BCRMatrix, pack
from grimc.dialects.bcr import Conv2dOp, EncodingAttr, MatMulOp
from grimc.dialects.graph import tensor
from grimc.dialects.sched import KnobsAttr, SpmmSchedule
from grimc.driver import generate_model
from grimc.emit.codegen import RUNTIME_C, GeneratedModel
from grimc.runner import HostModel
from grimc.target import resolve_target
from grimc.toolchain import build_executable
from grimc.transforms.schedule_select import register_budget, select_schedules
from grimc.weights import WeightStore, attach


@dataclass(frozen=True)
class Layer:
    """A conv (k > 0) or a matmul (k == 0: cin = K, cout = M, hw = batch rows)."""

    name: str
    cin: int
    cout: int
    hw: int
    k: int
    keep_cols: tuple[int, ...]  # kept columns per 8x16 block, cycled over blocks
    block: tuple[int, int] = (8, 16)

    @property
    def pixels(self) -> int:
        """Output pixels (conv) or batch rows (matmul) per multiply-add of a weight."""
        return self.hw * self.hw if self.k else self.hw

    @property
    def x_shape(self) -> tuple[int, ...]:
        return (1, self.cin, self.hw, self.hw) if self.k else (self.hw, self.cin)

    @property
    def y_shape(self) -> tuple[int, ...]:
        return (1, self.cout, self.hw, self.hw) if self.k else (self.hw, self.cout)


LAYERS = [
    Layer("conv3x3 256->256 @56 8x", 256, 256, 56, 3, (2,)),
    Layer("conv3x3 256->256 @56 16x", 256, 256, 56, 3, (1,)),
    Layer("conv3x3 512->512 @14 8x", 512, 512, 14, 3, (2,)),
    Layer("conv3x3 64->64 @56 8x", 64, 64, 56, 3, (2,)),
    Layer("conv1x1 256->256 @28 8x", 256, 256, 28, 1, (2,)),
    Layer("gru gemv 3072x1024 10x", 1024, 3072, 1, 0, (2, 1, 2, 1, 2)),
    Layer("gru x-proj 100x1024->3072 10x", 1024, 3072, 100, 0, (2, 1, 2, 1, 2)),
]

# --------------------------------------------------------------------------
# pruned weights and the three implementations


def pruned(layer: Layer, rng: np.random.Generator) -> np.ndarray:
    """(M, K) weight keeping `keep_cols` random columns per block (column pruning)."""
    m, k = layer.cout, layer.cin * max(layer.k, 1) ** 2
    w = rng.standard_normal((m, k)).astype(np.float32) / np.float32(math.sqrt(k))
    keep = np.zeros((m, k), dtype=bool)
    br, bc = layer.block
    i = 0
    for r0 in range(0, m, br):
        for c0 in range(0, k, bc):
            cols = rng.choice(np.arange(c0, min(c0 + bc, k)), layer.keep_cols[i % len(layer.keep_cols)], replace=False)
            keep[r0 : r0 + br, cols] = True
            i += 1
    return np.where(keep, w, 0.0).astype(np.float32)


def sparse_module(layer: Layer, w: np.ndarray, sched: KnobsAttr | None, fmt: str) -> ModuleOp:
    """The layer as one bcr op; `sched` replaces the schedule-select pass's choice."""
    store = WeightStore()
    mat = BCRMatrix.from_dense(w, layer.block)
    prefix = store.add_packed("w", pack([mat]))
    enc = EncodingAttr.describe([mat])
    x_shape, y_shape = layer.x_shape, layer.y_shape
    block = Block(arg_types=[tensor(x_shape)])
    pad = layer.k // 2
    if layer.k:
        op = Conv2dOp(block.args[0], prefix, enc, None, y_shape, (layer.k,) * 2, (1, 1), (pad,) * 4, (1, 1), 1)
    else:
        op = MatMulOp(block.args[0], prefix, enc)
    op.attributes["sparse_format"] = StringAttr(fmt)
    if sched is not None:
        op.attributes["sched"] = sched
    block.add_ops([op, ReturnOp(op.y)])
    module = ModuleOp([FuncOp("main", ([tensor(x_shape)], [tensor(y_shape)]), Region(block))])
    attach(module, store)
    return module


def dense_onnx(layer: Layer, w: np.ndarray) -> onnx.ModelProto:
    shape, out = list(layer.x_shape), list(layer.y_shape)
    if layer.k:
        pad = layer.k // 2
        node = helper.make_node("Conv", ["x", "W"], ["y"], kernel_shape=[layer.k] * 2, pads=[pad] * 4)
        weight = w.reshape(layer.cout, layer.cin, layer.k, layer.k)
    else:
        node = helper.make_node("MatMul", ["x", "W"], ["y"])
        weight = np.ascontiguousarray(w.T)
    graph = helper.make_graph(
        [node], "layer", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)],
        [onnx.numpy_helper.from_array(weight, "W")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def ort_runner(model: onnx.ModelProto, threads: int, x: np.ndarray) -> Callable[[], object]:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feeds = {sess.get_inputs()[0].name: x}
    return lambda: sess.run(None, feeds)


class Compiled:
    """A grimc model in-process, called through ctypes with prebuilt pointers (no allocation)."""

    def __init__(self, gen: GeneratedModel, workdir: Path, target: str, threads: int, x: np.ndarray):
        self.model = HostModel.build(gen, workdir, threads=threads, target=target)
        self.gen, self.x = gen, np.ascontiguousarray(x)
        self.y = np.empty(gen.outputs[0].shape, dtype=np.float32)
        self._ins = (ctypes.c_void_p * 1)(self.x.ctypes.data)
        self._outs = (ctypes.c_void_p * 1)(self.y.ctypes.data)
        self._run = self.model._fn("run")
        self._handle = self.model._handle

    def __call__(self) -> None:
        self._run(self._handle, self._ins, self._outs)

    def output(self) -> np.ndarray:
        self()
        return self.y.copy()


# --------------------------------------------------------------------------
# timing


def bench_clock(threads: int) -> Callable[[], float]:
    """The calling thread's CPU time at 1 thread (all engines then run on it), else wall time."""
    return time.thread_time if threads == 1 else time.perf_counter


def interleaved_medians(
    fns: list[Callable[[], object]], repeat: int, clock: Callable[[], float]
) -> list[float]:
    """Median seconds per call of each fn; samples interleaved, each >= ~2 ms of calls."""
    batches = []
    for fn in fns:
        fn()
        t0 = time.perf_counter()
        fn()
        batches.append(max(1, int(0.002 / max(time.perf_counter() - t0, 1e-7))))
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, batch, ts in zip(fns, batches, times, strict=True):
            t0 = clock()
            for _ in range(batch):
                fn()
            ts.append((clock() - t0) / batch)
    return [statistics.median(ts) for ts in times]


FMA_SOURCE = r"""
#include <stdio.h>
#include <time.h>
#include "grimc_simd.h"
#define NACC %(nacc)d
static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
int main(void) {
    gv_t %(decl)s;
    const gv_t a = gv_set1(0.999999f), b = gv_set1(1e-7f);
    const long iters = 20000000L;
    double best = 0.0;
    for (int rep = 0; rep < 5; ++rep) {
        double t0 = cpu_seconds();
        for (long i = 0; i < iters; ++i) {
%(body)s
        }
        double gf = 2.0 * GRIMC_VW * NACC * (double)iters / (cpu_seconds() - t0) / 1e9;
        if (gf > best) best = gf;
    }
    float s = 0.0f;
%(sum)s
    printf("%%.2f %%g\n", best, (double)s);
    return 0;
}
"""


def fma_peak(target: str, workdir: Path) -> float:
    """Measured GFLOP/s of one core: independent FMA chains filling the register file."""
    nacc = register_budget(resolve_target(target)).accumulators
    src = FMA_SOURCE % {
        "nacc": nacc,
        "decl": ", ".join(f"c{i} = gv_set1({i}.0f)" for i in range(nacc)),
        "body": "\n".join(f"            c{i} = gv_fmadd(c{i}, a, b);" for i in range(nacc)),
        "sum": "\n".join(f"    s += gv_hsum(c{i});" for i in range(nacc)),
    }
    c_path = workdir / "fma_peak.c"
    c_path.write_text(src)
    exe = build_executable(
        [c_path], workdir / "fma_peak", resolve_target(target),
        include_dirs=[RUNTIME_C / "include"],
    )  # fmt: skip
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    return float(re.match(r"\s*([\d.]+)", out).group(1))  # type: ignore[union-attr]


# --------------------------------------------------------------------------


def describe(gen: GeneratedModel) -> str:
    k = gen.kernels[0]
    p = k.params
    keys = ("rows", "nv", "order", "tblock", "mode", "nb_tile", "sets")
    return f"{k.kind}(" + ",".join(f"{key}={p[key]}" for key in keys if key in p) + ")"


def bench_layer(
    layer: Layer, target: str, threads: int, repeat: int, workdir: Path, ablation: bool
) -> dict[str, object]:
    rng = np.random.default_rng(0)
    w = pruned(layer, rng)
    x = rng.standard_normal(layer.x_shape).astype(np.float32)
    spec = resolve_target(target)
    variants: dict[str, ModuleOp] = {
        "bcr": sparse_module(layer, w, None, "bcr"),
        "csr": sparse_module(layer, w, None, "csr"),
    }
    gens = {
        name: generate_model(mod, target=spec, threads=threads) for name, mod in variants.items()
    }
    if ablation and layer.k:
        select_schedules(variants["bcr"], spec, threads)
        (chosen,) = [op.attributes["sched"] for op in variants["bcr"].walk() if "sched" in op.attributes]
        assert isinstance(chosen, SpmmSchedule)
        other = "stripe" if chosen.order.data == "spatial" else "spatial"
        for name, sched in {
            "bcr rle off": chosen.replace(rle=False),
            f"bcr {other}": chosen.replace(order=other),
        }.items():
            gens[name] = generate_model(
                sparse_module(layer, w, sched, "bcr"), target=spec, threads=threads
            )
    runners: dict[str, Callable[[], object]] = {"ort": ort_runner(dense_onnx(layer, w), threads, x)}
    want = runners["ort"]()[0]  # type: ignore[index]
    diffs = {}
    for name, gen in gens.items():
        compiled = Compiled(gen, workdir / name.replace(" ", "_"), target, threads, x)
        diffs[name] = float(np.max(np.abs(compiled.output() - want)))
        runners[name] = compiled
    medians = interleaved_medians(list(runners.values()), repeat, bench_clock(threads))
    nnz = int(np.count_nonzero(w))
    return {
        "times": dict(zip(runners, medians, strict=True)),
        "nnz_flops": 2.0 * nnz * layer.pixels,
        "compression": w.size / nnz,
        "diff": max(diffs.values()),
        "schedule": describe(gens["bcr"]),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="host-avx512")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--layers", default="", help="comma-separated substrings of layer names")
    ap.add_argument("--ablation", action="store_true", help="also BCR without RLE / other loop order")
    args = ap.parse_args(argv)
    wanted = [s for s in args.layers.split(",") if s]
    layers = [lay for lay in LAYERS if not wanted or any(s in lay.name for s in wanted)]
    with tempfile.TemporaryDirectory(prefix="grimc_bcr_bench_") as tmp:
        peak = fma_peak(args.target, Path(tmp))
        clock = "thread CPU time" if args.threads == 1 else "wall time"
        print(f"target {args.target}, {args.threads} thread(s), median of {args.repeat} ({clock})")
        print(f"measured FMA peak: {peak:.1f} GFLOP/s per core\n")
        head = (
            f"{'layer':32s} {'compr':>5s} {'ort ms':>8s} {'bcr ms':>8s} {'csr ms':>8s} "
            f"{'bcr GF/s':>8s} {'%peak':>6s} {'csr GF/s':>8s} {'speedup':>7s} {'/compr':>6s}"
        )
        print(head)
        for i, layer in enumerate(layers):
            r = bench_layer(layer, args.target, args.threads, args.repeat, Path(tmp) / str(i), args.ablation)
            t = r["times"]
            fl = r["nnz_flops"]
            speed = t["ort"] / t["bcr"]
            print(
                f"{layer.name:32s} {r['compression']:5.1f} {t['ort'] * 1e3:8.3f} {t['bcr'] * 1e3:8.3f} "
                f"{t['csr'] * 1e3:8.3f} {fl / t['bcr'] / 1e9:8.1f} {100 * fl / t['bcr'] / 1e9 / peak:5.1f}% "
                f"{fl / t['csr'] / 1e9:8.1f} {speed:6.2f}x {speed / r['compression']:6.2f}"
                f"  {r['schedule']}" + (f"  MAXDIFF {r['diff']:.1e}" if r["diff"] > 1e-3 else "")
            )
            for name in t:
                if name.startswith("bcr "):
                    print(f"{'  ' + name:32s} {'':5s} {'':8s} {t[name] * 1e3:8.3f} {'':8s} {fl / t[name] / 1e9:8.1f}")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
