"""bcr-detect on BCR weights whose output rows were shuffled after pruning.

A model pruned elsewhere may reach grimc with its rows in another order than
the one its blocks were cut in: a pruner regrouped rows, or a channel
permutation was applied to a layer (and undone in the next one). Weights are
pruned by hand here (`plant`), then shuffled the way such a model is: the
output channels of a conv (within each group), the outputs of a Gemm, the
hidden units of a GRU (one permutation applied to every gate block of W and
R, and to R's columns, which read the hidden state). Detection must find the
planted block and density, store the row order as the BCRC perm, and the
compiled model must match onnxruntime. Random sparsity of the same density
must stay dense.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from grimc.artifacts import onnxruntime_reference
from grimc.bcr_format import BCRMatrix
from grimc.dialects import bcr, graph
from grimc.driver import build_model, import_model
from grimc.pipeline import BCR_PIPELINE, GRAPH_PIPELINE, PipelineRunner
from grimc.transforms._bcr_utils import summarize
from grimc.transforms.bcr_detect import (
    PERMUTED_NOTE,
    DetectOptions,
    MatrixReport,
    choose_block,
    detect,
)
from grimc.transforms.bcr_reorder import reorder_module
from tests.bcr.test_bcr_passes import decode, normal, only, plant

RTOL, ATOL = 1e-4, 1e-5
DETECT_ONLY = [*GRAPH_PIPELINE, "bcr-detect", "schedule-select"]
"""Without bcr-reorder the kernels run exactly the row order detect stored."""


def planted(
    rng: np.random.Generator, rows: int, cols: int, block: tuple[int, int], keep: tuple[int, int]
) -> np.ndarray:
    """A (rows, cols) BCR matrix pruned by hand, values scaled to keep outputs O(1)."""
    return plant(rng, normal(rng, rows, cols) * np.float32(0.3), block, keep)


def vectorized_planted(
    rng: np.random.Generator, rows: int, cols: int, block: tuple[int, int], keep: tuple[int, int]
) -> np.ndarray:
    """`planted` for a shape that is a whole number of blocks, without a loop per block."""
    (br, bc), (kr, kc) = block, keep
    s, b = rows // br, cols // bc
    keep_rows = np.argsort(rng.random((s, b, br)), axis=2) < kr
    keep_cols = np.argsort(rng.random((s, b, bc)), axis=2) < kc
    mask = (keep_rows[..., :, None] & keep_cols[..., None, :]).transpose(0, 2, 1, 3)
    return np.where(mask.reshape(rows, cols), normal(rng, rows, cols), np.float32(0))


def random_sparse(rng: np.random.Generator, rows: int, cols: int, density: float) -> np.ndarray:
    return np.where(rng.random((rows, cols)) < density, normal(rng, rows, cols), np.float32(0))


# --------------------------------------------------------------------------
# choose_block on one matrix

CASES = [
    ((8, 16), (8, 2)),  # column pruning only
    ((8, 16), (6, 4)),  # rows and columns
    ((4, 16), (3, 4)),
    ((8, 8), (6, 3)),
    ((16, 32), (12, 8)),
    ((4, 4), (3, 2)),  # few distinct column patterns per block
]


@pytest.mark.parametrize(("block", "keep"), CASES)
@pytest.mark.parametrize("shape", [(37, 101), (128, 576)])
def test_shuffled_rows_recover_the_planted_block(
    shape: tuple[int, int], block: tuple[int, int], keep: tuple[int, int]
) -> None:
    rng = np.random.default_rng(sum(shape) * 100 + block[0] * 10 + keep[1])
    w = planted(rng, *shape, block, keep)
    shuffled = w[rng.permutation(shape[0])]
    # Shuffled, the rows as given hold no structure.
    assert summarize([shuffled], block).fill < DetectOptions().min_fill
    choice = choose_block([shuffled], DetectOptions())
    best = choice.best
    assert best is not None, choice.reason
    assert best.block == block
    assert best.permuted
    assert best.stored == np.count_nonzero(w)  # exact: no explicit zeros
    assert best.density == pytest.approx(np.count_nonzero(w) / w.size)
    assert best.perms is not None
    mat = BCRMatrix.from_dense(shuffled, block, best.perms[0])
    assert mat.stored_values() == best.stored
    np.testing.assert_array_equal(mat.to_dense(), shuffled)


def test_rows_in_order_are_not_permuted() -> None:
    rng = np.random.default_rng(5)
    choice = choose_block([planted(rng, 64, 576, (8, 16), (6, 4))], DetectOptions())
    assert choice.best is not None and not choice.best.permuted


def test_fc_sized_matrix_reads_a_column_sample() -> None:
    """K/16 = 1024 segments: the stripe search reads an even sample, still exact."""
    rng = np.random.default_rng(6)
    w = vectorized_planted(rng, 256, 16384, (8, 16), (8, 2))
    choice = choose_block([w[rng.permutation(256)]], DetectOptions())
    assert choice.best is not None and choice.best.permuted
    assert choice.best.block == (8, 16) and choice.best.density == 0.125


@pytest.mark.parametrize("density", [0.05, 0.125, 0.1875, 0.3])
@pytest.mark.parametrize("shape", [(37, 101), (128, 576), (256, 1024)])
def test_unstructured_sparsity_stays_dense(shape: tuple[int, int], density: float) -> None:
    """No row order turns random zeros into blocks: still rejected, for the same reason.

    (Below ~3% random density 4x4 blocks hold single nonzeros and are
    accepted in any row order: see the bcr-detect docstring.)
    """
    rng = np.random.default_rng(int(density * 1000) + shape[0])
    choice = choose_block([random_sparse(rng, *shape, density)], DetectOptions())
    assert choice.best is None and choice.reason.startswith("unstructured"), choice.reason
    assert choice.cheapest is not None and choice.cheapest.fill < DetectOptions().min_fill


# --------------------------------------------------------------------------
# ONNX models, shuffled the way a channel permutation shuffles them


def shuffle_groups(rng: np.random.Generator, rows: int, groups: int) -> np.ndarray:
    """A permutation of range(rows) that maps each of `groups` equal parts onto itself."""
    per = rows // groups
    return np.concatenate([g * per + rng.permutation(per) for g in range(groups)])


def conv_model(
    rng: np.random.Generator, group: int, sparse: bool
) -> tuple[onnx.ModelProto, np.ndarray]:
    """Conv 16->32 3x3 (+bias, Relu); 8x16 BCR keeping 6x4, output channels shuffled per group."""
    cout, cin = 32, 16
    per_k = cin // group * 9
    mats = [
        planted(rng, cout // group, per_k, (8, 16), (6, 4))
        if sparse
        else random_sparse(rng, cout // group, per_k, 0.1875) * np.float32(0.3)
        for _ in range(group)
    ]
    perm = shuffle_groups(rng, cout, group)
    w = np.concatenate(mats)[perm].reshape(cout, cin // group, 3, 3)
    b = normal(rng, cout)[perm] * np.float32(0.1)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], group=group),
        helper.make_node("Relu", ["c"], ["y"]),
    ]
    return make_model(nodes, {"w": w, "b": b}, [1, cin, 9, 7], [1, cout, 9, 7]), w


def gemm_model(rng: np.random.Generator, sparse: bool) -> tuple[onnx.ModelProto, np.ndarray]:
    """Gemm 256->64 with B [K, N] (transB = 0): W = B^T is 4x16 BCR keeping 4x3, rows shuffled."""
    w = planted(rng, 64, 256, (4, 16), (4, 3)) if sparse else random_sparse(rng, 64, 256, 0.1875)
    perm = rng.permutation(64)
    b_mat = np.ascontiguousarray(w[perm].T)
    c = normal(rng, 64)[perm]
    nodes = [helper.make_node("Gemm", ["x", "B", "C"], ["y"], alpha=0.5)]
    return make_model(nodes, {"B": b_mat, "C": c}, [3, 256], [3, 64]), w[perm]


def gru_model(rng: np.random.Generator) -> tuple[onnx.ModelProto, np.ndarray]:
    """GRU I=32, H=32: W [1, 96, 32] and R [1, 96, 32] 8x16 BCR keeping 8x4, hidden units shuffled.

    Relabeling hidden unit j as pi(j) moves row g*H + j of every gate block g
    (z, r, h) of W and R, and column j of R. W keeps its column structure
    (its columns are the inputs), so it is detected under the permutation;
    R's columns are scrambled, so it is stored with its cheapest block.
    """
    hidden, inputs, seq = 32, 32, 5
    pi = rng.permutation(hidden)
    rows = np.concatenate([g * hidden + pi for g in range(3)])
    w = planted(rng, 3 * hidden, inputs, (8, 16), (8, 4))[rows]
    r = planted(rng, 3 * hidden, hidden, (8, 16), (8, 4))[rows][:, pi]
    b = normal(rng, 1, 6 * hidden) * np.float32(0.1)
    nodes = [helper.make_node("GRU", ["x", "W", "R", "B"], ["y", "yh"], hidden_size=hidden)]
    inits = {"W": w[None], "R": r[None], "B": b}
    return make_model(nodes, inits, [seq, 2, inputs], [seq, 1, 2, hidden]), w


def make_model(
    nodes: list[onnx.NodeProto],
    inits: dict[str, np.ndarray],
    x_shape: list[int],
    y_shape: list[int],
) -> onnx.ModelProto:
    """A model from input x to output y (other node outputs stay internal)."""
    graph_ = helper.make_graph(
        nodes,
        "shuffled",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()],
    )
    return helper.make_model(graph_, opset_imports=[helper.make_opsetid("", 17)])


def reports_of(model: onnx.ModelProto) -> dict[str, MatrixReport]:
    module = import_model(model)
    PipelineRunner().run(module, list(GRAPH_PIPELINE))
    return {r.layer: r for r in detect(module)}


def check_numerics(model: onnx.ModelProto, tmp_path: Path, passes: list[str]) -> None:
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    (expected,) = onnxruntime_reference(model.SerializeToString(), [x])
    with build_model(model, tmp_path, target="host", passes=passes) as compiled:
        (got,) = compiled.run([x])
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


PIPELINES = {"detect-only": DETECT_ONLY, "default": list(BCR_PIPELINE)}


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
@pytest.mark.parametrize("group", [1, 2])
def test_conv_with_shuffled_channels(group: int, pipeline: str, tmp_path: Path) -> None:
    model, w = conv_model(np.random.default_rng(20 + group), group, sparse=True)
    report = reports_of(model)["w"]
    assert (report.kernel, report.block, report.permuted) == ("bcr", (8, 16), True)
    assert report.stored == report.nnz == np.count_nonzero(w)  # the planted density, exactly
    assert report.note == PERMUTED_NOTE
    check_numerics(model, tmp_path, PIPELINES[pipeline])


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
def test_gemm_with_shuffled_outputs(pipeline: str, tmp_path: Path) -> None:
    model, w = gemm_model(np.random.default_rng(30), sparse=True)
    report = reports_of(model)["B"]
    assert (report.kernel, report.block, report.permuted) == ("bcr", (4, 16), True)
    assert report.stored == report.nnz == np.count_nonzero(w)
    assert report.density == pytest.approx(0.1875)
    check_numerics(model, tmp_path, PIPELINES[pipeline])


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
def test_gru_with_shuffled_hidden_units(pipeline: str, tmp_path: Path) -> None:
    model, w = gru_model(np.random.default_rng(40))
    report = reports_of(model)["W.W"]
    assert (report.kernel, report.block, report.permuted) == ("bcr", (8, 16), True)
    assert report.stored == report.nnz == np.count_nonzero(w)
    assert report.density == pytest.approx(0.25)
    check_numerics(model, tmp_path, PIPELINES[pipeline])


@pytest.mark.parametrize("kind", ["conv", "gemm"])
def test_random_sparsity_of_the_same_density_stays_dense(kind: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(50)
    model, _ = conv_model(rng, 1, sparse=False) if kind == "conv" else gemm_model(rng, sparse=False)
    (report,) = reports_of(model).values()
    assert report.kernel == "dense" and not report.permuted
    assert report.note.startswith("unstructured"), report.note
    check_numerics(model, tmp_path, list(BCR_PIPELINE))


def test_reorder_starts_from_the_detected_permutation() -> None:
    """bcr-reorder reads detect's perm: its 'before' is the recovered structure, and it keeps it."""
    model, w = gemm_model(np.random.default_rng(30), sparse=True)
    module = import_model(model)
    PipelineRunner().run(module, list(GRAPH_PIPELINE))
    (report,) = detect(module)
    (op,) = only(module, bcr.MatMulOp)
    (stats,) = reorder_module(module)
    assert stats.before.stored == report.stored == np.count_nonzero(w)
    assert stats.before.compact_bytes == report.compact_bytes
    assert not stats.kept and stats.after == stats.before
    np.testing.assert_array_equal(decode(module, op.weights.data, op.encoding)[0], 0.5 * w)
    assert op.encoding.schedule.reorder.data == 1
    assert not only(module, graph.GemmOp)
