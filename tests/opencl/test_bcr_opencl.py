"""OpenCL BCR kernels (bcr.matmul, bcr.conv2d) on a real OpenCL device against numpy.

Cases and references are the CPU BCR tests' (odd shapes, strides, dilations,
groups, empty blocks, nothing kept, everything kept, row permutations), each
scheduled for the opencl target and generated (`opencl_model`) -> host
library -> HostModel. `run_on_device`
asserts the device and the completed launches, so these cannot pass without
an OpenCL device. fp32 tolerance rtol 1e-4 / atol 1e-5 as on the CPU; fp16
storage (inputs, weights and activations rounded to half, float arithmetic)
within 1e-2 of max |y|.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from xdsl.utils.exceptions import VerifyException

from grimc.dialects.sched import ClLinearSchedule
from tests.opencl.bcrcases import (
    CONV_CASES,
    MATMUL_CASES,
    ConvCase,
    MatMulCase,
    Sparsity,
    conv_case,
    conv_cases,
    matmul_case,
    matmul_cases,
    opencl_model,
)
from tests.opencl.clenv import tiered
from tests.opencl.clmodel import run_on_device

RTOL, ATOL = 1e-4, 1e-5
SETTINGS = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
BCR_CONV = {k: c for k, c in CONV_CASES.items() if c.fmt == "bcr"}
BCR_MATMUL = {k: c for k, c in MATMUL_CASES.items() if c.fmt == "bcr"}


def check(case, workdir: Path, seed: int = 0, precision: str = "fp32", **knobs) -> None:
    rng = np.random.default_rng(seed)
    make = conv_case if isinstance(case, ConvCase) else matmul_case
    module, inputs, want = make(case, rng)
    gen = opencl_model(module, precision, **knobs)
    kinds = {k.kind for k in gen.kernels}
    assert kinds == {"conv" if isinstance(case, ConvCase) else "linear"}
    assert all(k.params["sparse"] for k in gen.kernels)
    got = run_on_device(gen, inputs, workdir)[0]
    if precision == "fp32":
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    else:
        scale = max(float(np.abs(want).max()), 1e-6)
        assert np.abs(got - want).max() <= 1e-2 * scale


@pytest.mark.parametrize(
    "name",
    tiered(BCR_CONV, ["3x3_stride2_asym", "dilated_groups", "nothing_kept", "everything_kept"]),
)
def test_bcr_conv_cases(name: str, tmp_path: Path) -> None:
    check(BCR_CONV[name], tmp_path)


@pytest.mark.parametrize("name", tiered(BCR_MATMUL, ["gemv", "gemm_batched"]))
def test_bcr_matmul_cases(name: str, tmp_path: Path) -> None:
    check(BCR_MATMUL[name], tmp_path)


@pytest.mark.slow
@settings(max_examples=8, **SETTINGS)
@given(c=conv_cases())
def test_bcr_conv_random(c: ConvCase, tmp_path_factory: pytest.TempPathFactory) -> None:
    check(c, tmp_path_factory.mktemp("cl_conv"))


@pytest.mark.slow
@settings(max_examples=8, **SETTINGS)
@given(c=matmul_cases())
def test_bcr_matmul_random(c: MatMulCase, tmp_path_factory: pytest.TempPathFactory) -> None:
    check(c, tmp_path_factory.mktemp("cl_mm"))


KNOBS = {
    "rows1": dict(rows=1),
    "rows2_local": dict(rows=2, lx=4, ly=4, lz=1),
    "rows16_groups_first": dict(rows=16, order="rows"),
    "rows8_local_groups_first": dict(rows=8, order="rows", lx=2, ly=8, lz=1),
}


@pytest.mark.parametrize("knobs", tiered(KNOBS, ["rows8_local_groups_first"]))
def test_bcr_conv_schedule_knobs(knobs: str, tmp_path: Path) -> None:
    """Every vector width, work-item order and local size gives the same result."""
    c = ConvCase(cin=6, cout=21, h=7, w=9, stride=(2, 1), residual=True, act="relu",
                 sparsity=Sparsity((8, 4), 0.5, 0.25))  # fmt: skip
    check(c, tmp_path, **KNOBS[knobs])


@pytest.mark.slow
@pytest.mark.parametrize("knobs", ["rows1", "rows16_groups_first"])
def test_bcr_matmul_schedule_knobs(knobs: str, tmp_path: Path) -> None:
    c = MatMulCase(lead=(3,), k=45, m=29, residual=True, sparsity=Sparsity((4, 8), 0.5, 0.5))
    check(c, tmp_path, **KNOBS[knobs])


def test_bad_knobs_are_verify_errors() -> None:
    good = dict(rows=4, order="data", lx=0, ly=0, lz=0)
    assert ClLinearSchedule(**good).local is None
    with pytest.raises(VerifyException, match="rows must be one of 1, 2, 4, 8, 16"):
        ClLinearSchedule(**{**good, "rows": 3})
    with pytest.raises(VerifyException, match="all 0 .* or all >= 1"):
        ClLinearSchedule(**{**good, "lx": 8})
    with pytest.raises(VerifyException, match="order must be one of data, rows"):
        ClLinearSchedule(**{**good, "order": "pixels"})


@pytest.mark.parametrize(
    "case",
    [
        ConvCase(cin=8, cout=16, h=8, w=8, stride=(2, 2), group=2, residual=True),
        pytest.param(MatMulCase(lead=(4,), k=70, m=33, act="relu"), marks=pytest.mark.slow),
    ],
    ids=["conv", "matmul"],
)
def test_bcr_fp16_storage(case, tmp_path: Path) -> None:
    check(case, tmp_path, precision="fp16-storage")
