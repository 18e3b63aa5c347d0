"""Sparse kernels for bcr.conv2d / bcr.matmul (grimc/emit/kernels/bcr*.py, csr.py) against numpy.

IR is built directly with the bcr op builders: a random BCR weight (per block
random kept rows and columns, some blocks empty, a random row permutation) is
packed with `BCRMatrix.from_dense` + `pack` into a WeightStore with
`add_packed`, exactly what the bcr-detect pass stores. The generated kernel
runs in-process on host (AVX2) and host-avx512, and under qemu on aarch64
(fewer examples); the reference is numpy in float64. One end-to-end test goes
ONNX -> graph dialect -> bcr-detect/reorder/rle -> kernels vs onnxruntime.

Tolerance rtol 1e-4, atol 1e-5: inputs are N(0, 1) and weights N(0, 1) /
sqrt(fan_in), so outputs are O(1); the kernels sum a row's products in list
order in fp32, at most a few hundred terms here, whose rounding stays far
inside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Block, Region
from xdsl.utils.exceptions import VerifyException

from grimc.bcr_format import BCRMatrix, pack
from grimc.dialects.bcr import Conv2dOp, EncodingAttr, MatMulOp, ScheduleAttr
from grimc.dialects.graph import ActivationAttr, WeightOp, tensor
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
from grimc.weights import WeightStore, attach
from tests.kernels.scheduled import generate

RTOL, ATOL = 1e-4, 1e-5
HOST_TARGETS = ["host", "host-avx512"]
BCR_ONLY = st.just("bcr")
ACTS = {
    None: lambda y: y,
    "relu": lambda y: np.maximum(y, 0.0),
    "clip": lambda y: np.clip(y, 0.0, 6.0),
    "sigmoid": lambda y: 1.0 / (1.0 + np.exp(-y)),
}
SETTINGS = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)

# --------------------------------------------------------------------------
# random BCR weights


@dataclass(frozen=True)
class Sparsity:
    """How a random BCR weight is drawn: block shape, kept rates, empty blocks, reorder."""

    block: tuple[int, int] = (4, 8)
    col_rate: float = 0.5  # fraction of block columns pruned
    row_rate: float = 0.0  # fraction of block rows pruned
    empty: float = 0.0  # probability that a block keeps nothing
    permute: bool = True


def bcr_weight(
    rng: np.random.Generator, m: int, k: int, sp: Sparsity
) -> tuple[np.ndarray, np.ndarray]:
    """(W in original row order, perm) whose W[perm] has BCR structure on sp.block."""
    grid = rng.standard_normal((m, k)) / math.sqrt(k)
    keep = np.zeros((m, k), dtype=bool)
    br, bc = sp.block
    for r0 in range(0, m, br):
        for c0 in range(0, k, bc):
            rows, cols = np.arange(r0, min(r0 + br, m)), np.arange(c0, min(c0 + bc, k))
            kr = round(len(rows) * (1 - sp.row_rate))
            kc = round(len(cols) * (1 - sp.col_rate))
            if rng.random() < sp.empty or kr == 0 or kc == 0:
                continue
            keep[
                np.ix_(rng.choice(rows, kr, replace=False), rng.choice(cols, kc, replace=False))
            ] = True
    grid = np.where(keep, grid, 0.0).astype(np.float32)
    perm = rng.permutation(m) if sp.permute else np.arange(m)
    w = np.empty_like(grid)
    w[perm] = grid
    return w, perm


def packed_weight(
    store: WeightStore,
    weights: list[tuple[np.ndarray, np.ndarray]],
    block: tuple[int, int],
    schedule: ScheduleAttr | None,
) -> tuple[str, EncodingAttr]:
    """Pack G matrices (one per group) into the store; their key prefix and encoding."""
    mats = [BCRMatrix.from_dense(w, block, perm) for w, perm in weights]
    return store.add_packed("w", pack(mats)), EncodingAttr.describe(mats, schedule)


def schedules() -> st.SearchStrategy[ScheduleAttr | None]:
    """bcr-reorder's record: none, or rows balanced for 1-3 threads (the kernel's tasks)."""
    return st.one_of(st.none(), st.builds(ScheduleAttr, threads=st.integers(1, 3)))


def knob_sets() -> st.SearchStrategy[Knobs]:
    """None (the cost model's schedule) or knobs set by hand, which the lowering must honour."""
    explicit = st.fixed_dictionaries(
        {
            "rle": st.booleans(),
            "rows": st.integers(1, 8),
            "tile": st.integers(1, 64),
            "unroll": st.integers(1, 3),
            "order": st.sampled_from(["stripe", "spatial"]),
        }
    ).map(lambda knobs: tuple(sorted(knobs.items())))
    return st.one_of(st.just(()), explicit)


Knobs = tuple[tuple[str, object], ...]
"""Schedule knobs set by hand, as a tuner would: `tile` (pixels or batch rows)
becomes `nv` vectors of the target; knobs a kernel lacks are ignored."""


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


@st.composite
def sparsities(draw: st.DrawFn) -> Sparsity:
    return Sparsity(
        block=(draw(st.sampled_from([1, 2, 3, 4, 8])), draw(st.sampled_from([1, 2, 4, 5, 8, 16]))),
        col_rate=draw(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])),
        row_rate=draw(st.sampled_from([0.0, 0.5, 1.0])),
        empty=draw(st.sampled_from([0.0, 0.3])),
        permute=draw(st.booleans()),
    )


# --------------------------------------------------------------------------
# building and running one op


def module_of(
    store: WeightStore,
    x_shape: tuple[int, ...],
    y_shape: tuple[int, ...],
    make_op,
    residual: bool,
    bias: np.ndarray | None,
) -> ModuleOp:
    """func @main(x[, residual]) -> y with one bcr op built by make_op(x, bias, residual)."""
    args = [tensor(x_shape)] + ([tensor(y_shape)] if residual else [])
    block = Block(arg_types=args)
    ops = []
    b = None
    if bias is not None:
        key = store.add("bias", bias)
        ops.append(weight := WeightOp(key, bias.shape))
        b = weight.result
    op = make_op(block.args[0], b, block.args[1] if residual else None)
    ops += [op, ReturnOp(op.y)]
    block.add_ops(ops)
    module = ModuleOp([FuncOp("main", (args, [tensor(y_shape)]), Region(block))])
    attach(module, store)
    module.verify()
    return module


def run(gen: GeneratedModel, inputs: list[np.ndarray], workdir: Path, target: str, threads: int):
    if target == "aarch64":
        return ExeModel.build(gen, workdir, target=target, threads=threads).run(inputs)[0]
    with HostModel.build(gen, workdir, threads=threads, target=target) as model:
        return model.run(inputs)[0]


def set_format(module: ModuleOp, fmt: str) -> None:
    for op in module.walk():
        if isinstance(op, Conv2dOp | MatMulOp):
            op.attributes["sparse_format"] = StringAttr(fmt)


@dataclass(frozen=True)
class ConvCase:
    n: int = 1
    cin: int = 8
    h: int = 9
    w: int = 11
    cout: int = 8
    kh: int = 3
    kw: int = 3
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (1, 1, 1, 1)
    dil: tuple[int, int] = (1, 1)
    group: int = 1
    bias: bool = True
    residual: bool = False
    act: str | None = None
    sparsity: Sparsity = Sparsity()
    schedule: ScheduleAttr | None = None
    knobs: Knobs = ()
    fmt: str = "bcr"

    @property
    def out_hw(self) -> tuple[int, int]:
        (sh, sw), (dh, dw), (pt, pl, pb, pr) = self.stride, self.dil, self.pads
        oh = (self.h + pt + pb - dh * (self.kh - 1) - 1) // sh + 1
        ow = (self.w + pl + pr - dw * (self.kw - 1) - 1) // sw + 1
        return oh, ow


def conv_reference(c: ConvCase, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """float64 grouped, strided, dilated, padded conv by shifted slices."""
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = c.stride, c.dil, c.pads
    oh, ow = c.out_hw
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    y = np.zeros((c.n, c.cout, oh, ow))
    cg, mg = c.cin // c.group, c.cout // c.group
    for g in range(c.group):
        for r in range(c.kh):
            for s in range(c.kw):
                patch = xp[:, g * cg : (g + 1) * cg, r * dh : r * dh + sh * (oh - 1) + 1 : sh,
                           s * dw : s * dw + sw * (ow - 1) + 1 : sw]  # fmt: skip
                y[:, g * mg : (g + 1) * mg] += np.einsum(
                    "nchw,oc->nohw", patch, w[g * mg : (g + 1) * mg, :, r, s].astype(np.float64)
                )
    return y if b is None else y + b[None, :, None, None]


def build_conv(
    c: ConvCase, rng: np.random.Generator
) -> tuple[ModuleOp, np.ndarray, np.ndarray | None]:
    store = WeightStore()
    mg, kg = c.cout // c.group, c.cin // c.group * c.kh * c.kw
    weights = [bcr_weight(rng, mg, kg, c.sparsity) for _ in range(c.group)]
    prefix, enc = packed_weight(store, weights, c.sparsity.block, c.schedule)
    bias = rng.standard_normal(c.cout).astype(np.float32) if c.bias else None
    y_shape = (c.n, c.cout, *c.out_hw)

    def make(x, b, res):
        act = (
            None if c.act is None else ActivationAttr(c.act, (0.0, 6.0) if c.act == "clip" else ())
        )
        return Conv2dOp(x, prefix, enc, b, y_shape, (c.kh, c.kw), c.stride, c.pads, c.dil, c.group,
                        residual=res, act=act)  # fmt: skip

    module = module_of(store, (c.n, c.cin, c.h, c.w), y_shape, make, c.residual, bias)
    if c.fmt != "bcr":
        set_format(module, c.fmt)
    w4 = np.concatenate([w for w, _ in weights]).reshape(c.cout, c.cin // c.group, c.kh, c.kw)
    return module, w4, bias


def check_conv(
    c: ConvCase, workdir: Path, target: str, threads: int, seed: int = 0
) -> GeneratedModel:
    rng = np.random.default_rng(seed)
    module, w, b = build_conv(c, rng)
    set_knobs(module, target, threads, c.fmt, c.knobs)
    gen = generate(module, resolve_target(target), threads=threads)
    x = rng.standard_normal((c.n, c.cin, c.h, c.w)).astype(np.float32)
    inputs = [x]
    want = conv_reference(c, x, w, b)
    if c.residual:
        inputs.append(rng.standard_normal(want.shape).astype(np.float32))
        want = want + inputs[1]
    got = run(gen, inputs, workdir, target, threads)
    np.testing.assert_allclose(got, ACTS[c.act](want), rtol=RTOL, atol=ATOL)
    return gen


@dataclass(frozen=True)
class MatMulCase:
    lead: tuple[int, ...] = (1,)
    k: int = 37
    m: int = 21
    bias: bool = True
    residual: bool = False
    act: str | None = None
    sparsity: Sparsity = Sparsity()
    schedule: ScheduleAttr | None = None
    knobs: Knobs = ()
    fmt: str = "bcr"


def check_matmul(
    c: MatMulCase, workdir: Path, target: str, threads: int, seed: int = 0
) -> GeneratedModel:
    rng = np.random.default_rng(seed)
    store = WeightStore()
    w, perm = bcr_weight(rng, c.m, c.k, c.sparsity)
    prefix, enc = packed_weight(store, [(w, perm)], c.sparsity.block, c.schedule)
    bias = rng.standard_normal(c.m).astype(np.float32) if c.bias else None
    act = None if c.act is None else ActivationAttr(c.act, (0.0, 6.0) if c.act == "clip" else ())
    module = module_of(
        store, (*c.lead, c.k), (*c.lead, c.m),
        lambda x, b, res: MatMulOp(x, prefix, enc, b, residual=res, act=act), c.residual, bias,
    )  # fmt: skip
    if c.fmt != "bcr":
        set_format(module, c.fmt)
    set_knobs(module, target, threads, c.fmt, c.knobs)
    gen = generate(module, resolve_target(target), threads=threads)
    x = rng.standard_normal((*c.lead, c.k)).astype(np.float32)
    inputs = [x]
    want = x.astype(np.float64) @ w.T.astype(np.float64)
    if bias is not None:
        want = want + bias
    if c.residual:
        inputs.append(rng.standard_normal(want.shape).astype(np.float32))
        want = want + inputs[1]
    got = run(gen, inputs, workdir, target, threads)
    np.testing.assert_allclose(got, ACTS[c.act](want), rtol=RTOL, atol=ATOL)
    return gen


# --------------------------------------------------------------------------
# random cases


@st.composite
def conv_cases(draw: st.DrawFn, fmt: st.SearchStrategy[str] = BCR_ONLY) -> ConvCase:
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
    group = draw(st.sampled_from([1, 1, 2, 3]))
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - pads[0] - pads[2]), 14))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - pads[1] - pads[3]), 23))
    return ConvCase(
        n=draw(st.integers(1, 2)), cin=group * draw(st.integers(1, 6)), h=h, w=w,
        cout=group * draw(st.integers(1, 12)), kh=kh, kw=kw, stride=(sh, sw),
        pads=pads, dil=(dh, dw), group=group,  # type: ignore[arg-type]
        bias=draw(st.booleans()), residual=draw(st.booleans()),
        act=draw(st.sampled_from(list(ACTS))), sparsity=draw(sparsities()),
        schedule=draw(schedules()), knobs=draw(knob_sets()), fmt=draw(fmt),
    )  # fmt: skip


@st.composite
def matmul_cases(draw: st.DrawFn, fmt: st.SearchStrategy[str] = BCR_ONLY) -> MatMulCase:
    lead = draw(st.sampled_from([(1,), (2,), (3,), (5,), (2, 3), (37,), (70,), (4, 33)]))
    return MatMulCase(
        lead=lead, k=draw(st.integers(1, 80)), m=draw(st.integers(1, 40)),
        bias=draw(st.booleans()), residual=draw(st.booleans()),
        act=draw(st.sampled_from(list(ACTS))), sparsity=draw(sparsities()),
        schedule=draw(schedules()), knobs=draw(knob_sets()), fmt=draw(fmt),
    )  # fmt: skip


@settings(max_examples=40, **SETTINGS)
@given(c=conv_cases(), target=st.sampled_from(HOST_TARGETS), threads=st.integers(1, 2))
def test_bcr_conv_random(c: ConvCase, target: str, threads: int, tmp_path_factory) -> None:
    check_conv(c, tmp_path_factory.mktemp("bcr_conv"), target, threads)


@settings(max_examples=40, **SETTINGS)
@given(c=matmul_cases(), target=st.sampled_from(HOST_TARGETS), threads=st.integers(1, 2))
def test_bcr_matmul_random(c: MatMulCase, target: str, threads: int, tmp_path_factory) -> None:
    check_matmul(c, tmp_path_factory.mktemp("bcr_mm"), target, threads)


@settings(max_examples=15, **SETTINGS)
@given(
    c=conv_cases(st.just("csr")), target=st.sampled_from(HOST_TARGETS), threads=st.integers(1, 2)
)
def test_csr_conv_random(c: ConvCase, target: str, threads: int, tmp_path_factory) -> None:
    gen = check_conv(c, tmp_path_factory.mktemp("csr_conv"), target, threads)
    assert gen.kernels[0].kind == "csr_conv"


@settings(max_examples=15, **SETTINGS)
@given(
    c=matmul_cases(st.just("csr")), target=st.sampled_from(HOST_TARGETS), threads=st.integers(1, 2)
)
def test_csr_matmul_random(c: MatMulCase, target: str, threads: int, tmp_path_factory) -> None:
    gen = check_matmul(c, tmp_path_factory.mktemp("csr_mm"), target, threads)
    assert gen.kernels[0].kind == "csr_matmul"


@settings(max_examples=5, **SETTINGS)
@given(c=conv_cases(st.sampled_from(["bcr", "bcr", "csr"])), threads=st.integers(1, 2))
def test_conv_aarch64_random(c: ConvCase, threads: int, tmp_path_factory) -> None:
    check_conv(c, tmp_path_factory.mktemp("arm_conv"), "aarch64", threads)


@settings(max_examples=5, **SETTINGS)
@given(c=matmul_cases(st.sampled_from(["bcr", "bcr", "csr"])), threads=st.integers(1, 2))
def test_matmul_aarch64_random(c: MatMulCase, threads: int, tmp_path_factory) -> None:
    check_matmul(c, tmp_path_factory.mktemp("arm_mm"), "aarch64", threads)


# --------------------------------------------------------------------------
# named cases: every kernel path at least once, on every target

CONV_CASES = {
    "3x3_same_8x16": ConvCase(cin=16, cout=16, h=10, w=10, sparsity=Sparsity((8, 16), 0.5)),
    "3x3_stride2_asym": ConvCase(stride=(2, 2), pads=(0, 1, 2, 0), residual=True, act="relu"),
    "valid_rows_mode": ConvCase(pads=(0, 0, 0, 0), h=7, w=13, act="clip"),
    "1x1_unmasked": ConvCase(kh=1, kw=1, pads=(0, 0, 0, 0), h=4, w=8, sparsity=Sparsity((8, 4))),
    "dilated_groups": ConvCase(cin=6, cout=9, dil=(2, 2), pads=(2, 2, 2, 2), group=3),
    "row_pruned_batch2": ConvCase(n=2, sparsity=Sparsity((8, 8), 0.5, 0.5)),
    "nothing_kept": ConvCase(sparsity=Sparsity((4, 8), 1.0), residual=True, act="sigmoid"),
    "everything_kept": ConvCase(sparsity=Sparsity((4, 8), 0.0, 0.0, permute=False)),
    "rle_off_spatial_threads": ConvCase(
        cin=12,
        cout=24,
        h=12,
        w=12,
        schedule=ScheduleAttr(threads=3),
        knobs=(("order", "spatial"), ("rle", False), ("rows", 5), ("tile", 20), ("unroll", 3)),
    ),  # fmt: skip
    "few_groups_tile_split": ConvCase(
        cout=4, h=12, w=12, schedule=ScheduleAttr(threads=3), knobs=(("rows", 4), ("tile", 16))
    ),
    "csr_3x3": ConvCase(stride=(2, 1), pads=(1, 0, 1, 2), residual=True, fmt="csr"),
    "1x1_stride2_flat_after_split": ConvCase(
        kh=1, kw=1, pads=(0, 0, 0, 0), stride=(2, 2), h=9, w=12, sparsity=Sparsity((8, 4))
    ),
    "7x7_stride2_stem": ConvCase(
        n=2, cin=3, cout=16, kh=7, kw=7, h=19, w=17, stride=(2, 2), pads=(3, 3, 3, 3)
    ),
    "stride3x2_dilated_groups": ConvCase(
        cin=6, cout=9, h=17, w=15, stride=(3, 2), dil=(2, 3), pads=(2, 1, 0, 3), group=3,
        residual=True, schedule=ScheduleAttr(threads=3),
    ),  # fmt: skip
}

MATMUL_CASES = {
    "gemv": MatMulCase(k=300, m=50, sparsity=Sparsity((8, 16), 0.75)),
    "gemv_batch5_relu": MatMulCase(lead=(5,), residual=True, act="relu"),
    "gemm_batched": MatMulCase(lead=(4, 33), k=40, m=24, sparsity=Sparsity((4, 4), 0.5, 0.25)),
    "gemm_threads_rle_off": MatMulCase(
        lead=(70,), k=50, m=30, schedule=ScheduleAttr(threads=2),
        knobs=(("rle", False), ("rows", 3), ("tile", 40)),
    ),
    # unpermuted rows: whole blocks of output rows are stored by register transposes
    # (bias, residual and activation on vectors); a partial last block and a partial
    # last batch tile row by row; K = 70 leaves a tail column block of the input transpose
    "gemm_contiguous_rows": MatMulCase(
        lead=(2, 45), k=70, m=40, residual=True, act="sigmoid",
        sparsity=Sparsity((8, 16), 0.5, permute=False),
    ),
    "nothing_kept": MatMulCase(lead=(3,), sparsity=Sparsity((4, 8), 1.0), act="sigmoid"),
    "csr": MatMulCase(lead=(6,), residual=True, fmt="csr"),
}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("target", [*HOST_TARGETS, "generic"])
@pytest.mark.parametrize("name", CONV_CASES)
def test_conv_cases(name: str, target: str, threads: int, tmp_path: Path) -> None:
    check_conv(CONV_CASES[name], tmp_path, target, threads)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("target", [*HOST_TARGETS, "generic"])
@pytest.mark.parametrize("name", MATMUL_CASES)
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
    (want,) = ort.InferenceSession(model.SerializeToString()).run(None, feeds)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
