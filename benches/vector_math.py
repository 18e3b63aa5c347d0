"""Throughput of the vector math of grimc_simd.h: vector Sigmoid vs scalar libm Sigmoid.

    python -m benches.vector_math [--target host-avx512] [--n 65536] [--repeat 300]

Builds tests/kernels/vmath/vmath_eval.c for the target (-O3) and times, on the
same inputs (uniform in [-20, 20], N floats: 256 KiB stay in L2 by default),
the scalar `grimc_sigmoid` of grimc_math.h (libm expf; what Sigmoid kernels
ran before) and `gv_sigmoid`, plus the other vector functions. Prints the best
nanoseconds per element of each, the vector/scalar Sigmoid speed-up, and the
vector Sigmoid's max error (relative and in ulp) against float64 numpy on these
inputs, beside the bound the header states for the whole float range.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from grimc import toolchain

ROOT = Path(__file__).resolve().parents[1]
EVAL_C = ROOT / "tests" / "kernels" / "vmath" / "vmath_eval.c"
FUNCTIONS = ("sigmoid_libm", "sigmoid", "exp", "log", "tanh", "erf")
SIGMOID_MAX_ULP = 4.0
"""gv_sigmoid's error bound as grimc_simd.h states it."""


def ns_per_element(exe: Path, fn: str, inputs: Path, out: Path, repeat: int, target: str) -> float:
    proc = toolchain.run_executable(exe, [fn, inputs, out, str(repeat)], target)
    return float(proc.stdout.strip())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="host-avx512")
    parser.add_argument("--n", type=int, default=1 << 16)
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        exe = toolchain.build_executable(
            [EVAL_C], work / "vmath_eval", args.target, opt_level=3,
            static=toolchain.resolve_target(args.target).needs_qemu,
            include_dirs=[ROOT / "runtime_c" / "include"], libs=["m"],
        )  # fmt: skip
        x = np.random.default_rng(0).uniform(-20, 20, args.n).astype(np.float32)
        (work / "in.bin").write_bytes(x.tobytes())
        times = {}
        for fn in FUNCTIONS:
            times[fn] = ns_per_element(exe, fn, work / "in.bin", work / "out.bin", args.repeat, args.target)
            print(f"{fn:14s} {times[fn]:8.3f} ns/element")
        toolchain.run_executable(exe, ["sigmoid", work / "in.bin", work / "out.bin"], args.target)
        y = np.fromfile(work / "out.bin", dtype=np.float32).astype(np.float64)
        d = x.astype(np.float64)
        ref = np.where(d >= 0, 1 / (1 + np.exp(-d)), np.exp(d) / (1 + np.exp(d)))
        rel = np.max(np.abs(y - ref) / ref)
        ref32 = ref.astype(np.float32)
        ulp = np.max(np.abs(y - ref) / np.spacing(ref32).astype(np.float64))
        speedup = times["sigmoid_libm"] / times["sigmoid"]
        print(f"vector Sigmoid speed-up over scalar libm Sigmoid ({args.target}): {speedup:.1f}x")
        print(f"vector Sigmoid max error on these inputs: {rel:.2e} relative, {ulp:.2f} ulp "
              f"(stated bound {SIGMOID_MAX_ULP:g} ulp over the whole float range, "
              "tests/kernels/test_vector_math.py)")


if __name__ == "__main__":
    main()
