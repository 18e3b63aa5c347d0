"""Build and run OpenCL models in tests, proving the kernels ran on an OpenCL device.

`run_on_device` builds a generated model with profiling, runs it through the
common `HostModel` API, and asserts what only a real device run gives: the
device the model reports is the one clinfo lists, every kernel launch
completed, and the profile averages over exactly the runs made.
"""

from __future__ import annotations

import ctypes
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grimc.driver import compile_model
from grimc.emit.codegen import GeneratedModel
from grimc.emit.opencl.codegen import device_name
from grimc.runner import HostModel
from tests.kernels.test_dense_ops import Case, assert_matches, reference
from tests.opencl.clenv import require_opencl


def device_names() -> str:
    """clinfo's device listing (what a model's device must be among)."""
    return subprocess.run(["clinfo", "-l"], capture_output=True, text=True, timeout=60).stdout


def build(gen: GeneratedModel, workdir: Path, profile: bool = True) -> HostModel:
    require_opencl()
    return HostModel.build(gen, workdir, target=gen.target, profile=profile)


def launched(model: HostModel) -> int:
    fn = getattr(model._lib, f"{model.gen.prefix}_launched")
    fn.argtypes, fn.restype = [ctypes.c_void_p], ctypes.c_ulonglong
    return int(fn(model._handle))


def check_case(case: Case, workdir: Path, **fields: Any) -> None:
    """A case of the CPU kernel tests, compiled for opencl (CompileOptions `fields`)
    and run on the device, against the case's reference: rtol 1e-4 / atol 1e-5,
    or with half storage within 1e-2 of max |y| (half keeps 11 significant bits)."""
    feeds = case.feeds()
    gen = compile_model(case.model(), target="opencl", **fields)
    assert gen.kernels, "no kernels: nothing would run on the device"
    got = run_on_device(gen, [feeds[d.name] for d in gen.inputs], workdir)
    want = reference(case, feeds)
    if fields.get("precision", "fp32") == "fp32":
        assert_matches(got, want)
        return
    for g, w in zip(got, want, strict=True):
        assert g.shape == tuple(w.shape)
        assert np.abs(g - w).max() <= 1e-2 * float(np.abs(w).max())


def run_on_device(
    gen: GeneratedModel, inputs: Sequence[np.ndarray], workdir: Path, runs: int = 1
) -> list[np.ndarray]:
    """Outputs of `runs` runs (the last), after checking the device really ran them."""
    assert gen.kernels, "the model has no kernels: nothing would run on the device"
    with build(gen, workdir) as model:
        outs = [model.run(inputs) for _ in range(runs)][-1]
        platform, device = device_name(model).split(" | ")
        listing = device_names()
        assert device and device in listing and platform in listing, (device, listing)
        assert launched(model) == runs * len(gen.kernels)
        profile = model.profile()
        assert len(profile) == len(gen.kernels)
        assert all(p.calls == runs for p in profile)
    return outs
