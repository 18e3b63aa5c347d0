"""OpenCL target: per-model latency and per-kernel device profile, dense against BCR.

    python -m benches.opencl [--models resnet18_32,vgg16_32] [--repeat 10]
        [--device 0] [--precision fp32|fp16-storage|fp16] [--profile]
        [--out benches/results/opencl.md]

Every model runs twice on the same OpenCL device: dense (the zoo model as is)
and BCR (the same model BCR-pruned by `grimc.prune.prune_model`, compiled
through the default pipeline, so its pruned layers run the BCR kernels).
Reported per run: the device (platform and name, from the model itself),
median wall latency of `run()` over `--repeat` runs after a warm-up (host
transfers included), the device time of every kernel from OpenCL profiling
events (`--profile` lists them), and the outputs' max |diff| from
onnxruntime. `--device` (or GRIMC_OPENCL_DEVICE) picks the device: an index
into all platforms' devices or a name substring. `--out` also writes the
table and every run's kernel profile as Markdown, headed by the machine, the
command and the load average (a loaded machine's figures are marked as such).

On PoCL (OpenCL on this CPU) the numbers are for regression only; on a
machine with a GPU and its OpenCL driver the same command runs unchanged.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx

from benches.peers.machine import describe, summary
from grimc import zoo
from grimc.artifacts import onnxruntime_reference
from grimc.driver import compile_model
from grimc.emit.opencl.codegen import device_name
from grimc.options import PRECISIONS
from grimc.prune import prune_model
from grimc.runner import HostModel, format_profile

MODELS: dict[str, tuple[Callable[[], onnx.ModelProto], tuple[int, int], float]] = {
    "small_cnn": (zoo.small_cnn, (4, 16), 4.0),
    "resnet18_32": (lambda: zoo.resnet18(image_size=32, width=0.5, num_classes=10), (8, 16), 6.0),
    "vgg16_32": (lambda: zoo.vgg16(image_size=32, width=0.25, num_classes=10), (8, 16), 8.0),
    "mobilenet_v2_32": (
        lambda: zoo.mobilenet_v2(image_size=32, width=1.0, num_classes=10),
        (4, 16),
        3.0,
    ),
    "resnet18": (lambda: zoo.resnet18(), (8, 16), 6.0),
    "vgg16": (lambda: zoo.vgg16(), (8, 16), 8.0),
}
DEFAULT = "small_cnn,resnet18_32,vgg16_32"


def measure(model: onnx.ModelProto, x: np.ndarray, args: argparse.Namespace, workdir: Path) -> dict:
    gen = compile_model(model, target="opencl", precision=args.precision)
    sparse = sum(1 for k in gen.kernels if k.params.get("sparse"))
    with HostModel.build(gen, workdir, target=gen.target, profile=True) as m:
        m.run([x])  # warm-up: first launches compile for the work-group size
        m.reset_profile()
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            y = m.run([x])[0]
            times.append(time.perf_counter() - t0)
        return {
            "device": device_name(m),
            "ms": 1e3 * statistics.median(times),
            "kernels": len(gen.kernels),
            "sparse": sparse,
            "profile": m.profile(),
            "diff": float(np.abs(y - onnxruntime_reference(model.SerializeToString(), [x])[0]).max()),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benches.opencl", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--models", default=DEFAULT, help=f"comma list of {', '.join(MODELS)}")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--device", help="OpenCL device index or name substring")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS)
    parser.add_argument("--profile", action="store_true", help="print every kernel's device time")
    parser.add_argument("--out", type=Path, help="also write the report as Markdown to this file")
    args = parser.parse_args(argv)
    if args.device is not None:
        os.environ["GRIMC_OPENCL_DEVICE"] = args.device
    names = [n for n in args.models.split(",") if n]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        print(
            f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}",
            file=sys.stderr,
        )
        return 2
    header = (f"{'model':18s} {'variant':10s} {'kernels':>7s} {'bcr':>4s} {'ms':>9s} "
              f"{'kernel ms':>9s} {'max|diff|':>9s}  device")
    print(header)
    rows: list[str] = []
    profiles: list[tuple[str, str]] = []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="grimc_bench_opencl_") as tmp:
        for name in names:
            build, block, rate = MODELS[name]
            dense = build()
            shape = [d.dim_value for d in dense.graph.input[0].type.tensor_type.shape.dim]
            x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
            variants = {
                "dense": dense,
                f"bcr{rate:g}x": prune_model(dense, block=block, rate=rate).model,
            }
            for variant, model in variants.items():
                r = measure(model, x, args, Path(tmp) / f"{name}_{variant}")
                kernel_ms = sum(p.ms for p in r["profile"])
                row = (f"{name:18s} {variant:10s} {r['kernels']:7d} {r['sparse']:4d} {r['ms']:9.3f} "
                       f"{kernel_ms:9.3f} {r['diff']:9.2e}  {r['device']}")
                print(row)
                rows.append(row)
                profiles.append((f"{name} {variant}", format_profile(r["profile"])))
                if args.profile:
                    print(profiles[-1][1])
    load = max(load, os.getloadavg()[0])
    if args.out is not None:
        args.out.write_text(report(argv, header, rows, profiles, load, args.repeat))
    return 0


def report(argv: list[str] | None, header: str, rows: list[str], profiles: list[tuple[str, str]],
           load: float, repeat: int) -> str:
    """The run as Markdown: what ran where, the table, then each run's kernel profile."""
    machine = describe()
    command = " ".join(["python -m benches.opencl", *(sys.argv[1:] if argv is None else argv)])
    busy = os.cpu_count() or 1
    lines = [
        "# OpenCL: dense against BCR on one device (`python -m benches.opencl`)", "",
        f"Measured {machine['date']} on {summary(machine)}; grimc {machine['grimc_commit']}.", "",
        f"Command: `{command}`", "",
        f"Latency: median of {repeat} `run()` calls after a warm-up, host transfers included; "
        "kernel ms: the sum of the kernels' device times from OpenCL profiling events; "
        "max|diff|: against onnxruntime on the same input.",
        f"Load average during the run: {load:.1f} on {busy} CPUs"
        + (" (a loaded machine: figures for regression only)." if load > 0.5 * busy else "."), "",
        "```", header, *rows, "```", "",
    ]
    for title, table in profiles:
        lines += [f"## {title}", "", "```", table, "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
