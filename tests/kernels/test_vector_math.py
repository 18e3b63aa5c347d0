"""Accuracy of the vector math in grimc_simd.h (gv_exp/log/sigmoid/tanh/erf).

Each function is evaluated by tests/kernels/vmath/vmath_eval.c, built for every
ISA the header has (AVX2, AVX-512, NEON under qemu, scalar), over the whole
float range: every 4099th float32 bit pattern (about a million values from
denormals to +-FLT_MAX), a dense sweep of [-110, 110] (where exp and sigmoid
leave the normal range) and the special values. It is compared with float64
numpy: NaN exactly where the reference is NaN, infinities exactly, normal
results within the ulp bound stated in the header, denormal results within two
denormal steps.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from grimc import toolchain

ROOT = Path(__file__).resolve().parents[2]
EVAL_C = Path(__file__).parent / "vmath" / "vmath_eval.c"

MAX_ULP = {"exp": 2.0, "log": 1.0, "sigmoid": 4.0, "tanh": 6.0, "erf": 6.0}
"""The bounds stated in grimc_simd.h."""

DENORMAL_STEP = 2.0**-149


def _avx512_cpu() -> bool:
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


TARGETS = [
    "host",
    pytest.param(
        "host-avx512",
        marks=pytest.mark.skipif(not _avx512_cpu(), reason="this CPU has no AVX-512"),
    ),
    "aarch64",
    "generic",
]


def sweep_inputs() -> np.ndarray:
    bits = np.arange(0, 2**32, 4099, dtype=np.uint64).astype(np.uint32).view(np.float32)
    dense = np.linspace(-110.0, 110.0, 200_001, dtype=np.float32)
    special = np.array(
        [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1.1754944e-38, 3.4e38, -3.4e38,
         88.72, 88.73, -87.34, -103.9, -104.0, 0.5, 1.0, 2.0],
        dtype=np.float32,
    )  # fmt: skip
    return np.concatenate([bits, dense, special])


def reference(fn: str, x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        d = x.astype(np.float64)
        if fn == "exp":
            return np.exp(d)
        if fn == "log":
            return np.log(d)
        if fn == "tanh":
            return np.tanh(d)
        if fn == "sigmoid":
            e = np.exp(-np.abs(d))
            return np.where(d >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        return np.frompyfunc(math.erf, 1, 1)(d).astype(np.float64)


@pytest.fixture(scope="module", params=TARGETS)
def evaluator(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    target = request.param
    work = tmp_path_factory.mktemp(f"vmath-{target}")
    exe = toolchain.build_executable(
        [EVAL_C],
        work / "vmath_eval",
        target,
        static=toolchain.resolve_target(target).needs_qemu,
        include_dirs=[ROOT / "runtime_c" / "include"],
        libs=["m"],
    )
    sweep = sweep_inputs()
    (work / "in.bin").write_bytes(sweep.tobytes())

    def run(fn: str, x: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """`fn` on the sweep, or on `x` when given."""
        inp = work / "in.bin"
        if x is not None:
            inp = work / "other.bin"
            inp.write_bytes(x.tobytes())
        toolchain.run_executable(exe, [fn, inp, work / "out.bin"], target)
        return (sweep if x is None else x), np.fromfile(work / "out.bin", dtype=np.float32)

    return run


@pytest.mark.parametrize("fn", sorted(MAX_ULP))
def test_accuracy_over_the_float_range(evaluator, fn: str) -> None:
    assert_within_bound(fn, *evaluator(fn))


@pytest.mark.parametrize("fn", ["sigmoid", "erf"])
def test_where_the_error_peaks(evaluator, fn: str) -> None:
    """Every 32nd float in +-[1, 4]. On the negative side sigmoid = e / (1 + e)
    carries its exponential's whole error; erf's results there lie in [0.84, 1),
    where a float's spacing is half its relative precision, so the rounding of
    the rational's evaluation counts double."""
    peak = np.arange(0x3F800000, 0x40800000, 32, dtype=np.uint32).view(np.float32)
    assert_within_bound(fn, *evaluator(fn, np.concatenate([peak, -peak])))


def assert_within_bound(fn: str, x: np.ndarray, y: np.ndarray) -> None:
    """NaN and infinities exact, normal results within MAX_ULP[fn], denormals within two steps."""
    ref = reference(fn, x)
    with np.errstate(over="ignore"):
        ref32 = ref.astype(np.float32)
    nan = np.isnan(ref)
    assert np.array_equal(np.isnan(y), nan), f"{fn}: NaN at {x[np.isnan(y) != nan][:5]}"
    inf = np.isinf(ref32)
    assert np.array_equal(y[inf], ref32[inf]), f"{fn}: infinities at {x[inf][y[inf] != ref32[inf]][:5]}"
    fin = ~nan & ~inf
    assert np.isfinite(y[fin]).all(), f"{fn}: non-finite result for a finite reference"
    err = np.abs(y[fin].astype(np.float64) - ref[fin])
    normal = np.abs(ref32[fin]) >= np.finfo(np.float32).tiny
    ulp = err[normal] / np.spacing(np.abs(ref32[fin][normal])).astype(np.float64)
    worst = int(np.argmax(ulp))
    assert ulp[worst] <= MAX_ULP[fn], (
        f"{fn}: {ulp[worst]:.2f} ulp at x={x[fin][normal][worst]!r} (bound {MAX_ULP[fn]})"
    )
    assert (err[~normal] <= 2 * DENORMAL_STEP).all(), f"{fn}: denormal results off"


def test_exact_limits(evaluator) -> None:
    """The exact values kernels rely on: exp(-inf) = 0, sigmoid/tanh/erf reach 0 and +-1."""
    x, e = evaluator("exp")
    at = {float(v): i for i, v in enumerate(x) if not np.isnan(v)}
    ninf, pinf, zero = at[-np.inf], at[np.inf], at[0.0]
    assert (e[ninf], e[pinf], e[zero]) == (0.0, np.inf, 1.0)
    s = evaluator("sigmoid")[1]
    assert (s[ninf], s[pinf], s[zero]) == (0.0, 1.0, 0.5)
    for fn in ("tanh", "erf"):
        y = evaluator(fn)[1]
        assert (y[ninf], y[pinf], y[zero]) == (-1.0, 1.0, 0.0), fn
    lg = evaluator("log")[1]
    assert (lg[pinf], lg[zero], lg[at[1.0]]) == (np.inf, -np.inf, 0.0)
