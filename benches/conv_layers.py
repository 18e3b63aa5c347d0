"""Dense conv kernels vs onnxruntime, layer by layer (1 thread by default).

    python benches/conv_layers.py --target host-avx512 [--threads 1] [--repeat 15]
        [--set design|vgg16|resnet18|all] [--e2e]

For every layer: a one-Conv (+bias +Relu) ONNX model is run by onnxruntime
(intra_op_num_threads = threads) and compiled by grimc; both are timed
alternately in this process, the median over `repeat` runs is printed with
GFLOP/s and the ratio grimc/onnxruntime (< 1: grimc is faster). Layers that
repeat in a network are timed once and weighted by their count in the
network totals. `--e2e` also times the whole zoo VGG-16 / ResNet-18 models.
onnxruntime picks its kernels at run time (AVX-512 on this machine) whatever
grimc's --target, so `--target host` compares grimc's AVX2 code with
onnxruntime's AVX-512 code (AVX2 peak is half).

The machine is noisy: medians and a warm-up run each. At 1 thread runs are
interleaved and the clock is the calling thread's CPU time (time.thread_time:
both runtimes then run on the calling thread), which does not count time
slices taken by other processes on a shared core. With more threads the clock
is wall time and each runtime's runs go back to back (onnxruntime's workers
spin after a run and would take the cores grimc's workers need).
"""

from __future__ import annotations

import argparse
import statistics
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

from grimc.driver import build_model, compile_model


@dataclass(frozen=True)
class Layer:
    name: str
    cin: int
    cout: int
    hw: int  # input height = width
    k: int
    stride: int = 1
    count: int = 1  # occurrences in its network

    @property
    def pad(self) -> int:
        return self.k // 2

    @property
    def out(self) -> int:
        return (self.hw + 2 * self.pad - self.k) // self.stride + 1

    @property
    def flops(self) -> int:
        return 2 * self.cout * self.out * self.out * self.cin * self.k * self.k


DESIGN = [
    Layer("3x3 256->256 @56", 256, 256, 56, 3),
    Layer("3x3 512->512 @14", 512, 512, 14, 3),
    Layer("3x3 64->64 @56", 64, 64, 56, 3),
    Layer("1x1 256->256 @28", 256, 256, 28, 1),
]

VGG16 = [
    Layer("vgg conv1_1 3->64 @224", 3, 64, 224, 3),
    Layer("vgg conv1_2 64->64 @224", 64, 64, 224, 3),
    Layer("vgg conv2_1 64->128 @112", 64, 128, 112, 3),
    Layer("vgg conv2_2 128->128 @112", 128, 128, 112, 3),
    Layer("vgg conv3_1 128->256 @56", 128, 256, 56, 3),
    Layer("vgg conv3_x 256->256 @56", 256, 256, 56, 3, count=2),
    Layer("vgg conv4_1 256->512 @28", 256, 512, 28, 3),
    Layer("vgg conv4_x 512->512 @28", 512, 512, 28, 3, count=2),
    Layer("vgg conv5_x 512->512 @14", 512, 512, 14, 3, count=3),
]

RESNET18 = [
    Layer("r18 conv1 7x7/2 3->64 @224", 3, 64, 224, 7, 2),
    Layer("r18 layer1 64->64 @56", 64, 64, 56, 3, count=4),
    Layer("r18 layer2.0 3x3/2 64->128 @56", 64, 128, 56, 3, 2),
    Layer("r18 layer2 128->128 @28", 128, 128, 28, 3, count=3),
    Layer("r18 layer2 ds 1x1/2 64->128 @56", 64, 128, 56, 1, 2),
    Layer("r18 layer3.0 3x3/2 128->256 @28", 128, 256, 28, 3, 2),
    Layer("r18 layer3 256->256 @14", 256, 256, 14, 3, count=3),
    Layer("r18 layer3 ds 1x1/2 128->256 @28", 128, 256, 28, 1, 2),
    Layer("r18 layer4.0 3x3/2 256->512 @14", 256, 512, 14, 3, 2),
    Layer("r18 layer4 512->512 @7", 512, 512, 7, 3, count=3),
    Layer("r18 layer4 ds 1x1/2 256->512 @14", 256, 512, 14, 1, 2),
]

SETS = {"design": DESIGN, "vgg16": VGG16, "resnet18": RESNET18}


def layer_model(layer: Layer) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((layer.cout, layer.cin, layer.k, layer.k), dtype=np.float32)
    w *= np.float32(np.sqrt(2.0 / (layer.cin * layer.k * layer.k)))
    b = rng.standard_normal(layer.cout, dtype=np.float32) * np.float32(0.1)
    p = layer.pad
    nodes = [
        helper.make_node(
            "Conv", ["x", "W", "B"], ["c"], kernel_shape=[layer.k] * 2,
            strides=[layer.stride] * 2, pads=[p] * 4,
        ),
        helper.make_node("Relu", ["c"], ["y"]),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes, "layer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, layer.cin, layer.hw, layer.hw])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, layer.cout, layer.out, layer.out])],
        [onnx.numpy_helper.from_array(w, "W"), onnx.numpy_helper.from_array(b, "B")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def ort_runner(model: onnx.ModelProto, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x})[0]


def interleaved_medians(
    fns: list[Callable[[], object]],
    repeat: int,
    min_seconds: float = 0.0,
    clock: Callable[[], float] = time.perf_counter,
) -> list[float]:
    """Median seconds of each fn, runs interleaved so noise hits all alike."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    start = time.perf_counter()
    while len(times[0]) < repeat or time.perf_counter() - start < min_seconds:
        for fn, ts in zip(fns, times, strict=True):
            t0 = clock()
            fn()
            ts.append(clock() - t0)
        if len(times[0]) >= 200:
            break
    return [statistics.median(ts) for ts in times]


def blocked_medians(
    fns: list[Callable[[], object]], repeat: int, min_seconds: float
) -> list[float]:
    """Median wall seconds of each fn, all runs of one fn back to back. With
    several threads, interleaving would let one runtime's spinning workers
    (onnxruntime spins after every run) take the cores the other needs."""
    medians = []
    for fn in fns:
        time.sleep(0.05)  # let the previous runtime's workers go to sleep
        fn()
        times: list[float] = []
        start = time.perf_counter()
        while len(times) < repeat or (
            time.perf_counter() - start < min_seconds and len(times) < 200
        ):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        medians.append(statistics.median(times))
    return medians


def bench_model(
    model: onnx.ModelProto, target: str, threads: int, repeat: int, workdir: Path
) -> tuple[float, float, float, float]:
    """(ort seconds, grimc seconds, flops, max abs diff) of one model."""
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(1).standard_normal(shape, dtype=np.float32)
    run_ort = ort_runner(model, threads)
    gen = compile_model(model, target=target, threads=threads)
    with build_model(gen, workdir, target=target, threads=threads) as compiled:
        diff = float(np.max(np.abs(compiled.run([x])[0] - run_ort(x))))
        fns = [lambda: run_ort(x), lambda: compiled.run([x])]
        if threads == 1:
            t_ort, t_grimc = interleaved_medians(fns, repeat, 0.5, time.thread_time)
        else:
            t_ort, t_grimc = blocked_medians(fns, repeat, 0.5)
    return t_ort, t_grimc, float(gen.flops), diff


def schedule_text(layer: Layer, target: str, threads: int) -> str:
    gen = compile_model(layer_model(layer), target=target, threads=threads)
    k = gen.kernels[0]
    keys = ("mr", "nv", "kc", "tb", "order", "pack", "split", "ntasks")
    return f"{k.kind}(" + ",".join(str(k.params[key]) for key in keys if key in k.params) + ")"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="host-avx512")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--set", choices=[*SETS, "all"], default="all")
    ap.add_argument("--e2e", action="store_true", help="also time whole VGG-16 / ResNet-18")
    ap.add_argument("--verbose", action="store_true", help="print each layer's schedule")
    args = ap.parse_args(argv)
    names = list(SETS) if args.set == "all" else [args.set]
    clock = "thread CPU time" if args.threads == 1 else "wall time"
    print(
        f"target {args.target}, {args.threads} thread(s), median of >= {args.repeat} runs ({clock})"
    )
    header = f"{'layer':38s} {'ort ms':>8s} {'grimc ms':>9s} {'ort GF/s':>9s} {'grimc GF/s':>10s} {'ratio':>6s}"
    with tempfile.TemporaryDirectory(prefix="grimc_bench_") as tmp:
        for set_name in names:
            print(f"\n== {set_name}\n{header}")
            tot_ort = tot_grimc = tot_flops = 0.0
            for i, layer in enumerate(SETS[set_name]):
                workdir = Path(tmp) / f"{set_name}_{i}"
                t_ort, t_g, flops, diff = bench_model(
                    layer_model(layer), args.target, args.threads, args.repeat, workdir
                )
                tot_ort += layer.count * t_ort
                tot_grimc += layer.count * t_g
                tot_flops += layer.count * flops
                extra = (
                    f"  {schedule_text(layer, args.target, args.threads)}" if args.verbose else ""
                )
                name = layer.name + (f" x{layer.count}" if layer.count > 1 else "")
                print(
                    f"{name:38s} {t_ort * 1e3:8.3f} {t_g * 1e3:9.3f} {flops / t_ort / 1e9:9.1f} "
                    f"{flops / t_g / 1e9:10.1f} {t_g / t_ort:6.2f}{extra}"
                    + (f"  MAXDIFF {diff:.2e}" if diff > 1e-3 else "")
                )
                sys.stdout.flush()
            print(
                f"{'total conv (weighted)':38s} {tot_ort * 1e3:8.3f} {tot_grimc * 1e3:9.3f} "
                f"{tot_flops / tot_ort / 1e9:9.1f} {tot_flops / tot_grimc / 1e9:10.1f} "
                f"{tot_grimc / tot_ort:6.2f}"
            )
        if args.e2e:
            run_e2e(args, Path(tmp))
    return 0


def run_e2e(args: argparse.Namespace, tmp: Path) -> None:
    from grimc import zoo

    print(
        f"\n== end to end (224x224)\n{'model':38s} {'ort ms':>8s} {'grimc ms':>9s} {'ratio':>17s}"
    )
    for name, make in (("vgg16", zoo.vgg16), ("resnet18", zoo.resnet18)):
        try:
            t_ort, t_g, flops, diff = bench_model(
                make(), args.target, args.threads, max(3, args.repeat // 3), tmp / name
            )
        except Exception as exc:  # noqa: BLE001 - report and go on with the next model
            print(f"{name:38s} not runnable: {str(exc).splitlines()[0]}")
            continue
        print(
            f"{name:38s} {t_ort * 1e3:8.2f} {t_g * 1e3:9.2f} {t_g / t_ort:17.2f}"
            + (f"  MAXDIFF {diff:.2e}" if diff > 1e-3 else "")
        )


if __name__ == "__main__":
    sys.exit(main())
