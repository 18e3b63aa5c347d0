"""Winograd F(2x2, 3x3) convs (`conv2d_winograd`, `#sched.conv<vec = w>`) against onnxruntime.

schedule-select picks it on x86 for 3x3 stride-1 convs with >= 32 input and
output channels; the kernel is generic C (gv_ vectors), so aarch64 and generic
builds are checked with the schedule forced. Tolerance rtol 1e-4, atol 1e-5 as
for the direct conv: the transforms add and subtract up to 9 terms, a few ulps
of the larger intermediate sums (measured about 0.1 of the tolerance).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grimc.driver import build_model, compile_model
from grimc.emit.kernel import CodegenError
from grimc.emit.kernels.conv import winograd_weights
from grimc.transforms import schedule_select
from tests.kernels.test_conv import (
    ATOL,
    RTOL,
    Case,
    case_inputs,
    check_case,
    conv_model,
    reference,
    run_isolated_sanitized,
)

CASES: dict[str, Case] = {
    "same_relu": Case(cin=32, h=16, w=40, cout=64, act="relu"),
    "odd_sizes": Case(cin=33, h=9, w=15, cout=35),
    "valid_nobias": Case(cin=32, h=7, w=20, cout=32, pads=(0, 0, 0, 0), bias=False),
    "asym_pads_residual_relu": Case(
        n=2, cin=32, h=9, w=9, cout=40, pads=(1, 0, 2, 1), residual=True, act="relu"
    ),
    "wide_pads_clip": Case(cin=40, h=6, w=6, cout=48, pads=(2, 2, 2, 2), act="clip"),
    "silu_like_sigmoid": Case(cin=32, h=12, w=12, cout=33, act="Sigmoid"),
    "hardswish": Case(cin=32, h=8, w=10, cout=32, act="HardSwish"),
    "one_row": Case(cin=32, h=1, w=30, cout=32),
    "many_channels": Case(cin=96, h=10, w=14, cout=80, residual=True),
}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("target", ["host", "host-avx512"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_winograd_vs_onnxruntime(name: str, target: str, threads: int, tmp_path: Path) -> None:
    c = CASES[name]
    gen = compile_model(conv_model(c), target=target, threads=threads)
    assert gen.kernels[0].kind == "conv2d_winograd"
    check_case(c, tmp_path, target, threads)


def _force(monkeypatch: pytest.MonkeyPatch, **overrides: object) -> None:
    """Every conv the schedule would give Winograd gets it, with `overrides`."""
    orig = schedule_select.dense_conv_schedule

    def patched(s, target, threads):  # type: ignore[no-untyped-def]
        sched = schedule_select._winograd_schedule(s, target, threads)
        return sched.replace(**overrides) if overrides else sched

    monkeypatch.setattr(
        schedule_select, "dense_conv_schedule",
        lambda s, target, threads: patched(s, target, threads) if s.is_3x3_unit
        else orig(s, target, threads),
    )  # fmt: skip


@pytest.mark.parametrize(
    "overrides",
    [
        {"kc": 7, "tb": 16},  # Cin in chunks (partial sums in M), many small blocks
        {"mr": 3, "nv": 2},  # a last channel block of padded rows
        {"tb": 40, "nv": 1},  # blocks that end inside a tile row
        {"split": "p", "ntasks": 3},  # more tasks than threads
        {"split": "n", "ntasks": 2},
    ],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()),
)
def test_schedule_knobs_keep_numerics(
    overrides: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hand-set schedules (what a tuner may pick) compute the same conv."""
    _force(monkeypatch, **overrides)
    for i, name in enumerate(["asym_pads_residual_relu", "odd_sizes"]):
        check_case(CASES[name], tmp_path / str(i), "host-avx512", threads=2)


@pytest.mark.parametrize("target", ["aarch64", "generic"])
def test_other_targets_when_forced(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The template is target-independent: NEON (under qemu) and portable C agree."""
    _force(monkeypatch)
    c = CASES["asym_pads_residual_relu"]
    model, inputs = conv_model(c), case_inputs(c)
    gen = compile_model(model, target=target, threads=2)
    assert gen.kernels[0].kind == "conv2d_winograd"
    with build_model(gen, tmp_path, target=target, threads=2) as compiled:
        got = compiled.run(inputs)[0]
    np.testing.assert_allclose(got, reference(model, inputs), rtol=RTOL, atol=ATOL)


def test_narrow_strided_and_small_convs_stay_direct() -> None:
    for c, kind in [
        (Case(cin=16, h=16, w=16, cout=64), "conv2d"),  # too few input channels
        (Case(cin=32, h=16, w=16, cout=32, stride=(2, 2)), "conv2d"),
        (Case(cin=32, h=16, w=16, cout=32, dil=(2, 2), pads=(2, 2, 2, 2)), "conv2d"),
        (Case(cin=64, h=7, w=7, cout=64), "conv2d"),  # small image: channel vectors
        (Case(cin=272, h=16, w=16, cout=272), "conv2d"),  # a 32-tile block outgrows L2
    ]:
        gen = compile_model(conv_model(c), target="host-avx512")
        assert gen.kernels[0].kind == kind, c
    gen = compile_model(conv_model(CASES["same_relu"]), target="aarch64")
    assert gen.kernels[0].kind == "conv2d"  # measured on x86 only


def test_hand_set_winograd_on_a_strided_conv_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    orig = schedule_select.dense_conv_schedule
    monkeypatch.setattr(
        schedule_select, "dense_conv_schedule",
        lambda *a: orig(*a).replace(vec="w", split="p", ntasks=1),
    )  # fmt: skip
    c = Case(cin=32, h=16, w=16, cout=32, stride=(2, 2))
    with pytest.raises(CodegenError, match="3x3 stride-1"):
        compile_model(conv_model(c), target="host-avx512")


def test_weight_transform_computes_the_tile() -> None:
    """A^T [U (.) (B^T d B)] A is the 2x2 valid correlation of a 4x4 tile d with g,
    for U = G g G^T as packed by winograd_weights."""
    rng = np.random.default_rng(0)
    g = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)  # Cout 3, Cin 2
    d = rng.standard_normal((2, 4, 4))
    bt = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]])
    at = np.array([[1, 1, 1, 0], [0, 1, -1, -1]])
    u = winograd_weights(g, mr=2)  # [16][2 blocks][Cin][2], channel 3 padded
    assert u.shape == (16, 2, 2, 2) and not u[:, 1, :, 1].any()
    for co in range(3):
        ue = u[:, co // 2, :, co % 2].reshape(4, 4, 2)  # [a][b][ci]
        m = sum(ue[:, :, ci] * (bt @ d[ci] @ bt.T) for ci in range(2))
        want = np.array(
            [[(d[:, i:i + 3, j:j + 3] * g[co]).sum() for j in range(2)] for i in range(2)]
        )  # fmt: skip
        np.testing.assert_allclose(at @ m @ at.T, want, rtol=1e-5, atol=1e-5)


def test_kernel_stays_inside_its_buffers(tmp_path: Path) -> None:
    """x, residual, y and the scratch each in their own heap block under ASan+UBSan,
    2 threads, a block that ends inside a tile row and padding on every side."""
    assert run_isolated_sanitized(CASES["asym_pads_residual_relu"], tmp_path) == "conv2d_winograd"
