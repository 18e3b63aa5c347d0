"""The BCR kernel test cases, shared by the CPU kernel tests (tests/kernels/test_bcr_kernels.py)
and the OpenCL ones (tests/opencl): random BCR weights, one-op bcr modules, float64
references, named cases and hypothesis strategies.

IR is built directly with the bcr op builders: a random BCR weight (per block
random kept rows and columns, some blocks empty, a random row permutation) is
packed with `BCRMatrix.from_dense` + `pack` into a WeightStore with
`add_packed`, exactly what the bcr-detect pass stores. `conv_case` and
`matmul_case` give a case's module, inputs and reference; each target's tests
choose the schedules, generate and run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Block, Region

from grimc.bcr_format import BCRMatrix, pack
from grimc.dialects.bcr import Conv2dOp, EncodingAttr, MatMulOp, ScheduleAttr
from grimc.dialects.graph import ActivationAttr, WeightOp, tensor
from grimc.weights import WeightStore, attach
from tests.kernels.convgeom import ConvGeometry

BCR_ONLY = st.just("bcr")
ACTS = {
    None: lambda y: y,
    "relu": lambda y: np.maximum(y, 0.0),
    "clip": lambda y: np.clip(y, 0.0, 6.0),
    "sigmoid": lambda y: 1.0 / (1.0 + np.exp(-y)),
}

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



def set_format(module: ModuleOp, fmt: str) -> None:
    for op in module.walk():
        if isinstance(op, Conv2dOp | MatMulOp):
            op.attributes["sparse_format"] = StringAttr(fmt)


@dataclass(frozen=True)
class ConvCase(ConvGeometry):
    """A sparse conv case: its geometry (9x11 input by default, so rows and columns
    differ), the weight's sparsity and the schedule, knobs and format to generate."""

    h: int = 9
    w: int = 11
    sparsity: Sparsity = Sparsity()
    schedule: ScheduleAttr | None = None
    knobs: Knobs = ()
    fmt: str = "bcr"


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


Case = tuple[ModuleOp, list[np.ndarray], np.ndarray]
"""A case's one-op module (no schedule chosen yet), its inputs and its float64 reference."""


def _finish(
    c: ConvCase | MatMulCase, rng: np.random.Generator, x: np.ndarray, want: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray]:
    """The inputs (x, then a random residual if the case adds one) and the reference
    with the residual and the activation applied."""
    inputs = [x]
    if c.residual:
        inputs.append(rng.standard_normal(want.shape).astype(np.float32))
        want = want + inputs[1]
    return inputs, ACTS[c.act](want)


def conv_case(c: ConvCase, rng: np.random.Generator) -> Case:
    module, w, b = build_conv(c, rng)
    x = rng.standard_normal((c.n, c.cin, c.h, c.w)).astype(np.float32)
    return (module, *_finish(c, rng, x, conv_reference(c, x, w, b)))


def matmul_case(c: MatMulCase, rng: np.random.Generator) -> Case:
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
    x = rng.standard_normal((*c.lead, c.k)).astype(np.float32)
    want = x.astype(np.float64) @ w.T.astype(np.float64)
    return (module, *_finish(c, rng, x, want if bias is None else want + bias))


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
