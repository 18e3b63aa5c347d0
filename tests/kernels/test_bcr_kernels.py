"""Sparse kernels for bcr.conv2d / bcr.matmul (grimc/emit/kernels/bcr*.py, csr.py) against numpy.

The cases (tests/kernels/bcrcases.py, shared with the OpenCL tests) build IR
directly with the bcr op builders from random BCR weights packed as
bcr-detect stores them. The generated kernel runs in-process on host (AVX2)
and host-avx512, and under qemu on aarch64 (fewer examples); the reference is numpy in float64. One end-to-end test goes
ONNX -> graph dialect -> bcr-detect/reorder/rle -> kernels vs onnxruntime.

Tolerance rtol 1e-4, atol 1e-5: inputs are N(0, 1) and weights N(0, 1) /
sqrt(fan_in), so outputs are O(1); the kernels sum a row's products in list
order in fp32, at most a few hundred terms here, whose rounding stays far
inside it.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from xdsl.dialects.builtin import ModuleOp
from xdsl.utils.exceptions import VerifyException

from grimc.artifacts import onnxruntime_reference
from grimc.dialects.bcr import Conv2dOp, EncodingAttr, MatMulOp
from grimc.dialects.sched import GemvSchedule, SpmmSchedule
from grimc.driver import compile_model
from grimc.emit.codegen import GeneratedModel
from grimc.emit.kernel import CodegenError
from grimc.emit.kernels.bcr import balanced_bounds
from grimc.emit.kernels.bcr_matmul import STACK_BYTES
from grimc.errors import GrimcError
from grimc.pipeline import BCR_PIPELINE
from grimc.runner import ExeModel, HostModel
from grimc.target import resolve_target
from grimc.transforms.schedule_select import select_schedules
from grimc.weights import WeightStore
from tests.kernels.bcrcases import (
    CONV_CASES,
    MATMUL_CASES,
    Case,
    ConvCase,
    Knobs,
    MatMulCase,
    Sparsity,
    bcr_weight,
    build_conv,
    conv_case,
    conv_cases,
    conv_reference,
    matmul_case,
    matmul_cases,
    module_of,
    packed_weight,
    set_format,
)
from tests.kernels.scheduled import generate
from tests.tiers import examples, threads_in_turn

RTOL, ATOL = 1e-4, 1e-5
HOST_TARGETS = ["host", "host-avx512"]
SETTINGS = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)


def set_knobs(module: ModuleOp, target: str, threads: int, fmt: str, knobs: Knobs) -> None:
    """Select every op's schedule, then change `knobs` in it (the typed schedule, in the IR)."""
    if not knobs:
        return
    t = resolve_target(target)
    select_schedules(module, t, threads, fmt)
    for op in module.walk():
        sched = op.attributes.get("sched")
        if not isinstance(sched, SpmmSchedule | GemvSchedule):
            continue
        changes = dict(knobs)
        tile = int(changes.pop("tile", 0))  # type: ignore[call-overload]
        if tile:
            changes["nv"] = max(1, math.ceil(tile / t.vw))
            if isinstance(op, MatMulOp):  # the transposed batch tile lives on the stack
                k = op.x.type.get_shape()[-1]  # type: ignore[attr-defined]
                changes["nv"] = min(int(changes["nv"]), max(1, STACK_BYTES // (4 * k * t.vw)))
        op.attributes["sched"] = sched.replace(
            **{key: value for key, value in changes.items() if key in sched.FIELDS}  # type: ignore[arg-type]
        )



def run(gen: GeneratedModel, inputs: list[np.ndarray], workdir: Path, target: str, threads: int):
    if target == "aarch64":
        return ExeModel.build(gen, workdir, target=target, threads=threads).run(inputs)[0]
    with HostModel.build(gen, workdir, threads=threads, target=target) as model:
        return model.run(inputs)[0]


def check_conv(
    c: ConvCase, workdir: Path, target: str, threads: int, seed: int = 0
) -> GeneratedModel:
    return _check(conv_case(c, np.random.default_rng(seed)), c, workdir, target, threads)


def check_matmul(
    c: MatMulCase, workdir: Path, target: str, threads: int, seed: int = 0
) -> GeneratedModel:
    return _check(matmul_case(c, np.random.default_rng(seed)), c, workdir, target, threads)


def _check(
    case: Case, c: ConvCase | MatMulCase, workdir: Path, target: str, threads: int
) -> GeneratedModel:
    """Set the case's knobs, generate for `target`, run, compare with the reference."""
    module, inputs, want = case
    set_knobs(module, target, threads, c.fmt, c.knobs)
    gen = generate(module, resolve_target(target), threads=threads)
    got = run(gen, inputs, workdir, target, threads)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    return gen


# --------------------------------------------------------------------------
# random cases


@examples(fast=10, full=40)
def test_bcr_conv_random(examples: int, tmp_path_factory) -> None:
    @settings(max_examples=examples, **SETTINGS)
    @given(c=conv_cases(), target=st.sampled_from(HOST_TARGETS), threads=st.integers(1, 2))
    def check(c: ConvCase, target: str, threads: int) -> None:
        check_conv(c, tmp_path_factory.mktemp("bcr_conv"), target, threads)

    check()


@examples(fast=10, full=40)
def test_bcr_matmul_random(examples: int, tmp_path_factory) -> None:
    @settings(max_examples=examples, **SETTINGS)
    @given(c=matmul_cases(), target=st.sampled_from(HOST_TARGETS), threads=st.integers(1, 2))
    def check(c: MatMulCase, target: str, threads: int) -> None:
        check_matmul(c, tmp_path_factory.mktemp("bcr_mm"), target, threads)

    check()


@examples(fast=5, full=15)
def test_csr_conv_random(examples: int, tmp_path_factory) -> None:
    @settings(max_examples=examples, **SETTINGS)
    @given(
        c=conv_cases(st.just("csr")),
        target=st.sampled_from(HOST_TARGETS),
        threads=st.integers(1, 2),
    )
    def check(c: ConvCase, target: str, threads: int) -> None:
        gen = check_conv(c, tmp_path_factory.mktemp("csr_conv"), target, threads)
        assert gen.kernels[0].kind == "csr_conv"

    check()


@examples(fast=5, full=15)
def test_csr_matmul_random(examples: int, tmp_path_factory) -> None:
    @settings(max_examples=examples, **SETTINGS)
    @given(
        c=matmul_cases(st.just("csr")),
        target=st.sampled_from(HOST_TARGETS),
        threads=st.integers(1, 2),
    )
    def check(c: MatMulCase, target: str, threads: int) -> None:
        gen = check_matmul(c, tmp_path_factory.mktemp("csr_mm"), target, threads)
        assert gen.kernels[0].kind == "csr_matmul"

    check()


@examples(fast=2, full=5)
def test_conv_aarch64_random(examples: int, tmp_path_factory) -> None:
    @settings(max_examples=examples, **SETTINGS)
    @given(c=conv_cases(st.sampled_from(["bcr", "bcr", "csr"])), threads=st.integers(1, 2))
    def check(c: ConvCase, threads: int) -> None:
        check_conv(c, tmp_path_factory.mktemp("arm_conv"), "aarch64", threads)

    check()


@examples(fast=2, full=5)
def test_matmul_aarch64_random(examples: int, tmp_path_factory) -> None:
    @settings(max_examples=examples, **SETTINGS)
    @given(c=matmul_cases(st.sampled_from(["bcr", "bcr", "csr"])), threads=st.integers(1, 2))
    def check(c: MatMulCase, threads: int) -> None:
        check_matmul(c, tmp_path_factory.mktemp("arm_mm"), "aarch64", threads)

    check()


# --------------------------------------------------------------------------
# named cases: every kernel path at least once, on every target (the fast tier
# with 1 or 2 threads in turn, the slow tier with both)

NAMED_TARGETS = [*HOST_TARGETS, "generic"]


@pytest.mark.parametrize(
    ("name", "target", "threads"), threads_in_turn(list(CONV_CASES), NAMED_TARGETS)
)
def test_conv_cases(name: str, target: str, threads: int, tmp_path: Path) -> None:
    check_conv(CONV_CASES[name], tmp_path, target, threads)


@pytest.mark.parametrize(
    ("name", "target", "threads"), threads_in_turn(list(MATMUL_CASES), NAMED_TARGETS)
)
def test_matmul_cases(name: str, target: str, threads: int, tmp_path: Path) -> None:
    check_matmul(MATMUL_CASES[name], tmp_path, target, threads)


@pytest.mark.parametrize(
    "name",
    [
        "3x3_same_8x16",
        "3x3_stride2_asym",
        "stride3x2_dilated_groups",
        "valid_rows_mode",
        "dilated_groups",
        "rle_off_spatial_threads",
        "csr_3x3",
    ],
)
def test_conv_cases_aarch64(name: str, tmp_path: Path) -> None:
    check_conv(CONV_CASES[name], tmp_path, "aarch64", threads=2)


@pytest.mark.parametrize("name", ["gemv", "gemm_batched", "csr"])
def test_matmul_cases_aarch64(name: str, tmp_path: Path) -> None:
    check_matmul(MATMUL_CASES[name], tmp_path, "aarch64", threads=2)


# --------------------------------------------------------------------------
# what the lowering chooses and emits


def kernel_of(gen: GeneratedModel):
    """The op's sparse kernel (after the polyphase split of a strided conv)."""
    *prologue, kernel = gen.kernels
    assert [k.kind for k in prologue] in ([], ["phase_split"])
    return kernel


def test_kernel_kinds_and_paths(tmp_path: Path) -> None:
    """Each case reaches the kernel path it is named for."""
    rng = np.random.default_rng(0)
    kinds = {}
    for name, case in CONV_CASES.items():
        module = build_conv(case, rng)[0]
        set_knobs(module, "host-avx512", 1, case.fmt, case.knobs)
        kinds[name] = kernel_of(generate(module, resolve_target("host-avx512")))
    assert kinds["3x3_same_8x16"].kind == "bcr_spmm"
    assert kinds["3x3_same_8x16"].params["mode"] == "flat"
    strided = generate(build_conv(CONV_CASES["3x3_stride2_asym"], rng)[0], resolve_target("host"))
    assert [k.kind for k in strided.kernels] == ["phase_split", "bcr_spmm"]
    spmm = kinds["3x3_stride2_asym"].params  # a stride-1, unpadded 2x2 conv over 4 phase planes
    assert (spmm["sh"], spmm["sw"], spmm["kh"], spmm["kw"], spmm["pt"]) == (1, 1, 2, 2, 0)
    assert spmm["mode"] == "rows" and spmm["cin"] == 4 * CONV_CASES["3x3_stride2_asym"].cin
    one = kinds["1x1_stride2_flat_after_split"].params  # one phase plane, read flat
    assert one["mode"] == "flat" and one["cin"] == CONV_CASES["1x1_stride2_flat_after_split"].cin
    assert kinds["valid_rows_mode"].params["mode"] == "rows"
    assert not kinds["1x1_unmasked"].params["masked"]
    assert kinds["3x3_same_8x16"].params["masked"]
    sched = kinds["rle_off_spatial_threads"].params
    assert (sched["rows"], sched["nv"] * 16, sched["unroll"], sched["order"], sched["rle"]) == (
        5, 32, 3, "spatial", False,
    )  # fmt: skip
    assert len(sched["bounds"]) - 1 == 3 and sched["split"] == "groups"
    few = kinds["few_groups_tile_split"].params
    assert (few["split"], len(few["bounds"]) - 1, few["ngroups"]) == ("tiles", 3, 1)
    assert kinds["csr_3x3"].kind == "csr_conv"
    neon = kernel_of(
        generate(build_conv(CONV_CASES["3x3_same_8x16"], rng)[0], resolve_target("aarch64"))
    )
    assert neon.params["inb"] and not kinds["3x3_same_8x16"].params["inb"]
    assert (
        "vld1q_f32(p)), m)"
        in generate(  # the in-bounds masked load is emitted for NEON
            build_conv(CONV_CASES["3x3_same_8x16"], rng)[0], resolve_target("aarch64")
        ).source
    )
    assert kinds["nothing_kept"].params["entries"] == 0


def test_rle_shares_input_loads() -> None:
    """With RLE an entry loads each input vector once for all R rows; without, once per row."""
    rng = np.random.default_rng(0)
    on = ConvCase(knobs=(("order", "stripe"), ("rle", True), ("rows", 4), ("tile", 16)))
    off = replace(on, knobs=(("order", "stripe"), ("rle", False), ("rows", 4), ("tile", 16)))
    counts = []
    for case in (on, off):
        module = build_conv(case, rng)[0]
        set_knobs(module, "host-avx512", 1, "bcr", case.knobs)
        src = generate(module, resolve_target("host-avx512")).source
        counts.append(src.count("gv_load(xp + "))
    # full-tile loop bodies: 1 vector per entry with RLE, 4 (one per row) without
    assert counts[1] == 4 * counts[0] > 0


def test_int32_index_blobs() -> None:
    """Offsets and lists travel as int32 blobs and typed kernel arguments."""
    rng = np.random.default_rng(0)
    gen = generate(build_conv(CONV_CASES["3x3_same_8x16"], rng)[0], resolve_target("host"))
    kernel = kernel_of(gen)
    ctypes = {name: ref.ctype for name, ref in kernel.inputs}
    assert ctypes["off"] == ctypes["seg"] == ctypes["orow"] == ctypes["mask"] == "int32_t"
    assert ctypes["wv"] == ctypes["x"] == "float"
    assert "const int32_t *restrict off" in gen.source
    assert "(const int32_t *)m_->w[" in gen.source


def test_generation_is_deterministic() -> None:
    sources = []
    for _ in range(2):
        rng = np.random.default_rng(7)
        gen = generate(build_conv(CONV_CASES["dilated_groups"], rng)[0], resolve_target("aarch64"))
        sources.append((gen.source, gen.blob))
    assert sources[0] == sources[1]


def blob_entry(gen: GeneratedModel, kernel, name: str) -> np.ndarray:
    """The payload of a kernel's blob argument, read back from the GRIMCWB1 bytes."""
    ref = dict(kernel.inputs)[name]
    offset, nbytes = np.frombuffer(gen.blob, dtype="<u8", count=2, offset=32 + 16 * ref.index)
    dtype = "<i4" if ref.ctype == "int32_t" else "<f4"
    return np.frombuffer(gen.blob, dtype=dtype, count=int(nbytes) // 4, offset=int(offset))


def test_permutation_folds_into_stores() -> None:
    """Register group rows store to output channel perm[i]: no copy of the activations."""
    rng = np.random.default_rng(3)
    case = ConvCase(cout=13, sparsity=Sparsity((8, 8), 0.5, permute=True))
    store = WeightStore()
    w, perm = bcr_weight(rng, 13, 8 * 9, case.sparsity)
    prefix, enc = packed_weight(store, [(w, perm)], (8, 8), None)
    module = module_of(
        store, (1, 8, 9, 11), (1, 13, 9, 11),
        lambda x, b, r: Conv2dOp(x, prefix, enc, b, (1, 13, 9, 11), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
        False, None,
    )  # fmt: skip
    set_knobs(module, "host", 1, "bcr", (("rows", 4), ("tile", 16)))
    gen = generate(module, resolve_target("host"))
    orow = blob_entry(gen, kernel_of(gen), "orow")
    assert len(orow) == 16  # 4 register groups of 4 rows, the last one 3 rows short
    np.testing.assert_array_equal(orow[:13], perm)
    assert (orow[13:] == -1).all()


def test_hand_set_schedule_is_honoured(tmp_path: Path) -> None:
    """Every knob of the op's #sched.spmm, set by hand in the IR, reaches the kernel; results
    stay exact. (A tuner sets schedules the same way.)"""
    rng = np.random.default_rng(5)
    case = CONV_CASES["3x3_same_8x16"]
    module, w, b = build_conv(case, rng)
    select_schedules(module, resolve_target("host-avx512"))
    (op,) = [op for op in module.walk() if isinstance(op, Conv2dOp)]
    chosen = op.attributes["sched"]
    assert isinstance(chosen, SpmmSchedule)
    knobs = {"pf": 3, "tblock": 2, "nv": 1, "rows": 2, "order": "spatial", "rle": False,
             "unroll": 3, "threads": 2, "split": "tiles"}  # fmt: skip
    assert any(chosen.knobs()[k] != v for k, v in knobs.items())
    op.attributes["sched"] = chosen.replace(**knobs)
    gen = generate(module, resolve_target("host-avx512"))
    p = kernel_of(gen).params
    assert {k: p[k] for k in knobs} == knobs
    x = rng.standard_normal((case.n, case.cin, case.h, case.w)).astype(np.float32)
    got = run(gen, [x], tmp_path, "host-avx512", 1)
    np.testing.assert_allclose(got, conv_reference(case, x, w, b), rtol=RTOL, atol=ATOL)


def test_gemm_stores_unpermuted_row_blocks_by_vectors(tmp_path: Path) -> None:
    """bcr_spmm in gemm mode transposes whole blocks of consecutive output rows in
    registers; blocks past M (padding rows) and permuted blocks go row by row. Both
    kinds are in this case, whose results match the reference."""
    gen = check_matmul(MATMUL_CASES["gemm_contiguous_rows"], tmp_path, "host-avx512", 1)
    p = kernel_of(gen).params
    assert kernel_of(gen).kind == "bcr_spmm" and 16 % p["rows"] == 0
    assert p["gblock"] == 16 // p["rows"] and p["contig"] == [1, 1]
    permuted = replace(MATMUL_CASES["gemm_contiguous_rows"], sparsity=Sparsity((8, 16), 0.5))
    assert 0 in kernel_of(check_matmul(permuted, tmp_path, "host-avx512", 1)).params["contig"]


def test_hand_set_gemv_gather_is_honoured(tmp_path: Path) -> None:
    """The GEMV's gather chunk is a #sched.gemv knob: a hand-set one (several passes
    over the 300-column lists) reaches the kernel with exact results; one that is not
    a multiple of the vector width is refused."""
    case = MATMUL_CASES["gemv"]
    gen = check_matmul(replace(case, knobs=(("gather", 16),)), tmp_path, "host", 1)
    assert kernel_of(gen).kind == "bcr_gemv" and kernel_of(gen).params["chunk"] == 16
    with pytest.raises(CodegenError, match="gather must be a multiple of the vector width 8"):
        check_matmul(replace(case, knobs=(("gather", 12),)), tmp_path, "host", 1)


def test_gemv_batch_tile_beyond_the_batch_is_refused(tmp_path: Path) -> None:
    """nb_tile larger than the batch (a tuner's candidate for one batch row) is one clear
    error, not C that fails to build (its full-tile group function went unused)."""
    with pytest.raises(CodegenError, match="nb_tile exceeds the 1 batch row"):
        check_matmul(replace(MATMUL_CASES["gemv"], knobs=(("nb_tile", 4),)), tmp_path, "host", 1)


def test_schedules_are_typed() -> None:
    """A knob a kernel lacks, a value out of range, or a schedule of the wrong kernel is an
    error naming the op, never silently ignored."""
    module, _, _ = build_conv(CONV_CASES["3x3_same_8x16"], np.random.default_rng(0))
    select_schedules(module, resolve_target("host"))
    (op,) = [op for op in module.walk() if isinstance(op, Conv2dOp)]
    sched = op.attributes["sched"]
    assert isinstance(sched, SpmmSchedule)
    with pytest.raises(VerifyException, match="unknown knob"):
        sched.replace(warp=4)
    with pytest.raises(VerifyException, match="order must be one of stripe, spatial"):
        sched.replace(order="zigzag")
    op.attributes["sched"] = GemvSchedule(rows=2, nb_tile=1, sets=1, gather=64, rle=True, threads=1)
    with pytest.raises(GrimcError, match=r"bcr.conv2d: attribute sched must be a #sched.spmm"):
        generate(module, resolve_target("host"))
    op.attributes["sched"] = sched.replace(split="chunks")
    with pytest.raises(CodegenError, match="a conv splits groups or tiles"):
        generate(module, resolve_target("host"))


def test_sparse_format_option_and_attribute() -> None:
    """generate(sparse_format=...) picks the family; an op's attribute overrides it."""
    rng = np.random.default_rng(0)
    module, _, _ = build_conv(CONV_CASES["3x3_same_8x16"], rng)
    assert kernel_of(generate(module, resolve_target("host"), sparse_format="csr")).kind == "csr_conv"
    assert kernel_of(generate(module, resolve_target("host"))).kind == "bcr_spmm"
    set_format(module, "bcr")
    assert kernel_of(generate(module, resolve_target("host"), sparse_format="csr")).kind == "bcr_spmm"
    set_format(module, "coo")
    with pytest.raises(GrimcError, match="unknown sparse format 'coo'"):
        generate(module, resolve_target("host"))


def test_missing_packed_arrays_are_reported() -> None:
    store = WeightStore()
    enc = EncodingAttr(matrix=(8, 72), block=(4, 8), keep=(4, 4), density=0.5)
    module = module_of(
        store, (1, 8, 6, 6), (1, 8, 6, 6),
        lambda x, b, r: Conv2dOp(x, "absent", enc, b, (1, 8, 6, 6), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
        False, None,
    )  # fmt: skip
    with pytest.raises(GrimcError, match="packed weight 'absent' is missing absent_vals"):
        generate(module, resolve_target("host"))


@settings(max_examples=200, deadline=None)
@given(
    costs=st.lists(st.integers(0, 1000), min_size=0, max_size=40),
    ntasks=st.integers(1, 8),
)
def test_balanced_bounds(costs: list[int], ntasks: int) -> None:
    bounds = balanced_bounds(costs, ntasks)
    assert bounds[0] == 0 and bounds[-1] == len(costs)
    assert all(a < b for a, b in zip(bounds, bounds[1:], strict=False)) or len(costs) == 0
    assert len(bounds) - 1 == max(1, min(ntasks, len(costs)))
    loads = [sum(costs[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]
    # contiguous split: no task exceeds the ideal share by more than one item
    assert max(loads) <= sum(costs) / (len(bounds) - 1) + max(costs, default=0) + 1


# --------------------------------------------------------------------------
# end to end: ONNX with pruned weights -> bcr-detect -> kernels vs onnxruntime


def pruned_model(seed: int = 0) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """Conv(3x3, 8x16-block column pruned) + Relu -> Flatten -> Gemm(column pruned)."""
    rng = np.random.default_rng(seed)
    wc, _ = bcr_weight(rng, 32, 32 * 9, Sparsity((8, 16), 0.75, permute=False))
    wg, _ = bcr_weight(rng, 40, 32 * 6 * 6, Sparsity((8, 16), 0.75, permute=False))
    inits = [
        helper.make_tensor("Wc", TensorProto.FLOAT, (32, 32, 3, 3), wc.ravel()),
        helper.make_tensor("Bc", TensorProto.FLOAT, (32,), rng.standard_normal(32)),
        helper.make_tensor("Wg", TensorProto.FLOAT, (40, 32 * 36), wg.ravel()),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "Wc", "Bc"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Flatten", ["r"], ["f"]),
        helper.make_node("Gemm", ["f", "Wg"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "pruned", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 40])], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model, {"x": rng.standard_normal((1, 32, 6, 6)).astype(np.float32)}


@pytest.mark.parametrize("target", HOST_TARGETS)
def test_detected_model_matches_onnxruntime(target: str, tmp_path: Path) -> None:
    model, feeds = pruned_model()
    gen = compile_model(model, target=target, passes=list(BCR_PIPELINE))
    assert {k.kind for k in gen.kernels} >= {"bcr_spmm", "bcr_gemv"}
    with HostModel.build(gen, tmp_path, target=target) as compiled:
        (got,) = compiled.run([feeds["x"]])
    (want,) = onnxruntime_reference(model.SerializeToString(), [feeds["x"]])
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
