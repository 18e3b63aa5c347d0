"""Dynamic instruction counts of grimc's kernels per nonzero multiply-add.

    python -m benches.icount                         # both layers, dense/bcr/csr, aarch64 + x86
    python -m benches.icount --arch aarch64 --modes dense,bcr --json counts.json

Timings under qemu mean nothing (docs/targets.md), but instruction counts are
exact and deterministic, so they measure what a NEON kernel costs without a
phone. For each layer and kernel family (dense, BCR, CSR) the layer is
compiled alone at 1 thread and counted twice:

- **aarch64 (NEON)**: the static harness runs under qemu-aarch64 with the TCG
  plugin of benches/qemu_plugin, which counts instructions executed inside
  given address ranges: the model's ``<prefix>_run`` function and every
  ``kN_*`` kernel symbol, read from the harness's symbol table with nm.
- **x86-64-v3 (AVX2)**: the host harness runs under valgrind's callgrind with
  ``--toggle-collect=<prefix>_run`` (valgrind cannot decode AVX-512, so the
  x86 count is for the AVX2 build).

The harnesses are built exactly as grimc builds them (-O3): clang inlines
kernels called once into ``<prefix>_run``, so counting only ``kN_*`` symbols
would miss them, and ``-fno-inline-functions`` would change the kernels
(their micro-kernels become calls: 3x the instructions). The layer is alone
in its model, so ``<prefix>_run`` is the layer's kernels plus a few
instructions of glue. The harness runs the model twice (warm-up + 1), so
counts are halved. Functions called outside the ranges (libm, memset, the
thread pool) are counted by callgrind, not by the plugin; at 1 thread the
kernels of these layers call none.
Each harness's output is checked against onnxruntime, so a count is never of
a wrong kernel. Nonzero MACs = nonzero weights x output positions.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

KERNEL_SYMBOL = re.compile(r"^k\d+_\w+$")
TOLERANCE = 1e-3


@dataclass(frozen=True)
class Layer:
    name: str
    label: str
    build: Callable[[], onnx.ModelProto]


def _conv_layer(cin: int, cout: int, size: int) -> onnx.ModelProto:
    from grimc.zoo.builder import GraphBuilder

    b = GraphBuilder(0, 17)
    x = b.input("input", (1, cin, size, size))
    return b.finish(["input"], {"output": b.conv(x, cout, 3)}, "conv")


def _gemv_layer(k: int, m: int) -> onnx.ModelProto:
    from grimc.zoo.builder import GraphBuilder

    b = GraphBuilder(0, 17)
    x = b.input("input", (1, k))
    return b.finish(["input"], {"output": b.linear(x, m)}, "gemv")


LAYERS: dict[str, Layer] = {
    "conv": Layer("conv", "conv 3x3 64->64 @56x56", lambda: _conv_layer(64, 64, 56)),
    "gemv": Layer("gemv", "GEMV 1024->3072 (GRU recurrent)", lambda: _gemv_layer(1024, 3072)),
    # Small versions for tests.
    "conv-small": Layer("conv-small", "conv 3x3 32->32 @8x8", lambda: _conv_layer(32, 32, 8)),
    "gemv-small": Layer("gemv-small", "GEMV 256->128", lambda: _gemv_layer(256, 128)),
}
DEFAULT_LAYERS = ("conv", "gemv")
MODES = ("dense", "bcr", "csr")
ARCHES = ("aarch64", "x86")


def nonzero_macs(model: onnx.ModelProto) -> int:
    """Nonzero weights of every Conv/MatMul/Gemm times the output positions they serve."""
    from onnx import numpy_helper, shape_inference

    inferred = shape_inference.infer_shapes(model)
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*inferred.graph.value_info, *inferred.graph.output]
    }
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        if node.op_type not in ("Conv", "MatMul", "Gemm") or node.input[1] not in inits:
            continue
        out = shapes[node.output[0]]
        positions = int(np.prod(out[2:])) * out[0] if node.op_type == "Conv" else int(
            np.prod(out[:-1]))
        total += int(np.count_nonzero(inits[node.input[1]])) * positions
    return total


def kernel_ranges(exe: Path, run_fn: str = "") -> list[tuple[str, int, int]]:
    """(name, start, end) of every kernel function (and `run_fn`) in the symbol table."""
    nm = shutil.which("llvm-nm-19") or shutil.which("llvm-nm") or shutil.which("nm")
    if nm is None:
        raise RuntimeError("no nm/llvm-nm on PATH to read the harness's symbol table")
    proc = subprocess.run([nm, "-S", "--defined-only", str(exe)], capture_output=True,
                          text=True, check=True)
    ranges = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tT" and (
            KERNEL_SYMBOL.match(parts[3]) or parts[3] == run_fn
        ):
            start, size = int(parts[0], 16), int(parts[1], 16)
            if size:
                ranges.append((parts[3], start, start + size))
    if not ranges:
        raise RuntimeError(f"{exe.name}: no kernel symbols (k<N>_*) in its symbol table")
    return sorted(ranges, key=lambda r: r[1])


def _write_inputs(gen: Any, x: np.ndarray, workdir: Path) -> tuple[Path, Path]:
    in_dir, out_dir = workdir / "in", workdir / "out"
    for d in (in_dir, out_dir):
        d.mkdir(parents=True, exist_ok=True)
    x.astype("<f4").tofile(in_dir / "input0.bin")
    return in_dir, out_dir


def _read_output(gen: Any, out_dir: Path) -> np.ndarray:
    return np.fromfile(out_dir / "output0.bin", dtype="<f4").reshape(gen.outputs[0].shape)


def count_aarch64(gen: Any, x: np.ndarray, workdir: Path) -> tuple[int, np.ndarray, dict]:
    """Instructions inside the kernel functions for one model run, under qemu + plugin."""
    from benches.qemu_plugin import build_plugin, plugin_args, read_counts
    from grimc.runner import ExeModel
    from grimc.toolchain import AARCH64_SYSROOT, find_qemu

    exe = ExeModel.build(gen, workdir, target="aarch64", threads=1)
    ranges = kernel_ranges(exe.exe, f"{gen.prefix}_run")
    ranges_file, counts_file = workdir / "ranges.txt", workdir / "counts.txt"
    ranges_file.write_text("".join(f"{s:x} {e:x} {n}\n" for n, s, e in ranges))
    in_dir, out_dir = _write_inputs(gen, x, workdir)
    cmd = [str(find_qemu()), "-L", str(AARCH64_SYSROOT),
           *plugin_args(build_plugin(), ranges_file, counts_file),
           str(exe.exe), str(exe.blob), "1", "1", str(in_dir), str(out_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0 or not counts_file.exists():
        raise RuntimeError(f"qemu run failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
    counts = read_counts(counts_file)
    runs = 2  # the harness's warm-up run + REPEAT=1
    per_fn = {n: c // runs for n, c in counts.items() if n != "total" and c}
    return counts["total"] // runs, _read_output(gen, out_dir), {"functions": per_fn}


def count_x86(gen: Any, x: np.ndarray, workdir: Path) -> tuple[int, np.ndarray, dict]:
    """Instructions inside the kernel functions for one model run, under callgrind."""
    from grimc.runner import ExeModel

    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise RuntimeError("valgrind not installed")
    exe = ExeModel.build(gen, workdir, target="host", threads=1)
    kernels = [f"{gen.prefix}_run"]
    in_dir, out_dir = _write_inputs(gen, x, workdir)
    out_file = workdir / "callgrind.out"
    cmd = [valgrind, "--tool=callgrind", f"--callgrind-out-file={out_file}",
           "--collect-atstart=no", *[f"--toggle-collect={k}" for k in kernels],
           str(exe.exe), str(exe.blob), "1", "1", str(in_dir), str(out_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0 or not out_file.exists():
        raise RuntimeError(f"callgrind failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
    total = callgrind_total(out_file)
    return total // 2, _read_output(gen, out_dir), {"toggle_collect": kernels}


def callgrind_total(path: Path) -> int:
    """The collected instruction count (Ir) of a callgrind output file."""
    for line in path.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"{path.name}: no summary line")


COUNTERS = {"aarch64": ("qemu plugin", count_aarch64), "x86": ("callgrind", count_x86)}
TARGETS = {"aarch64": "aarch64", "x86": "host"}


def measure_layer(
    layer: Layer, modes: Sequence[str], arches: Sequence[str], workdir: Path,
    block: str = "8x16", rate: float = 8.0, log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """One row per (mode, arch): instructions per nonzero MAC, or why not."""
    import onnxruntime as ort

    from benches.peers.cases import first_line
    from benches.peers.engines import Unavailable, compile_grimc

    dense = layer.build()
    x = np.random.default_rng(0).standard_normal(
        [d.dim_value for d in dense.graph.input[0].type.tensor_type.shape.dim]).astype(np.float32)
    models: dict[str, onnx.ModelProto | str] = {"dense": dense}
    if any(m != "dense" for m in modes):
        try:
            from grimc.prune import prune_model

            models["sparse"] = prune_model(dense, block=block, rate=rate).model
        except Exception as exc:
            models["sparse"] = f"bcr pruning not available: {first_line(exc)}"
    rows = []
    for mode in modes:
        model = models["dense" if mode == "dense" else "sparse"]
        base = {"layer": layer.label, "mode": mode}
        if isinstance(model, str):
            rows += [{**base, "arch": a, "tool": COUNTERS[a][0], "status": "unavailable",
                      "reason": model} for a in arches]
            continue
        path = workdir / f"{layer.name}.{mode}.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, path)
        macs = nonzero_macs(model)
        reference = ort.InferenceSession(str(path)).run(None, {"input": x})[0]
        for arch in arches:
            tool, counter = COUNTERS[arch]
            row: dict[str, Any] = {**base, "arch": arch, "tool": tool, "nonzero_macs": macs}
            try:
                gen, _ = compile_grimc(path, 1, mode, TARGETS[arch])
                instructions, y, detail = counter(gen, x, workdir / f"{layer.name}.{mode}.{arch}")
            except Unavailable as exc:
                rows.append({**row, "status": "unavailable", "reason": str(exc)})
                log(f"  {layer.name} {mode} {arch}: unavailable: {exc}")
                continue
            except Exception as exc:
                rows.append({**row, "status": "error", "reason": first_line(exc)})
                log(f"  {layer.name} {mode} {arch}: error: {first_line(exc)}")
                continue
            rel = float(np.max(np.abs(y - reference)) / (np.max(np.abs(reference)) or 1.0))
            row.update(instructions=instructions, per_mac=instructions / macs, rel_err=rel,
                       detail=detail, status="ok" if rel <= TOLERANCE else "wrong")
            if rel > TOLERANCE:
                row["reason"] = f"output differs from onnxruntime by {rel:.2e} of max |y|"
            log(f"  {layer.name} {mode} {arch}: {instructions:,} instructions, "
                f"{instructions / macs:.3f} per nonzero MAC ({row['status']})")
            rows.append(row)
    return rows


METHOD = (
    "Each layer compiled alone (grimc -O3, 1 thread); aarch64 (NEON) counted under "
    "qemu-aarch64 by the TCG plugin in benches/qemu_plugin (instructions executed inside the "
    "model's run function, where clang inlines the kernels, and any `kN_*` kernel symbol), "
    "x86 (AVX2, x86-64-v3: valgrind cannot decode AVX-512) by callgrind `--toggle-collect` on "
    "the run function; one model run, output checked against onnxruntime; deterministic. "
    "Lower is better; a dense FMA kernel's floor is 1/vector-width (0.25 on NEON, 0.125 on "
    "AVX2) plus its loads."
)


def run(
    layers: Sequence[str], modes: Sequence[str], arches: Sequence[str], workdir: Path,
    block: str = "8x16", rate: float = 8.0,
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for name in layers:
        print(f"instruction counts: {LAYERS[name].label}", flush=True)
        rows += measure_layer(LAYERS[name], modes, arches, workdir, block, rate)
    return {"method": METHOD, "block": block, "rate": rate, "rows": rows}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benches.icount", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    csv = lambda s: [t for t in s.split(",") if t]  # noqa: E731
    p.add_argument("--layers", type=csv, default=list(DEFAULT_LAYERS),
                   help=f"from {', '.join(LAYERS)}")
    p.add_argument("--modes", type=csv, default=list(MODES), help="dense,bcr,csr")
    p.add_argument("--arch", type=csv, default=list(ARCHES), help="aarch64,x86")
    p.add_argument("--block", default="8x16")
    p.add_argument("--rate", type=float, default=8.0)
    p.add_argument("--json", type=Path, default=None, help="write the rows here")
    p.add_argument("--workdir", type=Path, default=None, help="build directory (default: temp)")
    args = p.parse_args(argv)
    for name, values, allowed in (("layers", args.layers, LAYERS), ("modes", args.modes, MODES),
                                  ("arch", args.arch, ARCHES)):
        bad = [v for v in values if v not in allowed]
        if bad:
            p.error(f"unknown {name}: {', '.join(bad)}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="grimc-icount-"))
    result = run(args.layers, args.modes, args.arch, workdir, args.block, args.rate)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    from benches.peers.report import icount_table

    print("\n".join(icount_table(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
