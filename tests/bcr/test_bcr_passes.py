"""The BCR passes (bcr-detect, bcr-reorder, schedule-select on BCR ops) and `grimc inspect`.

Weights are pruned by hand with numpy here (`plant`), never by grimc, so that
detection is tested on zeros grimc did not make. Numerics: the packed weights
are decoded with `unpack` and the inverse row permutation and compared with
the dense weights exactly (the passes only move values; gemm's alpha is folded
in float64 and rounded once, the reference does the same).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser
from xdsl.passes import PassPipeline
from xdsl.printer import Printer

from grimc.bcr_format import BCRMatrix, pack, store_keys, unpack
from grimc.dialects import bcr, graph
from grimc.dialects.sched import GemvSchedule, SpmmSchedule
from grimc.errors import GrimcError
from grimc.pipeline import BCR_PIPELINE, GRAPH_PIPELINE, PipelineRunner
from grimc.target import resolve_target
from grimc.transforms._bcr_utils import (
    bcr_ops,
    decode_packed,
    encoding_of,
    prefix_of,
    weight_refs,
)
from grimc.transforms.bcr_detect import DetectOptions, choose_block, detect
from grimc.transforms.bcr_reorder import reorder_module, stripe_stats
from grimc.transforms.schedule_select import loads_per_fma, op_load_counts, select_schedules
from grimc.universe import PASSES, make_context
from grimc.weights import WeightStore, attach, store_for
from grimc.zoo import gru as zoo_gru
from grimc.zoo import small_cnn
from tests.conftest import run_tool

# --------------------------------------------------------------------------
# hand pruning and IR helpers


def plant(
    rng: np.random.Generator, w: np.ndarray, block: tuple[int, int], keep: tuple[int, int]
) -> np.ndarray:
    """Keep `keep` random rows x columns in every `block` of 2-D `w` (BCR by hand)."""
    out = np.zeros_like(w)
    for r0 in range(0, w.shape[0], block[0]):
        for c0 in range(0, w.shape[1], block[1]):
            rows = np.arange(r0, min(r0 + block[0], w.shape[0]))
            cols = np.arange(c0, min(c0 + block[1], w.shape[1]))
            rs = rng.choice(rows, min(keep[0], len(rows)), replace=False)
            cs = rng.choice(cols, min(keep[1], len(cols)), replace=False)
            out[np.ix_(rs, cs)] = w[np.ix_(rs, cs)]
    return out


def normal(rng: np.random.Generator, *shape: int) -> np.ndarray:
    w = rng.standard_normal(shape).astype(np.float32)
    return np.where(w == 0, np.float32(1), w)


def planted(
    rng: np.random.Generator, shape: tuple[int, int], block: tuple[int, int], keep: tuple[int, int]
) -> np.ndarray:
    return plant(rng, normal(rng, *shape), block, keep)


def module_from(text: str, arrays: dict[str, np.ndarray]) -> ModuleOp:
    """Parse IR text and attach a weight store holding `arrays`."""
    module = Parser(make_context(), text).parse_module()
    attach(module, WeightStore(arrays))
    module.verify()
    return module


def tensor(shape: Sequence[int]) -> str:
    return f"tensor<{'x'.join(str(d) for d in shape)}xf32>"


def decode(module: ModuleOp, prefix: str, encoding: bcr.EncodingAttr) -> np.ndarray:
    """[G, M, K] dense matrices from the packed arrays: unpack, then undo the permutation."""
    store = store_for(module)
    arrays = {suffix: store[key] for suffix, key in store_keys(prefix).items()}
    m, k = encoding.matrix_shape
    out = []
    for mat in unpack(arrays, (m, k), encoding.block_shape):
        grid = np.zeros((m, k), dtype=np.float32)
        for blk in mat.iter_blocks():
            grid[np.ix_(blk.rows, blk.cols)] = blk.values
        dense = np.empty_like(grid)
        dense[np.asarray(mat.perm)] = grid  # grid row i is output row perm[i]
        out.append(dense)
    return np.stack(out)


def only(module: ModuleOp, cls: type) -> list:
    return [op for op in module.walk() if isinstance(op, cls)]


def run_bcr_passes(module: ModuleOp) -> None:
    PassPipeline.parse_spec(
        PASSES, "bcr-detect{min-weights=0},bcr-reorder{threads=2},schedule-select"
    ).apply(make_context(), module)
    module.verify()


# --------------------------------------------------------------------------
# bcr-detect: which structure, and when


BLOCK_CASES = [
    ((8, 16), (6, 4)),
    ((8, 16), (8, 3)),
    ((4, 16), (3, 4)),
    ((8, 8), (6, 3)),
    ((16, 32), (12, 8)),
    ((16, 16), (12, 4)),
    ((4, 4), (3, 2)),
]


@pytest.mark.parametrize(("block", "keep"), BLOCK_CASES)
@pytest.mark.parametrize("shape", [(37, 101), (64, 576)])
def test_detects_the_planted_block(
    shape: tuple[int, int], block: tuple[int, int], keep: tuple[int, int]
) -> None:
    rng = np.random.default_rng(hash((shape, block, keep)) % 2**32)
    w = planted(rng, shape, block, keep)
    choice = choose_block([w], DetectOptions())
    assert choice.best is not None, choice.reason
    assert choice.best.block == block
    assert choice.best.stored == np.count_nonzero(w)  # fill 1.0: no explicit zeros
    assert choice.best.compact_bytes == BCRMatrix.from_dense(w, block).total_bytes()


@pytest.mark.parametrize("density", [0.05, 0.1, 0.2, 0.3])
@pytest.mark.parametrize("shape", [(37, 101), (64, 576), (256, 256)])
def test_unstructured_sparsity_is_not_bcr(shape: tuple[int, int], density: float) -> None:
    rng = np.random.default_rng(7)
    w = np.where(rng.random(shape) < density, normal(rng, *shape), np.float32(0))
    choice = choose_block([w], DetectOptions())
    assert choice.best is None
    assert choice.reason.startswith("unstructured"), choice.reason
    # Every candidate stores many explicit zeros: none of them is a cheap BCR form.
    assert choice.cheapest is not None and choice.cheapest.fill < 0.8


def test_dense_and_half_dense_stay_dense() -> None:
    rng = np.random.default_rng(1)
    w = normal(rng, 64, 288)
    assert choose_block([w], DetectOptions()).reason == "density 1.00 > 0.5"
    half = planted(rng, (64, 288), (8, 16), (8, 9))  # BCR, but 56% dense
    choice = choose_block([half], DetectOptions())
    assert choice.best is None and "> 0.5" in choice.reason
    assert choose_block([half], DetectOptions(threshold=0.6)).best is not None


def test_detect_from_onnx_pruned_elsewhere_numerics_exact(tmp_path: Path) -> None:
    """A zoo CNN pruned by hand in its ONNX file: convs become bcr, weights decode exactly."""
    model = small_cnn()
    rng = np.random.default_rng(3)
    expected: dict[str, np.ndarray] = {}
    for init in model.graph.initializer:
        w = numpy_helper.to_array(init)
        if w.ndim == 4 and w.shape[1] > 1 and w.size >= 2048:
            pruned = planted(rng, (w.shape[0], w[0].size), (8, 16), (6, 4)).reshape(w.shape)
            init.CopyFrom(numpy_helper.from_array(pruned.astype(np.float32), init.name))
            expected[init.name] = pruned
    path = tmp_path / "pruned.onnx"
    onnx.save(model, path)
    from grimc.frontend import import_onnx

    module = import_onnx(str(path))
    PipelineRunner().run(module, list(GRAPH_PIPELINE))
    # BN folding scales each filter; the zeros (the structure) are what must survive.
    folded = {
        op.w.owner.key.data: store_for(module)[op.w.owner.key.data]
        for op in only(module, graph.ConvOp)
    }
    reports = detect(module)
    sparse = only(module, bcr.Conv2dOp)
    assert len(sparse) == len(expected) == 4
    assert {r.layer for r in reports if r.kernel == "bcr"} == {
        k for k, v in folded.items() if np.count_nonzero(v) < v.size
    }
    for op in sparse:
        key = op.weights.data.removesuffix("_bcr")
        w = folded[key]
        assert op.encoding.block_shape == (8, 16)
        got = decode(module, op.weights.data, op.encoding)
        np.testing.assert_array_equal(got.reshape(w.shape), w)


def test_depthwise_small_and_options() -> None:
    rng = np.random.default_rng(2)
    dw = plant(rng, normal(rng, 16, 9), (1, 9), (1, 2)).reshape(16, 1, 3, 3)
    conv = planted(rng, (16, 72), (8, 16), (8, 4)).reshape(16, 8, 3, 3)
    text = f"""
    func.func @main(%x: {tensor((1, 16, 8, 8))}, %z: {tensor((1, 8, 8, 8))}) -> ({tensor((1, 16, 8, 8))}, {tensor((1, 16, 8, 8))}) {{
      %w = graph.weight "dw" : {tensor(dw.shape)}
      %c = graph.weight "conv" : {tensor(conv.shape)}
      %y = graph.conv %x, %w {{strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 16 : i64}} : {tensor((1, 16, 8, 8))}, {tensor(dw.shape)} -> {tensor((1, 16, 8, 8))}
      %v = graph.conv %z, %c {{strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64}} : {tensor((1, 8, 8, 8))}, {tensor(conv.shape)} -> {tensor((1, 16, 8, 8))}
      func.return %y, %v : {tensor((1, 16, 8, 8))}, {tensor((1, 16, 8, 8))}
    }}"""
    module = module_from(text, {"dw": dw, "conv": conv})
    notes = {r.layer: r.note for r in detect(module)}
    assert notes == {"dw": "depthwise", "conv": "small (1152 < 2048 weights)"}
    assert not only(module, bcr.Conv2dOp)
    module = module_from(text, {"dw": dw, "conv": conv})
    detect(module, DetectOptions(depthwise=True, min_weights=0))
    encodings = sorted(op.encoding.num_groups for op in only(module, bcr.Conv2dOp))
    assert encodings == [1, 16]


def test_pass_options_from_pipeline_spec() -> None:
    spec = 'bcr-detect{threshold=0.4 blocks="8x16,4x16" min-fill=0.9 min-weights=0}'
    (pass_,) = PassPipeline.parse_spec(PASSES, spec).passes
    opts = pass_.options()  # type: ignore[attr-defined]
    assert opts == DetectOptions(threshold=0.4, blocks=((8, 16), (4, 16)), min_fill=0.9, min_weights=0)
    for bad in ['bcr-detect{blocks="8x0"}', "bcr-detect{threshold=2.0}", "bcr-reorder{window=0}"]:
        with pytest.raises(GrimcError):
            PassPipeline.parse_spec(PASSES, bad)


# --------------------------------------------------------------------------
# numerics of every rewritten op kind


def test_numerics_unchanged_conv_groups_gemm_gru() -> None:
    rng = np.random.default_rng(11)
    conv = np.concatenate(
        [planted(rng, (11, 27), (8, 16), (6, 4)) for _ in range(2)]
    ).reshape(22, 3, 3, 3)
    fc = planted(rng, (37, 101), (8, 16), (8, 3))  # Gemm B with transB = 1
    fc_c = normal(rng, 37)
    mm = planted(rng, (16, 40), (4, 16), (3, 4)).T.copy()  # MatMul B [K, N]
    gw = np.stack([planted(rng, (48, 20), (8, 16), (6, 4)) for _ in range(2)])
    gr = np.stack([planted(rng, (48, 16), (8, 16), (8, 4)) for _ in range(2)])
    gb = normal(rng, 2, 96)
    arrays = {"conv": conv, "fc": fc, "fc_c": fc_c, "mm": mm, "gw": gw, "gr": gr, "gb": gb}
    text = f"""
    func.func @main(%x: {tensor((1, 6, 9, 9))}, %a: {tensor((3, 101))}, %m: {tensor((2, 5, 40))}, %s: {tensor((4, 1, 20))})
        -> ({tensor((1, 22, 9, 9))}, {tensor((3, 37))}, {tensor((2, 5, 16))}, {tensor((4, 2, 1, 16))}) {{
      %cw = graph.weight "conv" : {tensor(conv.shape)}
      %y = graph.conv %x, %cw {{strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 2 : i64}} : {tensor((1, 6, 9, 9))}, {tensor(conv.shape)} -> {tensor((1, 22, 9, 9))}
      %fw = graph.weight "fc" : {tensor(fc.shape)}
      %fc = graph.weight "fc_c" : {tensor(fc_c.shape)}
      %g = graph.gemm %a, %fw bias(%fc : {tensor(fc_c.shape)}) {{alpha = 0.3 : f32, beta = 2.5 : f32, trans_a = 0 : i64, trans_b = 1 : i64}} : {tensor((3, 101))}, {tensor(fc.shape)} -> {tensor((3, 37))}
      %mw = graph.weight "mm" : {tensor(mm.shape)}
      %p = graph.matmul %m, %mw : {tensor((2, 5, 40))}, {tensor(mm.shape)} -> {tensor((2, 5, 16))}
      %w = graph.weight "gw" : {tensor(gw.shape)}
      %r = graph.weight "gr" : {tensor(gr.shape)}
      %b = graph.weight "gb" : {tensor(gb.shape)}
      %o, %oh = graph.gru %s, %w, %r b(%b : {tensor(gb.shape)}) {{hidden_size = 16 : i64, direction = "bidirectional", linear_before_reset = 0 : i64}} : {tensor((4, 1, 20))}, {tensor(gw.shape)}, {tensor(gr.shape)} -> {tensor((4, 2, 1, 16))}, {tensor((2, 1, 16))}
      func.return %y, %g, %p, %o : {tensor((1, 22, 9, 9))}, {tensor((3, 37))}, {tensor((2, 5, 16))}, {tensor((4, 2, 1, 16))}
    }}"""
    module = module_from(text, arrays)
    run_bcr_passes(module)
    store = store_for(module)

    (c,) = only(module, bcr.Conv2dOp)
    assert c.encoding.num_groups == 2 and c.encoding.matrix_shape == (11, 27)
    np.testing.assert_array_equal(decode(module, c.weights.data, c.encoding).reshape(conv.shape), conv)

    g, p = only(module, bcr.MatMulOp)
    alpha = float(np.float32(0.3))
    want = (fc.astype(np.float64) * alpha).astype(np.float32)
    np.testing.assert_array_equal(decode(module, g.weights.data, g.encoding)[0], want)
    bias = store[g.b.owner.key.data]
    np.testing.assert_array_equal(bias, (fc_c.astype(np.float64) * 2.5).astype(np.float32))
    # The rewritten gemm computes what ONNX Gemm does (float64 reference).
    a = rng.standard_normal((3, 101))
    ref = alpha * a @ fc.T.astype(np.float64) + 2.5 * fc_c
    got = a @ decode(module, g.weights.data, g.encoding)[0].T.astype(np.float64) + bias
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(decode(module, p.weights.data, p.encoding)[0], mm.T)

    (cell,) = only(module, bcr.GRUOp)
    np.testing.assert_array_equal(decode(module, cell.w_weights.data, cell.w_encoding), gw)
    np.testing.assert_array_equal(decode(module, cell.r_weights.data, cell.r_encoding), gr)
    assert cell.b is not None and cell.linear_before_reset.value.data == 0
    assert cell.direction.data == "bidirectional"
    assert not only(module, graph.ConvOp | graph.GemmOp | graph.MatMulOp | graph.GRUOp)


# --------------------------------------------------------------------------
# bcr-reorder


def packed_module(matrices: dict[str, np.ndarray], block: tuple[int, int]) -> ModuleOp:
    """One bcr.matmul per matrix, its weight packed as given (identity permutation)."""
    store: dict[str, np.ndarray] = {}
    lines, results = [], []
    for i, (prefix, w) in enumerate(matrices.items()):
        mat = BCRMatrix.from_dense(w, block)
        store.update({store_keys(prefix)[s]: v for s, v in pack([mat]).items()})
        enc = bcr.EncodingAttr.describe([mat])
        buf = io.StringIO()
        Printer(stream=buf).print_attribute(enc)
        m, k = w.shape
        lines.append(
            f'%y{i} = bcr.matmul %x{i} weights("{prefix}", {buf.getvalue()}) : '
            f"{tensor((4, k))} -> {tensor((4, m))}"
        )
        results.append((f"%y{i}", tensor((4, m)), f"%x{i}: {tensor((4, k))}"))
    args = ", ".join(r[2] for r in results)
    outs = ", ".join(r[1] for r in results)
    body = "\n".join(lines)
    ret = ", ".join(r[0] for r in results)
    text = f"func.func @main({args}) -> ({outs}) {{\n{body}\nfunc.return {ret} : {outs}\n}}"
    return module_from(text, store)


def test_reorder_regroups_shuffled_rows_exactly() -> None:
    rng = np.random.default_rng(5)
    w = planted(rng, (64, 288), (8, 16), (8, 4))
    shuffled = w[rng.permutation(64)]
    module = packed_module({"shuffled": shuffled}, (8, 16))
    (stats,) = reorder_module(module, threads=2)
    assert stats.kept
    assert stats.before.column_lists > 2 * stats.before.stripes
    assert stats.after.column_lists == stats.after.stripes == 8  # one list per stripe
    assert stats.after.compact_bytes < stats.before.compact_bytes
    assert stats.after.stored == np.count_nonzero(w)
    (op,) = only(module, bcr.MatMulOp)
    assert op.encoding.schedule.reorder.data == 1 and op.encoding.keep_counts == (8, 4)
    np.testing.assert_array_equal(decode(module, op.weights.data, op.encoding)[0], shuffled)
    module.verify()


def test_reorder_recovers_row_pruned_stripes() -> None:
    """Rows pruned per block (6 of 8 kept) differ, yet rows of one stripe share patterns."""
    rng = np.random.default_rng(13)
    w = planted(rng, (256, 576), (8, 16), (6, 4))
    shuffled = w[rng.permutation(256)]
    module = packed_module({"w": shuffled}, (8, 16))
    (stats,) = reorder_module(module)
    original = stripe_stats(BCRMatrix.from_dense(w, (8, 16)))
    assert stats.kept and stats.before.compact_bytes > 2 * original.compact_bytes
    assert stats.after.compact_bytes == original.compact_bytes
    assert stats.after.stored == np.count_nonzero(w)
    (op,) = only(module, bcr.MatMulOp)
    np.testing.assert_array_equal(decode(module, op.weights.data, op.encoding)[0], shuffled)


@pytest.mark.parametrize("seed", range(4))
def test_decode_packed_matches_unpack(seed: int) -> None:
    """The passes' vectorized decoder agrees with bcr_format.unpack, groups and perms included."""
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 40)), int(rng.integers(1, 70)))
    block = (int(rng.integers(1, 9)), int(rng.integers(1, 17)))
    mats = [
        BCRMatrix.from_dense(
            np.where(rng.random(shape) < 0.3, normal(rng, *shape), np.float32(0)),
            block,
            perm=rng.permutation(shape[0]),
        )
        for _ in range(int(rng.integers(1, 4)))
    ]
    store = WeightStore({store_keys("p")[s]: v for s, v in pack(mats).items()})
    packed = decode_packed(store, "p", bcr.EncodingAttr.describe(mats))
    for g, mat in enumerate(mats):
        np.testing.assert_array_equal(packed.dense(g), mat.to_dense())
        np.testing.assert_array_equal(packed.perms[g], mat.perm)


def test_reorder_balances_threads() -> None:
    """Heavy stripes first: the contiguous thread split is uneven until reordered."""
    rng = np.random.default_rng(6)
    heavy = planted(rng, (32, 128), (8, 16), (8, 8))
    light = planted(rng, (32, 128), (8, 16), (8, 2))
    w = np.concatenate([heavy, light])
    module = packed_module({"w": w}, (8, 16))
    (stats,) = reorder_module(module, threads=2)
    assert stats.before.imbalance > 1.15
    assert stats.after.imbalance < stats.before.imbalance
    assert stats.after.compact_bytes == stats.before.compact_bytes
    (op,) = only(module, bcr.MatMulOp)
    assert op.encoding.schedule.threads.data == 2
    np.testing.assert_array_equal(decode(module, op.weights.data, op.encoding)[0], w)


def test_reorder_keeps_a_good_order() -> None:
    rng = np.random.default_rng(8)
    w = planted(rng, (37, 101), (8, 16), (6, 4))
    module = packed_module({"w": w}, (8, 16))
    before = {s: store_for(module)[k].copy() for s, k in store_keys("w").items()}
    (stats,) = reorder_module(module)
    (op,) = only(module, bcr.MatMulOp)
    assert not stats.kept and op.weights.data == "w"
    assert stats.after == stats.before == stripe_stats(BCRMatrix.from_dense(w, (8, 16)))
    for suffix, key in store_keys("w").items():
        np.testing.assert_array_equal(store_for(module)[key], before[suffix])


def test_reorder_stats_printout(capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(5)
    w = planted(rng, (32, 64), (8, 16), (8, 4))[rng.permutation(32)]
    module = packed_module({"shuf": w}, (8, 16))
    PassPipeline.parse_spec(PASSES, "bcr-reorder{stats=true}").apply(make_context(), module)
    err = capsys.readouterr().err
    assert "... bcr-reorder statistics ..." in err
    line = next(ln for ln in err.splitlines() if ln.strip().startswith("shuf_1"))
    assert line.split()[-1] == "kept" and "-> 4" in line


# --------------------------------------------------------------------------
# schedule-select's register grouping and the loads-per-FMA model


def test_loads_per_fma_drops_with_rle() -> None:
    rng = np.random.default_rng(9)
    conv = planted(rng, (32, 288), (8, 16), (8, 4)).reshape(32, 32, 3, 3)
    text = f"""
    func.func @main(%x: {tensor((1, 32, 14, 14))}) -> {tensor((1, 32, 14, 14))} {{
      %w = graph.weight "w" : {tensor(conv.shape)}
      %y = graph.conv %x, %w {{strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64}} : {tensor((1, 32, 14, 14))}, {tensor(conv.shape)} -> {tensor((1, 32, 14, 14))}
      func.return %y : {tensor((1, 32, 14, 14))}
    }}"""
    module = module_from(text, {"w": conv})
    detect(module)
    (op,) = only(module, bcr.Conv2dOp)
    host, wide = resolve_target("host"), resolve_target("host-avx512")
    assert loads_per_fma(op, host) == 2.0  # unscheduled: one input + one weight load per FMA
    select_schedules(module, host)  # AVX2: 16 registers, 8 floats
    (op,) = only(module, bcr.Conv2dOp)
    sched = op.attributes["sched"]
    assert isinstance(sched, SpmmSchedule)
    rows, vectors = sched.rows.data, sched.nv.data
    assert sched.rle.data == 1 and rows > 1 and rows * vectors <= 12
    assert loads_per_fma(op, host) == pytest.approx((vectors + rows) / (rows * vectors))
    avx2 = loads_per_fma(op, host)
    assert avx2 < 1.0
    select_schedules(module, wide, overwrite=True)  # AVX-512: more accumulators
    assert loads_per_fma(op, wide) < avx2
    # Register blocking trades loads for the zeros of rows sharing a list: the
    # FMAs it runs are at least the stored values, per pixel vector.
    counts = op_load_counts(op, wide)
    assert counts.fmas >= np.count_nonzero(conv) * math.ceil(14 * 14 / 16)


def test_rle_off_reloads_per_row() -> None:
    rng = np.random.default_rng(10)
    w = planted(rng, (32, 64), (8, 16), (8, 4))
    module = packed_module({"w": w}, (8, 16))
    (op,) = only(module, bcr.MatMulOp)
    neon = resolve_target("aarch64")  # 4 floats: x (4x64) is one vector per column
    knobs = dict(rows=4, nv=1, unroll=1, order="stripe", tblock=1, pf=0, threads=1, split="groups")
    op.attributes["sched"] = SpmmSchedule(**knobs, rle=False)
    assert loads_per_fma(op, neon) == pytest.approx(2.0)  # (4*1 + 4) / 4
    op.attributes["sched"] = SpmmSchedule(**knobs, rle=True)
    assert loads_per_fma(op, neon) == pytest.approx(1.25)  # (1 + 4) / 4


def test_bcr_pipeline_on_a_pruned_gru(tmp_path: Path) -> None:
    model = zoo_gru(input_size=40, hidden_size=64, num_layers=1, seq_len=3, num_classes=10)
    rng = np.random.default_rng(12)
    for init in model.graph.initializer:
        w = numpy_helper.to_array(init)
        if init.name.endswith(("_w", "_r")) and w.ndim == 3:
            pruned = np.stack([plant(rng, d, (8, 16), (8, 4)) for d in w])
            init.CopyFrom(numpy_helper.from_array(pruned.astype(np.float32), init.name))
    from grimc.frontend import import_onnx

    module = import_onnx(model)
    PipelineRunner().run(module, list(BCR_PIPELINE))
    (cell,) = only(module, bcr.GRUOp)
    for ref in weight_refs(cell):
        assert encoding_of(cell, ref).block_shape == (8, 16), prefix_of(cell, ref)
    assert isinstance(cell.attributes["sched.proj"], SpmmSchedule | GemvSchedule)
    assert len(list(bcr_ops(module))) == 1  # the 64x10 head is too small to go sparse


# --------------------------------------------------------------------------
# grimc inspect


@pytest.fixture(scope="module")
def pruned_cnn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """small_cnn with three convs pruned to 8x16 BCR and one randomly."""
    model = small_cnn()
    rng = np.random.default_rng(4)
    for init in model.graph.initializer:
        w = numpy_helper.to_array(init)
        if init.name in ("conv_1_w", "conv_2_w", "conv_4_w"):
            w = planted(rng, (w.shape[0], w[0].size), (8, 16), (8, 4)).reshape(w.shape)
        elif init.name == "conv_5_w":
            w = np.where(rng.random(w.shape) < 0.2, w, 0)
        init.CopyFrom(numpy_helper.from_array(w.astype(np.float32), init.name))
    path = tmp_path_factory.mktemp("inspect") / "pruned.onnx"
    onnx.save(model, path)
    return path


def test_inspect_table(pruned_cnn: Path) -> None:
    proc = run_tool(["grimc", "inspect", str(pruned_cnn)])
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines()}
    assert rows["layer"].split()[:6] == ["layer", "op", "shape", "block", "density", "kernel"]
    for name in ("conv_1", "conv_2", "conv_4"):  # layers are named by ONNX node (grimc.layers)
        assert rows[name].split()[3:6] == ["8x16", "0.250", "bcr"], rows[name]
    assert rows["conv_5"].split()[3] == "dense" and "unstructured" in rows["conv_5"]
    assert "depthwise" in rows["conv_3"] and "small" in rows["conv_0"]
    assert "3/7 bcr" in rows["total"] and "x smaller" in rows["total"]


def test_inspect_json(pruned_cnn: Path) -> None:
    proc = run_tool(["grimc", "inspect", str(pruned_cnn), "--json"])
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    layers = {layer["layer"]: layer for layer in data["layers"]}
    conv = layers["conv_2"]
    assert conv["block"] == [8, 16] and conv["kernel"] == "bcr" and conv["matrix"] == [64, 288]
    assert conv["compact_bytes"] < conv["dense_bytes"] == 4 * 64 * 288
    assert conv["rows_permuted"] is False  # grimc prune keeps rows in order
    tot = data["totals"]
    assert tot["bcr_layers"] == 3
    assert tot["dense_bytes"] == sum(v["dense_bytes"] for v in layers.values())
    assert tot["compact_bytes"] == sum(v["compact_bytes"] for v in layers.values())
    strict = json.loads(run_tool(["grimc", "inspect", str(pruned_cnn), "--json", "--threshold", "0.2"]).stdout)
    assert strict["totals"]["bcr_layers"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.onnx"], "missing.onnx"),
        (["{model}", "--blocks", "8x16,wide"], "'wide'"),
        (["{model}", "--threshold", "1.5"], "threshold"),
        (["{model}", "--min-weights", "-1"], "--min-weights"),
    ],
)
def test_inspect_errors(pruned_cnn: Path, tmp_path: Path, args: list[str], message: str) -> None:
    argv = [a.format(model=pruned_cnn) for a in args]
    proc = run_tool(["grimc", "inspect", *argv], cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("grimc: error:") and message in lines[0]


def test_inspect_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    proc = run_tool(["grimc", "inspect", str(bad)])
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
