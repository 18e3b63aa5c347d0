"""Dense conv kernels (grimc/emit/kernels/conv.py) against onnxruntime.

Each case is a one-Conv ONNX model built here (optionally followed by Add of a
second input and Relu/Clip, which the graph passes fuse into the conv), run
in-process on host (AVX2) and host-avx512, with 1 and 2 threads; aarch64 and
generic builds are compile-checked with -Werror and run under qemu.

Tolerance rtol 1e-4, atol 1e-5: inputs are N(0, 1) and weights are scaled by
1/sqrt(fan_in), so outputs are O(1) and fp32 sums of up to a few thousand
products in a different order than onnxruntime's stay well inside it.
"""

from __future__ import annotations

import math
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from grimc.artifacts import onnxruntime_reference
from grimc.driver import build_model, compile_model
from grimc.emit.codegen import GeneratedModel
from grimc.emit.kernel import BlobRef, KernelInstance
from grimc.emit.kernels.conv import (
    ConvShape,
    choose_kind,
    pack_weights,
)
from grimc.runner import ExeModel, write_sources
from grimc.target import resolve_target
from grimc.toolchain import build_executable, find_clang
from grimc.transforms import schedule_select
from grimc.transforms.schedule_select import dense_conv_schedule
from tests.kernels.convgeom import ConvGeometry
from tests.tiers import examples, spread

RTOL, ATOL = 1e-4, 1e-5
HOST_TARGETS = ["host", "host-avx512"]


@dataclass(frozen=True)
class Case(ConvGeometry):
    """A dense conv case: `act` may also name any ONNX activation op (LeakyRelu,
    Sigmoid, ...), which runs as a scalar epilogue."""


def conv_model(c: Case, seed: int = 0) -> onnx.ModelProto:
    """The ONNX model of a case: Conv [+ Add(r)] [+ Relu/Clip]."""
    rng = np.random.default_rng(seed)
    fan_in = c.cin // c.group * c.kh * c.kw
    w = rng.standard_normal((c.cout, c.cin // c.group, c.kh, c.kw)).astype(np.float32)
    w /= np.float32(math.sqrt(fan_in))
    inits = [helper.make_tensor("W", TensorProto.FLOAT, w.shape, w.ravel())]
    conv_in = ["x", "W"]
    if c.bias:
        b = rng.standard_normal(c.cout).astype(np.float32)
        inits.append(helper.make_tensor("B", TensorProto.FLOAT, b.shape, b))
        conv_in.append("B")
    nodes = [
        helper.make_node(
            "Conv", conv_in, ["conv"], kernel_shape=[c.kh, c.kw], strides=list(c.stride),
            pads=list(c.pads), dilations=list(c.dil), group=c.group,
        )
    ]  # fmt: skip
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [c.n, c.cin, c.h, c.w])]
    last = "conv"
    if c.residual:
        inputs.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, c.out_shape))
        nodes.append(helper.make_node("Add", [last, "r"], ["sum"]))
        last = "sum"
    if c.act == "relu":
        nodes.append(helper.make_node("Relu", [last], ["act"]))
        last = "act"
    elif c.act == "clip":
        for name, value in (("lo", 0.0), ("hi", 0.5)):
            inits.append(helper.make_tensor(name, TensorProto.FLOAT, [], [value]))
        nodes.append(helper.make_node("Clip", [last, "lo", "hi"], ["act"]))
        last = "act"
    elif c.act is not None:  # activations without a vector form: scalar epilogue
        nodes.append(helper.make_node(c.act, [last], ["act"]))
        last = "act"
    graph = helper.make_graph(
        nodes, "conv", inputs,
        [helper.make_tensor_value_info(last, TensorProto.FLOAT, c.out_shape)], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def case_inputs(c: Case, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal((c.n, c.cin, c.h, c.w)).astype(np.float32)]
    if c.residual:
        xs.append(rng.standard_normal(c.out_shape).astype(np.float32))
    return xs


def reference(model: onnx.ModelProto, inputs: list[np.ndarray]) -> np.ndarray:
    return onnxruntime_reference(model.SerializeToString(), inputs)[0]


def expected_kind(c: Case, target: str) -> str:
    if c.cin // c.group == 1 and c.group > 1:
        return "conv2d_depthwise"
    one = (c.kh, c.kw, c.stride, c.pads) == (1, 1, (1, 1), (0, 0, 0, 0))
    # x86: Winograd for 3x3 stride 1 with 32 to 256 channels, unless the image is
    # small enough for channel vectors
    unit_3x3 = (c.kh, c.kw, c.stride, c.dil, c.group) == (3, 3, (1, 1), (1, 1), 1)
    vw = resolve_target(target).vector_width
    small = schedule_select.pixel_efficiency(math.prod(c.out_hw), vw) < 0.9
    channels = min(c.cin, c.cout) >= 32 and c.cin + c.cout <= 512
    if target in HOST_TARGETS and unit_3x3 and channels and not small:
        return "conv2d_winograd"
    return "conv2d_1x1" if one else "conv2d"


def check_case(c: Case, tmp_path: Path, target: str, threads: int) -> None:
    """Compile, check that the conv (with its fused epilogue) is one kernel of
    the expected kind, run, and compare with onnxruntime."""
    model = conv_model(c)
    inputs = case_inputs(c)
    gen = compile_model(model, target=target, threads=threads)
    assert [k.kind for k in gen.kernels] == [expected_kind(c, target)]
    with build_model(gen, tmp_path, target=target, threads=threads) as compiled:
        got = compiled.run(inputs)[0]
    want = reference(model, inputs)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


CASES: dict[str, Case] = {
    "3x3_same": Case(cin=8, h=10, w=11, cout=13),
    # hypothesis found it: a 1x1 input at stride 2 leaves one column phase empty
    "1x1_input_stride_1x2": Case(
        cin=1, h=1, w=1, cout=1, kh=1, kw=1, stride=(1, 2), pads=(0, 0, 0, 0), bias=False
    ),
    "3x3_relu": Case(cin=16, h=12, w=12, cout=32, act="relu"),
    "3x3_residual_relu": Case(cin=16, h=9, w=9, cout=16, residual=True, act="relu"),
    "3x3_clip_nobias": Case(cin=5, h=7, w=13, cout=9, bias=False, act="clip"),
    "3x3_valid": Case(cin=6, h=11, w=9, cout=10, pads=(0, 0, 0, 0)),
    "3x3_stride2": Case(cin=16, h=15, w=16, cout=24, stride=(2, 2)),
    "3x3_asym_pads": Case(cin=7, h=9, w=10, cout=12, pads=(1, 0, 2, 1)),
    "3x3_stride2_asym": Case(n=2, cin=16, h=9, w=9, cout=20, stride=(2, 2), pads=(1, 0, 2, 1)),
    "3x3_dilation2": Case(cin=8, h=12, w=12, cout=8, pads=(2, 2, 2, 2), dil=(2, 2)),
    "3x3_groups2": Case(cin=16, h=9, w=9, cout=20, group=2, dil=(2, 2), bias=False),
    "3x3_groups4_residual": Case(cin=16, h=8, w=8, cout=16, group=4, residual=True),
    "1x1": Case(cin=16, h=9, w=9, cout=20, kh=1, kw=1, pads=(0, 0, 0, 0)),
    "1x1_residual_relu": Case(
        n=2, cin=24, h=7, w=9, cout=20, kh=1, kw=1, pads=(0, 0, 0, 0), residual=True, act="relu"
    ),
    "1x1_groups2": Case(cin=12, h=5, w=5, cout=6, kh=1, kw=1, pads=(0, 0, 0, 0), group=2),
    "1x1_stride2": Case(cin=16, h=14, w=14, cout=32, kh=1, kw=1, pads=(0, 0, 0, 0), stride=(2, 2)),
    "1x1_padded": Case(cin=4, h=5, w=6, cout=4, kh=1, kw=1, pads=(1, 0, 0, 1)),
    "5x5": Case(cin=6, h=17, w=19, cout=11, kh=5, kw=5, pads=(2, 2, 2, 2)),
    "7x7_stride2": Case(cin=3, h=30, w=31, cout=16, kh=7, kw=7, stride=(2, 2), pads=(3, 3, 3, 3)),
    "11x11_stride4": Case(cin=3, h=35, w=39, cout=10, kh=11, kw=11, stride=(4, 4), pads=(2,) * 4),
    "3x3_stride3_dil2": Case(
        cin=5, h=16, w=17, cout=9, stride=(3, 3), dil=(2, 2), pads=(0, 2, 1, 0)
    ),
    "kernel_wider_than_input": Case(cin=4, h=3, w=4, cout=5, kh=7, kw=7, pads=(3,) * 4),
    # 7x7-ish images vectorize over output channels on x86 (vec "c")
    "small_image_3x3": Case(cin=16, h=7, w=7, cout=40, act="relu"),
    "small_image_residual_sigmoid": Case(
        n=2, cin=64, h=7, w=7, cout=64, residual=True, act="Sigmoid"
    ),
    "small_image_stride2": Case(cin=32, h=13, w=13, cout=48, stride=(2, 2)),
    "small_image_1x1": Case(cin=96, h=5, w=7, cout=70, kh=1, kw=1, pads=(0, 0, 0, 0)),
    "small_image_groups2": Case(cin=64, h=6, w=6, cout=64, group=2, bias=False),
    "3x1_rect": Case(cin=4, h=9, w=8, cout=7, kh=3, kw=1, pads=(1, 0, 1, 0), stride=(1, 2)),
    "batch2_big_k": Case(n=2, cin=64, h=8, w=8, cout=40, act="relu"),
    "wide_rows": Case(cin=4, h=6, w=70, cout=8),
    "depthwise_3x3": Case(cin=32, h=20, w=21, cout=32, group=32),
    "depthwise_s2_asym": Case(
        n=2,
        cin=6,
        h=40,
        w=37,
        cout=6,
        group=6,
        stride=(2, 2),
        pads=(1, 0, 2, 1),
        residual=True,
        act="relu",
    ),  # fmt: skip
    "depthwise_5x5_dil2": Case(
        cin=8, h=70, w=70, cout=8, kh=5, kw=5, group=8, pads=(4,) * 4, dil=(2, 2), bias=False
    ),
    "depthwise_7x7_s2": Case(
        cin=4, h=30, w=30, cout=4, kh=7, kw=7, group=4, stride=(2, 2), pads=(3,) * 4
    ),
    "depthwise_mult2_clip": Case(cin=8, h=33, w=35, cout=16, group=8, act="clip"),
    "depthwise_valid_tiny": Case(cin=3, h=3, w=3, cout=3, group=3, pads=(0, 0, 0, 0)),
    "3x3_sigmoid_residual": Case(cin=8, h=9, w=13, cout=11, residual=True, act="Sigmoid"),
    "1x1_hardswish": Case(cin=8, h=7, w=7, cout=12, kh=1, kw=1, pads=(0, 0, 0, 0), act="HardSwish"),
    "3x3_stride2_leaky": Case(cin=6, h=11, w=12, cout=10, stride=(2, 2), act="LeakyRelu"),
    "depthwise_tanh": Case(cin=8, h=20, w=37, cout=8, group=8, act="Tanh"),
    "depthwise_s2_hardsigmoid": Case(
        cin=4, h=9, w=9, cout=4, group=4, stride=(2, 2), act="HardSigmoid"
    ),
}


@pytest.mark.parametrize(
    "name,target,threads",
    spread(sorted(CASES), [(t, n) for t in HOST_TARGETS for n in (1, 2)],
           lambda c, t, n: f"{n}-{t}-{c}"),
)
def test_conv_vs_onnxruntime(name: str, target: str, threads: int, tmp_path: Path) -> None:
    check_case(CASES[name], tmp_path, target, threads)


def test_threads_split_a_big_layer(tmp_path: Path) -> None:
    """Big enough for a two-task split on every split axis the heuristic picks."""
    for i, c in enumerate(
        [
            Case(cin=32, h=28, w=28, cout=32),  # pixel split
            Case(cin=64, h=4, w=4, cout=256, pads=(0, 0, 0, 0)),  # channel-block split
            Case(n=2, cin=16, h=14, w=14, cout=16, stride=(2, 2)),  # image split
            Case(cin=32, h=28, w=28, cout=32, group=32),  # depthwise planes
        ]
    ):
        gen = compile_model(conv_model(c), target="host", threads=2)
        assert gen.kernels[0].params["ntasks"] == 2
        check_case(c, tmp_path / str(i), "host", 2)


@st.composite
def random_cases(draw: st.DrawFn) -> Case:
    kh, kw = draw(st.sampled_from([1, 2, 3, 5])), draw(st.sampled_from([1, 3, 4]))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
    group = draw(st.sampled_from([1, 1, 2, 3]))
    depthwise = draw(st.booleans())
    if depthwise:
        cin = draw(st.integers(2, 6))
        cout, group = cin * draw(st.integers(1, 2)), cin
    else:
        cin = group * draw(st.integers(1, 6))
        cout = group * draw(st.integers(1, 7))
    h = draw(st.integers(dh * (kh - 1) + 1 - pads[0] - pads[2], 20).filter(lambda v: v >= 1))
    w = draw(st.integers(dw * (kw - 1) + 1 - pads[1] - pads[3], 40).filter(lambda v: v >= 1))
    return Case(
        n=draw(st.integers(1, 2)), cin=cin, h=h, w=w, cout=cout, kh=kh, kw=kw,
        stride=(sh, sw), pads=pads, dil=(dh, dw), group=group,  # type: ignore[arg-type]
        bias=draw(st.booleans()), residual=draw(st.booleans()),
        act=draw(st.sampled_from([None, "relu", "clip"])),
    )  # fmt: skip


@examples(fast=8, full=25)
def test_random_shapes(examples: int, tmp_path_factory) -> None:
    @settings(
        max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
    )
    @given(c=random_cases(), target=st.sampled_from(HOST_TARGETS), threads=st.integers(1, 2))
    def check(c: Case, target: str, threads: int) -> None:
        check_case(c, tmp_path_factory.mktemp("conv"), target, threads)

    check()


# ---- cross targets ----------------------------------------------------------------

CROSS_CASES = ["3x3_residual_relu", "3x3_stride2_asym", "1x1_residual_relu", "depthwise_s2_asym"]


@pytest.mark.parametrize("name", CROSS_CASES)
@pytest.mark.parametrize("target", ["aarch64", "generic"])
def test_cross_targets_compile_warning_free(name: str, target: str, tmp_path: Path) -> None:
    gen = compile_model(conv_model(CASES[name]), target=target, threads=2)
    c_path, _, _ = write_sources(gen, tmp_path)
    flags = ["--target=aarch64-linux-gnu"] if target == "aarch64" else []
    cmd = [str(find_clang()), *flags, "-std=c11", "-O3", "-Wall", "-Wextra", "-Werror", "-c"]
    proc = subprocess.run(
        [*cmd, str(c_path), "-o", str(tmp_path / "k.o")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    "name", ["3x3_stride2_asym", "1x1_residual_relu", "depthwise_s2_asym", "5x5"]
)
def test_aarch64_numerics_under_qemu(name: str, tmp_path: Path) -> None:
    check_case(CASES[name], tmp_path, "aarch64", threads=2)


# ---- compile-time pieces ------------------------------------------------------------


def test_pack_weights_layout() -> None:
    """Element (g, cb, k, i) of the panels is w[g*Cout_g + cb*mr + i] at flat k; pads are 0."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((2 * 11, 3, 2, 3)).astype(np.float32)
    packed = pack_weights(w, groups=2, mr=4)
    assert packed.shape == (2, 3, 18, 4)
    flat = w.reshape(2, 11, 18)
    for g in range(2):
        for co in range(11):
            np.testing.assert_array_equal(packed[g, co // 4, :, co % 4], flat[g, co])
    assert not packed[:, 2, :, 3].any()


def _shape(**kw: int) -> ConvShape:
    base = dict(n=1, cin=64, h=56, w=56, cout=64, kh=3, kw=3, oh=56, ow=56, sh=1, sw=1,
                pt=1, pl=1, dh=1, dw=1, groups=1)  # fmt: skip
    return ConvShape(**{**base, **kw})


@pytest.mark.parametrize("name", ["generic", "aarch64", "host", "host-avx512"])
@pytest.mark.parametrize("threads", [1, 2])
def test_default_schedule_is_consistent(name: str, threads: int) -> None:
    target = resolve_target(name)
    vw = target.vector_width
    for s in [_shape(), _shape(cin=512, cout=512, h=7, w=7, oh=7, ow=7), _shape(cin=3, cout=5)]:
        sched = SimpleNamespace(**dense_conv_schedule(s, target, threads).knobs())
        t = sched.nv * vw
        assert 1 <= sched.kc <= s.k and sched.kc * t * 4 <= target.l1_bytes  # L1 tile
        assert sched.ntasks in (1, threads)
        if sched.vec == "w":  # Winograd: blocks of whole vectors of 2x2 tiles
            assert target.isa in ("avx512", "avx2") and s.cin >= 32
            assert sched.tb % vw == 0 and sched.kc <= s.cin and 1 <= sched.mr <= s.cout_g
            assert 4 * 16 * sched.tb * (s.cin + s.cout) <= target.l2_bytes
        elif sched.vec == "p":  # mr channels x t pixels, blocks of whole tiles
            assert sched.tb % t == 0 and sched.tb >= t
            assert 1 <= sched.mr <= s.cout_g
            block = target.l2_bytes // 4  # L2 block
            assert sched.kc * sched.tb * 4 <= max(block, sched.kc * t * 4)
        else:  # mr pixels x t channels, one block per image, no pixel split
            assert sched.tb == s.p and 1 <= sched.mr <= s.p
            assert sched.split != "p" or sched.ntasks == 1


def test_small_images_vectorize_over_channels() -> None:
    for name in ["small_image_3x3", "small_image_stride2", "small_image_1x1"]:
        for target, vec in [("host-avx512", "c"), ("host", "c"), ("aarch64", "p")]:
            gen = compile_model(conv_model(CASES[name]), target=target)
            assert gen.kernels[0].params["vec"] == vec, (name, target)
    gen = compile_model(conv_model(CASES["3x3_relu"]), target="host-avx512")
    assert gen.kernels[0].params["vec"] == "p"


def test_kind_choice() -> None:
    assert choose_kind(_shape()) == "conv2d"
    assert choose_kind(_shape(kh=1, kw=1, pt=0, pl=0)) == "conv2d_1x1"
    assert choose_kind(_shape(kh=1, kw=1, pt=0, pl=0, sh=2, sw=2, oh=28, ow=28)) == "conv2d"
    assert choose_kind(_shape(cin=64, cout=64, groups=64)) == "conv2d_depthwise"
    assert choose_kind(_shape(cin=1, cout=8, groups=1)) == "conv2d"
    assert replace(_shape(), ow=54).is_linear is False


def test_generated_code_is_deterministic() -> None:
    model = conv_model(CASES["3x3_residual_relu"])
    a = compile_model(model, target="host-avx512", threads=2)
    b = compile_model(model, target="host-avx512", threads=2)
    assert a.source == b.source and a.blob == b.blob


KNOBS = [
    {"order": "tile"},
    {"kc": 7, "tb": 16},  # many chunks (partial sums in y), tiny blocks
    {"pf": 0, "pfa": 0, "pfb": 3},
    {"mr": 3, "nv": 2},
    {"split": "c", "ntasks": 2},
    {"split": "p", "ntasks": 3},  # more tasks than threads
    {"vec": "c", "mr": 5, "nv": 2},
    {"vec": "c", "mr": 7, "nv": 3, "split": "p", "ntasks": 2, "kc": 50},
    {"vec": "p", "mr": 8, "nv": 3},
]
KNOB_CASES = ["3x3_residual_relu", "3x3_stride2_asym", "1x1_residual_relu"]


@pytest.mark.parametrize(
    ("overrides", "name"),
    spread(KNOBS, [(n,) for n in KNOB_CASES],
           lambda o, n: ",".join(f"{k}={v}" for k, v in o.items()) + f"-{n}"),
)  # fmt: skip
def test_schedule_knobs_keep_numerics(
    overrides: dict, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every value a tuner may pick renders and computes the same conv (the fast tier
    tries each on one of the cases, in turn)."""
    orig = schedule_select.dense_conv_schedule

    def patched(*args, **kwargs):
        sched = orig(*args, **kwargs)
        tb = overrides.get("tb", sched.tb.data)
        t = overrides.get("nv", sched.nv.data) * 16
        return sched.replace(**{**overrides, "tb": max(t, -(-tb // t) * t)})

    monkeypatch.setattr(schedule_select, "dense_conv_schedule", patched)
    check_case(CASES[name], tmp_path, "host-avx512", threads=2)


ISOLATED_MAIN = """
/* Calls kernel {fn} of the model with every activation in its own exact-size
 * heap block, so that ASan sees any access outside a buffer. */
#include <stdio.h>
int main(int argc, char **argv) {{
    (void)argc;
    grimc_model *m = NULL;
    if (grimc_model_create(argv[1], {threads}, &m) != 0) return 3;
{allocs}
{reads}
    {fn}({args}, m->pool);
{writes}
{frees}
    grimc_model_destroy(m);
    return 0;
}}
"""


def isolated_kernel_source(gen: GeneratedModel, k: KernelInstance, threads: int) -> str:
    """model.c plus a main() that runs kernel k on separately allocated buffers:
    a buffer of graph input i is read from input<i>.bin, output 0 is written
    to output0.bin (files in the working directory)."""
    refs = k.inputs + k.outputs
    in_files = {d.ref.buffer: i for i, d in enumerate(gen.inputs)}
    allocs, reads, args, frees = [], [], [], []
    for name, ref in refs:
        if isinstance(ref, BlobRef):
            args.append(f"m->w[{ref.index}]")
            continue
        nbytes = gen.buffers[ref.buffer].nbytes
        allocs.append(f"    float *b_{name} = malloc({nbytes});")
        frees.append(f"    free(b_{name});")
        args.append(f"b_{name}")
        if ref.buffer in in_files:
            path = f"input{in_files[ref.buffer]}.bin"
            reads.append(
                f'    {{ FILE *f = fopen("{path}", "rb"); '
                f"if (!f || fread(b_{name}, 1, {nbytes}, f) != {nbytes}) return 4; fclose(f); }}"
            )
    out_name = next(n for n, r in k.outputs if r == gen.outputs[0].ref)
    out_bytes = gen.buffers[gen.outputs[0].ref.buffer].nbytes
    writes = (
        f'    {{ FILE *f = fopen("output0.bin", "wb"); '
        f"if (!f || fwrite(b_{out_name}, 1, {out_bytes}, f) != {out_bytes}) return 5; fclose(f); }}"
    )
    main = ISOLATED_MAIN.format(
        fn=k.fn, threads=threads, allocs="\n".join(allocs), reads="\n".join(reads),
        args=", ".join(args), writes=writes, frees="\n".join(frees),
    )  # fmt: skip
    return gen.source + main


@pytest.mark.parametrize(
    "name",
    [
        "3x3_stride2_asym", "1x1_residual_relu", "small_image_residual_sigmoid",
        "depthwise_s2_asym", "3x3_asym_pads", "kernel_wider_than_input", "11x11_stride4",
    ],
)  # fmt: skip
def test_kernel_stays_inside_its_buffers(name: str, tmp_path: Path) -> None:
    """Every activation (x, residual, y, scratch) in its own heap block under
    ASan+UBSan: no read or write outside it, no undefined arithmetic."""
    run_isolated_sanitized(CASES[name], tmp_path)


def run_isolated_sanitized(c: Case, tmp_path: Path) -> str:
    """Build `c`'s one kernel alone (each buffer its own heap block) under ASan+UBSan at
    2 threads, run it and check it against onnxruntime; returns the kernel's kind."""
    model, inputs = conv_model(c), case_inputs(c)
    gen = compile_model(model, target="host", threads=2)
    (k,) = gen.kernels
    write_sources(gen, tmp_path)
    src = tmp_path / "isolated.c"
    src.write_text(isolated_kernel_source(gen, k, threads=2))
    exe = tmp_path / "isolated"
    build_executable([src], exe, "host", sanitize=("address", "undefined"), include_dirs=[tmp_path])
    for i, x in enumerate(inputs):
        x.astype("<f4").tofile(tmp_path / f"input{i}.bin")
    proc = subprocess.run(
        [str(exe), str(tmp_path / f"{gen.prefix}.weights.bin")],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.fromfile(tmp_path / "output0.bin", dtype="<f4").reshape(c.out_shape)
    np.testing.assert_allclose(got, reference(model, inputs), rtol=RTOL, atol=ATOL)
    return k.kind


@pytest.mark.parametrize(
    "name",
    ["3x3_stride2_asym", "1x1_residual_relu", "small_image_residual_sigmoid", "depthwise_s2_asym"],
)
def test_no_out_of_bounds_access_under_sanitizers(name: str, tmp_path: Path) -> None:
    """Packs, tails and padding paths touch no memory outside the arena, the
    weight blob and the stacks (ASan cannot see the borders between arena
    buffers) and do no undefined arithmetic (UBSan), at 2 threads."""
    c = CASES[name]
    model, inputs = conv_model(c), case_inputs(c)
    gen = compile_model(model, target="host", threads=2)
    exe = ExeModel.build(gen, tmp_path, target="host", threads=2, sanitize=("address", "undefined"))
    np.testing.assert_allclose(exe.run(inputs)[0], reference(model, inputs), rtol=RTOL, atol=ATOL)
