"""Per-kernel profiling: `-DGRIMC_PROFILE` builds, the runner API and `grimc bench --profile`.

No wall-clock thresholds: the tests check that every kernel is accounted
for, that the run counts and resets are right, and that unprofiled builds say so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grimc import zoo
from grimc.driver import compile_model
from grimc.layers import layer_names
from grimc.prune import prune_model
from grimc.runner import ExeModel, HostModel, RunError, stats_profile
from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "small_cnn.onnx"


def pruned_cnn():
    model = zoo.vgg16(image_size=32, width=0.25, num_classes=10)
    return prune_model(model, block=(8, 16), rate=8.0).model


def test_host_profile_covers_every_kernel_and_counts_runs(tmp_path: Path) -> None:
    onnx_model = pruned_cnn()
    layers = set(layer_names(onnx_model.graph))  # kernels are labelled by layer (ONNX node)
    gen = compile_model(onnx_model, target="host")
    x = np.random.default_rng(0).standard_normal(gen.inputs[0].shape).astype(np.float32)
    with HostModel.build(gen, tmp_path, profile=True) as model:
        for _ in range(3):
            model.run([x])
        profile = model.profile()
        assert [p.name for p in profile] == [k.fn for k in gen.kernels]
        assert all(p.calls == 3 and p.ms > 0 for p in profile)
        sparse = [p for p in profile if p.op.startswith("bcr.")]
        assert sparse and all(p.label in layers and p.flops > 0 for p in sparse)
        model.reset_profile()
        assert all(p.calls == 0 and p.ms == 0 for p in model.profile())
        model.run([x])
        assert all(p.calls == 1 for p in model.profile())


def test_unprofiled_build_refuses_a_profile(tmp_path: Path) -> None:
    gen = compile_model(zoo.small_cnn(), target="host")
    with HostModel.build(gen, tmp_path) as model:
        with pytest.raises(RunError, match="without profiling"):
            model.profile()


def test_harness_reports_kernel_times_under_qemu(tmp_path: Path) -> None:
    gen = compile_model(zoo.small_cnn(), target="aarch64")
    x = np.random.default_rng(0).standard_normal(gen.inputs[0].shape).astype(np.float32)
    exe = ExeModel.build(gen, tmp_path, target="aarch64", profile=True)
    _, stats = exe.run_with_stats([x], repeat=2)
    profile = stats_profile(gen, stats)
    assert len(profile) == len(gen.kernels) and all(p.calls == 2 for p in profile)
    plain = ExeModel.build(gen, tmp_path / "plain", target="aarch64")
    _, plain_stats = plain.run_with_stats([x])
    assert plain_stats.kernel_ms is None
    with pytest.raises(RunError, match="without profiling"):
        stats_profile(gen, plain_stats)


def test_bench_profile_prints_one_row_per_kernel(run_cli) -> None:
    proc = run_cli(["grimc", "bench", str(EXAMPLE), "--profile", "--repeat", "3"])
    assert proc.returncode == 0, proc.stderr
    gen = compile_model(str(EXAMPLE), target="host")
    lines = proc.stdout.splitlines()
    for kernel in gen.kernels:
        rows = [line for line in lines if line.split()[:1] == [kernel.fn]]
        assert len(rows) == 1, kernel.fn
        assert kernel.source_op in rows[0]
    assert lines[-1].startswith("sum of kernels")
