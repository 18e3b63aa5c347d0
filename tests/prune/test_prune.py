"""grimc prune: BCR structure of the pruned weights against a brute-force reference,
the rate rules, the model (onnxruntime), the per-layer config, the CLI and its errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from grimc import zoo
from grimc.artifacts import onnxruntime_reference
from grimc.bcr_format import BCRMatrix, pack
from grimc.cli import main as grimc_main
from grimc.errors import GrimcError
from grimc.prune import (
    PruneConfig,
    PruneError,
    PruneWarning,
    Settings,
    balanced_keep,
    effective_block,
    find_layers,
    parse_block,
    prune_matrices,
    prune_model,
)
from grimc.zoo.builder import GraphBuilder
from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "small_cnn.onnx"
EXAMPLE_CONFIG = REPO / "examples" / "prune_config.toml"
PROPERTY = settings(max_examples=60, deadline=None)


# --------------------------------------------------------------------------- references


def _edge_count(extent: int, full: int, k: int) -> int:
    """What a partial block keeps: round-half-up(extent * k / full) in [1, min(k, extent)]."""
    if extent == full:
        return k
    return int(min(max(math.floor(extent * k / full + 0.5), 1), k, extent))


def _top(norms: np.ndarray, k: int) -> list[int]:
    return sorted(sorted(range(len(norms)), key=lambda i: (-norms[i], i))[:k])


def ref_balanced(w: np.ndarray, block: tuple[int, int], keep: tuple[int, int]) -> np.ndarray:
    """Block by block: top-L2 block-columns, then top-L2 block-rows over the kept columns."""
    br, bc = block
    out = np.zeros_like(w)
    for r0 in range(0, w.shape[0], br):
        for c0 in range(0, w.shape[1], bc):
            sub = w[r0 : r0 + br, c0 : c0 + bc].astype(np.float64)
            cols = _top(np.sqrt((sub**2).sum(axis=0)), _edge_count(sub.shape[1], bc, keep[1]))
            rows = _top(np.sqrt((sub[:, cols] ** 2).sum(axis=1)), _edge_count(sub.shape[0], br, keep[0]))
            for r in rows:
                out[r0 + r, [c0 + c for c in cols]] = w[r0 + r, [c0 + c for c in cols]]
    return out


def _keep_nearest(units: list[tuple[float, int, object]], density: float) -> set:
    """Best-scored units whose entries total nearest density * all entries."""
    units = sorted(units, key=lambda u: -u[0])
    total = sum(u[1] for u in units)
    best, best_n, running = math.inf, 0, 0
    for n, unit in enumerate(units, 1):
        running += unit[1]
        if abs(running - density * total) < best:
            best, best_n = abs(running - density * total), n
    return {u[2] for u in units[:best_n]}


def ref_unbalanced(mats: np.ndarray, block: tuple[int, int], dc: float, dr: float) -> np.ndarray:
    """One global ranking per layer: block-columns by mean square, then block-rows."""
    br, bc = block
    _, m, k = mats.shape
    sq = mats.astype(np.float64) ** 2
    columns = []
    for g in range(len(mats)):
        for r0 in range(0, m, br):
            h = min(br, m - r0)
            for c in range(k):
                columns.append((sq[g, r0 : r0 + h, c].sum() / h, h, (g, r0, c)))
    kept_cols = _keep_nearest(columns, dc)
    rows = []
    for g in range(len(mats)):
        for r0 in range(0, m, br):
            for c0 in range(0, k, bc):
                cols = [c for c in range(c0, min(c0 + bc, k)) if (g, r0, c) in kept_cols]
                for r in range(r0, min(r0 + br, m)):
                    if cols:
                        rows.append((sq[g, r, cols].sum() / len(cols), len(cols), (g, r, c0)))
    kept_rows = _keep_nearest(rows, dr)
    out = np.zeros_like(mats)
    for g, r, c0 in kept_rows:
        for c in range(c0, min(c0 + bc, k)):
            if (g, r - (r % br), c) in kept_cols:
                out[g, r, c] = mats[g, r, c]
    return out


def gemm_weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Layer name -> its weight as G stacked GEMM matrices."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return {layer.name: layer.gemm_view(inits[layer.weight]) for layer in find_layers(model)}


def run_ort(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    inputs = [feeds[i.name] for i in model.graph.input]
    return onnxruntime_reference(model.SerializeToString(), inputs)


def check_runs_and_differs(dense: onnx.ModelProto, pruned: onnx.ModelProto) -> None:
    """The pruned model is valid and runs in onnxruntime; its outputs are finite but changed."""
    onnx.checker.check_model(pruned)
    rng = np.random.default_rng(0)
    feeds = {}
    for vi in dense.graph.input:
        shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        feeds[vi.name] = rng.standard_normal(shape).astype(np.float32)
    for before, after in zip(run_ort(dense, feeds), run_ort(pruned, feeds), strict=True):
        assert before.shape == after.shape
        assert np.isfinite(after).all()
        assert np.abs(before - after).max() > 1e-4


# --------------------------------------------------------------------------- options and rates


@pytest.mark.parametrize("text, dims", [("8x16", (8, 16)), ("4X32", (4, 32)), (" 1x1 ", (1, 1))])
def test_parse_block(text: str, dims: tuple[int, int]) -> None:
    assert parse_block(text, "--block") == dims


@pytest.mark.parametrize("text", ["8x0", "0x8", "axb", "8", "8x16x2", "-1x8", "8x", ""])
def test_parse_block_rejects(text: str) -> None:
    with pytest.raises(PruneError, match=r"--block: block .* expected ROWSxCOLS"):
        parse_block(text, "--block")


@pytest.mark.parametrize(
    "block, rate, share, keep",
    [
        ((8, 16), 8, 0.0, (8, 2)),  # all column pruning while R <= bc
        ((8, 16), 16, 0.0, (8, 1)),
        ((8, 16), 32, 0.0, (4, 1)),  # beyond bc: rows make up the rest
        ((8, 16), 10, 0.0, (6, 2)),  # and the rounding of the column count
        ((8, 16), 1, 0.0, (8, 16)),
        ((8, 16), 16, 0.5, (2, 4)),  # even split in log space: 4x columns, 4x rows
        ((4, 16), 4, 1.0, (1, 16)),  # all row pruning
        ((16, 32), 8, 0.0, (16, 4)),
    ],
)
def test_rate_split_rule(block, rate, share, keep) -> None:
    assert balanced_keep(Settings(block=block, rate=rate, row_share=share), block) == keep


def test_explicit_column_and_row_rates() -> None:
    assert balanced_keep(Settings(rate=None, col_rate=0.75, row_rate=0.5), (8, 16)) == (4, 4)
    assert balanced_keep(Settings(rate=None, col_rate=0.99), (8, 16)) == (8, 1)  # at least one


# --------------------------------------------------------------------------- the core vs references


def _random(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@st.composite
def balanced_cases(draw):
    m, k = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    block = effective_block((draw(st.integers(1, 12)), draw(st.integers(1, 12))), (m, k))
    if draw(st.booleans()):
        setting = Settings(block=block, rate=draw(st.floats(1.0, block[0] * block[1])),
                           row_share=draw(st.sampled_from([0.0, 0.3, 0.5, 1.0])))
    else:
        setting = Settings(block=block, rate=None, col_rate=draw(st.floats(0.0, 0.95)),
                           row_rate=draw(st.floats(0.0, 0.95)))
    return _random((m, k), draw(st.integers(0, 2**16))), block, setting


@PROPERTY
@given(balanced_cases())
def test_balanced_pruning_matches_reference_and_is_exact_bcr(case) -> None:
    w, block, setting = case
    keep = balanced_keep(setting, block)
    result = prune_matrices(w[None], block, setting)
    pruned = result.mats[0]
    np.testing.assert_array_equal(pruned, ref_balanced(w, block, keep))
    bcr = BCRMatrix.from_dense(pruned, block)
    assert bcr.is_balanced(keep)  # every full block keeps exactly (kr, kc)
    assert all(r <= keep[0] and c <= keep[1] for r, c in (b.counts for b in bcr.iter_blocks()))
    assert result.values == bcr.stored_values() == np.count_nonzero(pruned)
    assert result.bcrc_bytes() == sum(a.nbytes for a in pack([bcr]).values())
    assert bcr.to_dense().tobytes() == pruned.tobytes()


@PROPERTY
@given(
    st.sampled_from([(8, 16), (4, 16), (8, 8), (16, 32), (4, 4)]),
    st.integers(1, 3),
    st.integers(1, 3),
    st.floats(1.0, 64.0),
)
def test_density_matches_rate_within_one_column_or_row(block, sm, sb, rate) -> None:
    br, bc = block
    rate = min(rate, br * bc)
    setting = Settings(block=block, rate=rate)
    kr, kc = balanced_keep(setting, block)
    result = prune_matrices(_random((sm * br, sb * bc), 1)[None], block, setting)
    density = result.values / result.mats.size
    assert density == kr * kc / (br * bc)
    # Error of rounding kc (when rows cannot make up, kr == br) or of rounding kr.
    assert abs(density - 1 / rate) <= max(0.5 / bc, kc / bc * 0.5 / br) + 1e-12


@st.composite
def unbalanced_cases(draw):
    g, m, k = draw(st.integers(1, 3)), draw(st.integers(1, 24)), draw(st.integers(1, 24))
    block = effective_block((draw(st.integers(1, 8)), draw(st.integers(1, 8))), (m, k))
    dc, dr = draw(st.floats(0.05, 1.0)), draw(st.floats(0.05, 1.0))
    return _random((g, m, k), draw(st.integers(0, 2**16))), block, dc, dr


@PROPERTY
@given(unbalanced_cases())
def test_unbalanced_keeps_the_global_threshold_set(case) -> None:
    mats, block, dc, dr = case
    setting = Settings(block=block, rate=None, col_rate=1 - dc, row_rate=1 - dr, balanced=False)
    result = prune_matrices(mats, block, setting)
    np.testing.assert_array_equal(result.mats, ref_unbalanced(mats, block, 1 - setting.col_rate,
                                                             1 - setting.row_rate))
    bcrs = [BCRMatrix.from_dense(w, block) for w in result.mats]
    assert result.values == sum(b.stored_values() for b in bcrs)
    assert result.bcrc_bytes() == sum(a.nbytes for a in pack(bcrs).values())


@pytest.mark.parametrize("rate", [2.0, 8.0, 10.0, 40.0])
def test_unbalanced_rate_reaches_the_density(rate: float) -> None:
    mats = _random((2, 64, 200), 3) * np.linspace(0.1, 2, 200, dtype=np.float32)
    result = prune_matrices(mats, (8, 16), Settings(rate=rate, balanced=False))
    assert abs(result.values / mats.size * rate - 1) < 0.01
    counts = [b.counts for w in result.mats for b in BCRMatrix.from_dense(w, (8, 16)).iter_blocks()]
    assert len(set(counts)) > 1  # not the same in every block: it is a global threshold


# --------------------------------------------------------------------------- models


@pytest.fixture(scope="module")
def cnn() -> onnx.ModelProto:
    return zoo.small_cnn()


@pytest.fixture(scope="module")
def cnn_pruned(cnn) -> object:
    return prune_model(cnn)


def test_small_cnn_default_rules_and_exact_structure(cnn, cnn_pruned) -> None:
    reasons = {r.name: r.dense_reason for r in cnn_pruned.layers}
    assert reasons == {
        "conv_0": "K 27 < 32",  # RGB stem
        "conv_1": None,
        "conv_2": None,
        "conv_3": "depthwise",
        "conv_4": None,  # exactly MIN_SPARSE_WEIGHTS (2048)
        "conv_5": None,
        "gemm_0": "640 < 2048 weights",
    }
    weights = gemm_weights(cnn_pruned.model)
    for name in ("conv_1", "conv_2", "conv_4", "conv_5"):
        report = cnn_pruned.layer(name)
        assert (report.block, report.keep, report.density) == ((8, 16), (8, 2), 0.125)
        bcr = BCRMatrix.from_dense(weights[name][0], (8, 16))
        assert bcr.is_balanced((8, 2)) and bcr.keep_counts() == (8, 2)
        assert report.kept_bytes == sum(a.nbytes for a in pack([bcr]).values())


def test_dense_layers_and_other_initializers_untouched_byte_for_byte(cnn, cnn_pruned) -> None:
    pruned_weights = {r.weight for r in cnn_pruned.layers if r.pruned}
    before = {t.name: t.SerializeToString() for t in cnn.graph.initializer}
    after = {t.name: t.SerializeToString() for t in cnn_pruned.model.graph.initializer}
    assert before.keys() == after.keys()
    changed = {name for name in before if before[name] != after[name]}
    assert changed == pruned_weights == {"conv_1_w", "conv_2_w", "conv_4_w", "conv_5_w"}
    assert cnn.graph.node == cnn_pruned.model.graph.node


def test_caller_model_is_not_modified(cnn) -> None:
    snapshot = cnn.SerializeToString()
    prune_model(cnn, rate=4)
    assert cnn.SerializeToString() == snapshot


def test_pruned_cnn_runs_in_onnxruntime(cnn, cnn_pruned) -> None:
    check_runs_and_differs(cnn, cnn_pruned.model)


def test_report_totals(cnn_pruned) -> None:
    rows = cnn_pruned.layers
    assert cnn_pruned.weights == sum(r.weights for r in rows) == 45168
    assert cnn_pruned.kept == sum(r.kept for r in rows)
    assert cnn_pruned.dense_bytes == 4 * cnn_pruned.weights
    assert cnn_pruned.kept_bytes < cnn_pruned.dense_bytes
    assert all(r.compression == pytest.approx(1 / r.density) for r in rows)


def test_grouped_conv_is_pruned_per_group() -> None:
    b = GraphBuilder(seed=1)
    x = b.conv(b.input("input", (1, 32, 8, 8)), 64, 3, group=2)
    dense = b.finish(["input"], {"output": x})
    result = prune_model(dense, block=(8, 16), rate=4)
    assert (result.layers[0].groups, result.layers[0].matrix) == (2, (32, 144))
    before, after = gemm_weights(dense)["conv_0"], gemm_weights(result.model)["conv_0"]
    keep = balanced_keep(Settings(rate=4), (8, 16))
    for g in range(2):
        np.testing.assert_array_equal(after[g], ref_balanced(before[g], (8, 16), keep))
        assert BCRMatrix.from_dense(after[g], (8, 16)).is_balanced(keep)
    check_runs_and_differs(dense, result.model)


@pytest.mark.parametrize("kind", ["gru", "lstm", "rnn"])
def test_recurrent_weights_are_pruned_per_direction(kind: str) -> None:
    dense = zoo.build(kind, input_size=48, hidden_size=32, num_layers=1, seq_len=3,
                      direction="bidirectional")
    result = prune_model(dense, block=(4, 16), rate=4, min_weights=0)  # RNN W: 3072 weights
    names = [r.name for r in result.layers]
    assert names == [f"{kind}_0.W", f"{kind}_0.R"] and all(r.pruned for r in result.layers)
    before, after = gemm_weights(dense), gemm_weights(result.model)
    for name in names:
        assert after[name].shape[0] == 2  # one matrix per direction
        keep = balanced_keep(Settings(rate=4), (4, 16))
        for d in range(2):
            np.testing.assert_array_equal(after[name][d], ref_balanced(before[name][d], (4, 16), keep))
    check_runs_and_differs(dense, result.model)


def _fc_model(trans_b: int, op: str = "Gemm", k: int = 96, n: int = 64) -> onnx.ModelProto:
    weight = _random((n, k) if trans_b else (k, n), 5)
    attrs = {"transB": trans_b} if op == "Gemm" else {}
    node = helper.make_node(op, ["x", "w"], ["y"], name="fc", **attrs)
    graph = helper.make_graph(
        [node], "fc",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, n])],
        [numpy_helper.from_array(weight, "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("trans_b, op", [(0, "Gemm"), (1, "Gemm"), (0, "MatMul")])
def test_gemm_view_respects_trans_b(trans_b: int, op: str) -> None:
    dense = _fc_model(trans_b, op)
    result = prune_model(dense, block=(8, 16), rate=8)
    assert result.layers[0].matrix == (64, 96)  # W is (N, K) both ways
    b_before = numpy_helper.to_array(dense.graph.initializer[0])
    b_after = numpy_helper.to_array(result.model.graph.initializer[0])
    w_before, w_after = (b_before, b_after) if trans_b else (b_before.T, b_after.T)
    np.testing.assert_array_equal(w_after, ref_balanced(w_before, (8, 16), (8, 2)))
    assert BCRMatrix.from_dense(w_after, (8, 16)).is_balanced((8, 2))
    check_runs_and_differs(dense, result.model)


def test_block_larger_than_matrix_is_whole_matrix_pruning() -> None:
    dense = _fc_model(1, k=64, n=40)  # W (40, 64): 2560 weights, below min_weights
    result = prune_model(dense, block=(64, 128), rate=8, include=["fc"])
    report = result.layers[0]
    assert (report.block, report.keep) == ((40, 64), (40, 8))
    w = gemm_weights(result.model)["fc"][0]
    kept_cols = np.flatnonzero(w.any(axis=0))
    assert len(kept_cols) == 8 and np.count_nonzero(w[:, kept_cols]) == 40 * 8  # whole columns
    norms = np.linalg.norm(numpy_helper.to_array(dense.graph.initializer[0]), axis=0)
    assert set(kept_cols) == set(np.argsort(-norms)[:8])


def test_rate_beyond_the_clipped_block_warns() -> None:
    dense = _fc_model(1, k=64, n=40)  # 8192 cells in the nominal block, 2560 in the clipped one
    with pytest.warns(PruneWarning, match=r"rate 4000 is out of reach of its effective block 40x64"):
        result = prune_model(dense, block=(64, 128), rate=4000, include=["fc"])
    assert result.layers[0].keep == (1, 1) and result.layers[0].kept == 1


def test_float16_weights_keep_their_dtype() -> None:
    model = _fc_model(1)
    tensor = model.graph.initializer[0]
    tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float16), "w"))
    result = prune_model(model, rate=4)
    after = numpy_helper.to_array(result.model.graph.initializer[0])
    assert after.dtype == np.float16
    assert BCRMatrix.from_dense(after.astype(np.float32), (8, 16)).is_balanced((8, 4))


def test_unbalanced_model_layer_matches_reference(cnn) -> None:
    result = prune_model(cnn, rate=None, col_rate=0.75, row_rate=0.25, balanced=False)
    before, after = gemm_weights(cnn)["conv_2"], gemm_weights(result.model)["conv_2"]
    np.testing.assert_array_equal(after, ref_unbalanced(before, (8, 16), 0.25, 0.75))
    assert result.layer("conv_2").keep is None


def test_nan_weight_is_an_error(cnn) -> None:
    bad = onnx.ModelProto()
    bad.CopyFrom(cnn)
    tensor = next(t for t in bad.graph.initializer if t.name == "conv_2_w")
    array = numpy_helper.to_array(tensor).copy()
    array[3, 1, 2, 0] = np.nan
    tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))
    with pytest.raises(PruneError, match=r"layer 'conv_2' \(initializer 'conv_2_w'\): "
                                         r"non-finite weight nan at index \[3, 1, 2, 0\]"):
        prune_model(bad)


# --------------------------------------------------------------------------- selection, config


def test_include_exclude_override_the_default_rules(cnn) -> None:
    result = prune_model(cnn, include=["conv_0", "conv_3", "conv_4_w"], exclude=["conv_2", "conv_3"])
    reasons = {r.name: r.dense_reason for r in result.layers}
    assert reasons["conv_0"] is None and reasons["conv_4"] is None  # forced, by name or weight
    assert reasons["conv_2"] == reasons["conv_3"] == "--exclude"  # exclude wins
    assert result.layer("conv_0").block == (8, 16)


def test_config_entries_merge_globs_then_exact_names(cnn, tmp_path: Path) -> None:
    path = tmp_path / "layers.toml"
    path.write_text(
        '[defaults]\nblock = "4x8"\n\n'
        '[layers]\n"conv_*" = { col_rate = 0.5, row_rate = 0.5 }\n'
        '"conv_5" = { rate = 16 }\n'
        '"conv_4" = { dense = false }\n'
        '"conv_1" = "dense"\n'
        '[layers."conv_2"]\nblock = [8, 8]\nbalanced = false\n'
    )
    result = prune_model(cnn, config=path, rate=2)
    rows = {r.name: r for r in result.layers}
    assert rows["conv_1"].dense_reason == "config"
    assert (rows["conv_4"].block, rows["conv_4"].keep) == ((4, 8), (2, 4))  # glob col/row rates
    assert (rows["conv_5"].block, rows["conv_5"].keep) == ((4, 8), (2, 1))  # rate replaces them
    assert (rows["conv_2"].block, rows["conv_2"].keep) == ((8, 8), None)
    assert rows["conv_2"].density == pytest.approx(0.25, abs=0.01)
    assert rows["conv_0"].dense_reason == "K 27 < 32"  # globs do not override the rules
    assert rows["gemm_0"].dense_reason is not None


def test_example_config_applies(tmp_path: Path) -> None:
    result = prune_model(EXAMPLE, config=EXAMPLE_CONFIG)
    assert result.warnings == []
    assert result.layer("conv_4").pruned and not result.layer("gemm_0").pruned
    assert result.layer("conv_5").density == pytest.approx(0.1, abs=0.005)


def test_patterns_matching_nothing_warn(cnn) -> None:
    config = PruneConfig.parse('[layers]\n"fc*" = "dense"\n', "c.toml")
    with pytest.warns(PruneWarning, match="matches no layer") as record:
        result = prune_model(cnn, config=config, include=["nope"])
    assert len(record) == 2
    assert result.warnings == ["--include 'nope' matches no layer",
                               "c.toml:2: layer pattern 'fc*' matches no layer"]


@pytest.mark.parametrize(
    "text, message",
    [
        ('[layers]\n"conv_1" = { block = \n', r"c\.toml:2:\d+: invalid TOML"),
        ('[layers]\n"a" = 1\n"conv_1" = { block = "8x0" }\n',
         r"c\.toml:2: layer 'a': expected a table of settings or \"dense\""),
        ('[layers]\n"conv_1" = { block = "8x0" }\n', r"c\.toml:2: layer 'conv_1': block '8x0'"),
        ('[layers]\n\n"conv_1" = { rate = 0.5 }\n', r"c\.toml:3: layer 'conv_1': rate 0\.5 must be"),
        ('[layers]\n"c" = { rate = 4, col_rate = 0.5 }\n', r"c\.toml:2: .*either rate or col_rate"),
        ('[layers]\n"c" = { speed = 4 }\n', r"c\.toml:2: .*unknown key 'speed'"),
        ('[layers]\n"c" = { dense = "yes" }\n', r"c\.toml:2: .*dense must be true or false"),
        ('[defaults]\nrate = 4\n\nmin_k = -3\n', r"c\.toml:4: min_k -3 must be at least 0"),
        ('[layers.conv_2]\nrate = 500\n', r"c\.toml:1: layer 'conv_2': rate 500 is out of reach"),
        ("[prune]\nrate = 4\n", r"c\.toml:1: unknown table 'prune'"),
    ],
)
def test_config_errors_name_the_line(cnn, text: str, message: str) -> None:
    with pytest.raises(PruneError, match=message):
        prune_model(cnn, config=PruneConfig.parse(text, "c.toml"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rate": 0.5}, "rate 0.5 must be at least 1"),
        ({"rate": 200}, "rate 200 is out of reach of balanced 8x16 blocks"),
        ({"block": (8, 0)}, r"block \(8, 0\): expected ROWSxCOLS"),
        ({"rate": None, "col_rate": 1.0}, r"col_rate 1 must be in \[0, 1\)"),
        ({"rate": 4, "row_rate": 0.5}, "either rate or col_rate/row_rate"),
    ],
)
def test_api_errors(cnn, kwargs: dict, message: str) -> None:
    with pytest.raises(PruneError, match=message):
        prune_model(cnn, **kwargs)


# --------------------------------------------------------------------------- CLI


def test_cli_prints_table_and_writes_a_runnable_model(tmp_path: Path, capsys) -> None:
    out = tmp_path / "pruned.onnx"
    assert grimc_main(["prune", str(EXAMPLE), "-o", str(out), "--block", "8x16", "--rate", "8"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].split() == ["layer", "op", "gemm", "block", "keep", "density", "compress",
                                "kept", "bytes", "note"]
    conv2 = next(line for line in lines if line.startswith("conv_2 "))
    assert conv2.split()[:7] == ["conv_2", "Conv", "64x288", "8x16", "8x2", "0.1250", "8.00x"]
    assert any("dense: depthwise" in line for line in lines)
    assert lines[-1].startswith("total") and "4 of 7 layers pruned" in lines[-1]
    assert captured.err == ""
    pruned = onnx.load(str(out))
    check_runs_and_differs(onnx.load(str(EXAMPLE)), pruned)
    assert list(tmp_path.iterdir()) == [out]  # no temp file left


def test_cli_without_output_only_reports(tmp_path: Path, capsys) -> None:
    assert grimc_main(["prune", str(EXAMPLE), "--unbalanced", "--col-rate", "0.5"]) == 0
    assert "global" in capsys.readouterr().out


def test_cli_warns_on_unmatched_patterns(tmp_path: Path, capsys) -> None:
    out = tmp_path / "p.onnx"
    assert grimc_main(["prune", str(EXAMPLE), "-o", str(out), "--exclude", "fc9"]) == 0
    err = capsys.readouterr().err
    assert err == "grimc: warning: --exclude 'fc9' matches no layer\n" and out.exists()


def _nan_model(path: Path) -> Path:
    model = zoo.small_cnn()
    tensor = next(t for t in model.graph.initializer if t.name == "conv_5_w")
    array = numpy_helper.to_array(tensor).copy()
    array[0, 0, 0, 0] = np.inf
    tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(
    "args, message",
    [
        (["--block", "8x0"], "--block: block '8x0': expected ROWSxCOLS"),
        (["--block", "axb"], "--block: block 'axb'"),
        (["--rate", "0.5"], "--rate: rate '0.5' must be at least 1"),
        (["--rate", "lots"], "--rate: rate 'lots' is not a number"),
        (["--rate", "4", "--col-rate", "0.5"], "either --rate or --col-rate/--row-rate"),
        (["--row-share", "1.5"], "--row-share: row_share 1.5 must be in [0, 1]"),
        (["--rate", "129"], "rate 129 is out of reach of balanced 8x16 blocks"),
        (["--config", "CONFIG"], "layers.toml:2:"),
        (["--config", "MISSING"], "missing.toml: cannot read config"),
        (["NAN"], "layer 'conv_5' (initializer 'conv_5_w'): non-finite weight inf at index [0, 0, 0, 0]"),
        (["NOTONNX"], "not a valid ONNX model"),
    ],
)
def test_cli_errors_are_one_line_exit_2_and_write_nothing(
    tmp_path: Path, capsys, args: list[str], message: str
) -> None:
    config = tmp_path / "layers.toml"
    config.write_text('[layers]\n"conv_1" = { block = "4x" ,}\n')
    (tmp_path / "bad.onnx").write_bytes(b"\x00not onnx")
    model = str(EXAMPLE)
    if args[0] == "NAN":
        model, args = str(_nan_model(tmp_path / "nan.onnx")), []
    elif args[0] == "NOTONNX":
        model, args = str(tmp_path / "bad.onnx"), []
    args = [str(config) if a == "CONFIG" else str(tmp_path / "missing.toml") if a == "MISSING"
            else a for a in args]
    out = tmp_path / "out.onnx"
    out.write_bytes(b"previous")  # an existing output survives a failed run unchanged
    before = sorted(p.name for p in tmp_path.iterdir())
    assert grimc_main(["prune", model, "-o", str(out), *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("grimc: error: ")
    assert message in captured.err
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_cli_missing_output_directory(tmp_path: Path, capsys) -> None:
    assert grimc_main(["prune", str(EXAMPLE), "-o", str(tmp_path / "no" / "p.onnx")]) == 2
    assert "output directory does not exist" in capsys.readouterr().err


def test_console_script_end_to_end(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "p.onnx"
    proc = run_cli(["grimc", "prune", str(EXAMPLE), "-o", str(out), "--config",
                    str(EXAMPLE_CONFIG)])
    assert proc.returncode == 0, proc.stderr
    assert "conv_5" in proc.stdout and "global" in proc.stdout
    assert "prune" in run_cli(["grimc", "--help"]).stdout
    onnx.checker.check_model(onnx.load(str(out)))


def test_hostile_layer_names_are_escaped_in_the_table() -> None:
    model = _fc_model(1)
    model.graph.node[0].name = "fc\n\x1b[31mred"
    result = prune_model(model)
    assert "\n" not in result.table().splitlines()[2] and "\x1b" not in result.table()
    with pytest.raises(GrimcError):
        prune_model(b"")
