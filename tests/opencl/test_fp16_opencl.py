"""Native half arithmetic (`--precision fp16`) on the OpenCL target.

fp16 models compute their inner products in half and need cl_khr_fp16. Two
checks hold on any machine: every fp16 kernel source compiles with clang for
SPIR (a target with cl_khr_fp16, so the half code is type-checked) and its
inner products really are half arithmetic in the compiled IR. On the device:
PoCL on CPU (CI) does not report cl_khr_fp16, so there the model must refuse
to load with GRIMC_E_NO_FP16 naming the device; a device that reports it
must run the model and match onnxruntime within 5e-2 of max |y| (looser than
fp16 storage's 1e-2: each of the K partial sums of an inner product rounds
to 11 significant bits, so the error grows with the reduction length).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest

from grimc.driver import compile_model
from grimc.emit.codegen import GeneratedModel
from grimc.emit.opencl.codegen import cl_programs
from grimc.runner import RunError
from tests.kernels.test_bcr_recurrent import CASES as BCR_CASES
from tests.kernels.test_bcr_recurrent import cell_model
from tests.opencl.clenv import CLANG, device_reports_fp16, require, require_opencl, tiered
from tests.opencl.clmodel import device_names, run_on_device
from tests.opencl.test_models_opencl import FAST, reference

INNER_PRODUCTS = ("linear", "conv", "matmul", "recurrent")
"""Kernel kinds whose inner products run in half under fp16."""
HALF_FMA = re.compile(r"fmul (<\d+ x )?half |@llvm\.fmuladd\.(v\d+)?f16\(")
"""A half multiply (or contracted multiply-add) in clang's LLVM IR."""
FP16_TOL = 5e-2
"""Max error relative to max |y| with half accumulation (see the module doc)."""

MODELS: dict[str, Callable[[], onnx.ModelProto]] = {
    **FAST,
    "gru_bcr": lambda: cell_model(BCR_CASES["gru_bidi_clip_lbr0_b3"]),
    "lstm_bcr": lambda: cell_model(BCR_CASES["lstm_bidi_states_peep_clip_b3"]),
}


def fp16_model(name: str) -> GeneratedModel:
    return compile_model(MODELS[name](), target="opencl", prefix="m", precision="fp16")


def clang_cl(source: Path, options: str, *flags: str) -> subprocess.CompletedProcess[str]:
    """clang's OpenCL C 1.2 front end for SPIR, where cl_khr_fp16 is supported."""
    cmd = [CLANG, "-x", "cl", "-cl-std=CL1.2", "-target", "spir64-unknown-unknown",
           "-Xclang", "-finclude-default-header", "-Werror", *options.split(), *flags,
           str(source)]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", tiered(MODELS, ["small_cnn", "resnet18_32_bcr6x", "gru_bcr"]))
def test_fp16_kernels_compile_with_half_arithmetic(name: str, tmp_path: Path) -> None:
    require(subprocess.run(["which", CLANG], capture_output=True).returncode == 0, CLANG,
            "clang-19")  # fmt: skip
    gen = fp16_model(name)
    sources, programs = cl_programs(gen.kernels, "fp16")
    assert all("-DGRIMC_HALF=1 -DGRIMC_FP16=1" in p.options for p in programs)
    for i, text in enumerate(sources):
        options = next(p.options for p in programs if p.source == i)
        path = tmp_path / f"k{i}.cl"
        path.write_text(text)
        proc = clang_cl(path, options, "-fsyntax-only")
        assert proc.returncode == 0, f"{name} source {i} ({options}):\n{proc.stderr}"
    # The BCR / dense inner products accumulate in half: a half multiply in the IR.
    products = {p.source: p.options for k, p in zip(gen.kernels, programs, strict=True)
                if k.kind in INNER_PRODUCTS}  # fmt: skip
    assert products, "no inner-product kernel in the model"
    for i, options in products.items():
        proc = clang_cl(tmp_path / f"k{i}.cl", options, "-O0", "-S", "-emit-llvm", "-o", "-")
        assert proc.returncode == 0, proc.stderr
        assert HALF_FMA.search(proc.stdout), f"{name} source {i}: no half multiply-add"


@pytest.mark.parametrize("name", tiered(["small_cnn", "resnet18_32_bcr6x"], ["small_cnn"]))
def test_fp16_on_the_device(name: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Runs within FP16_TOL where the device has cl_khr_fp16, else refuses to load."""
    require_opencl()
    model = MODELS[name]()
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    gen = fp16_model(name)
    if device_reports_fp16():
        want = reference(model, x)
        got = run_on_device(gen, [x], tmp_path)[0]
        assert np.abs(got - want).max() <= FP16_TOL * float(np.abs(want).max())
        return
    with pytest.raises(RunError, match="status -23"):
        run_on_device(gen, [x], tmp_path)
    err = capfd.readouterr().err
    assert "--precision fp16: OpenCL device lacks cl_khr_fp16 (half arithmetic)" in err
    device = err.split("'")[1].split(" | ")[1]
    assert device and device in device_names()
    assert "fp16-storage" in err
