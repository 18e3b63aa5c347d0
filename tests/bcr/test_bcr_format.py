"""BCRC packed layout version 2 (grimc/bcr_format.py): exact round trips and byte counts.

`pack` is vectorized; `_reference_pack` below spells the layout out block by
block from the module docstring, and every case checks the two agree array
for array, dtype included, so a layout bug cannot hide behind a round trip
that is merely self-consistent.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grimc.bcr_format import (
    SUFFIXES,
    BCRFormatError,
    BCRMatrix,
    index_dtype,
    pack,
    packed_bytes,
    unpack,
)

# --------------------------------------------------------------------------
# the layout, spelled out


def _reference_pack(mats: list[BCRMatrix]) -> dict[str, np.ndarray]:
    """The version-2 arrays of `mats`, one block at a time (see the module docstring)."""
    (m, k), (br, bc) = mats[0].shape, mats[0].block
    blocks = [
        (blk, r1 - r0, c1 - c0, r0, c0)
        for mat in mats
        for stripe, (r0, r1) in zip(mat.blocks, mat.row_spans(), strict=True)
        for blk, (c0, c1) in zip(stripe, mat.col_spans(), strict=True)
    ]
    keep = (max(b.counts[0] for b, *_ in blocks), max(b.counts[1] for b, *_ in blocks))
    uniform = all(b.counts == (min(keep[0], er), min(keep[1], ec)) for b, er, ec, *_ in blocks)
    rows, cols, vals, counts = [], [], [], []
    for blk, er, ec, r0, c0 in blocks:
        vals += blk.values.T.ravel().tolist()
        rows += (blk.rows - r0).tolist() if len(blk.rows) < er else []
        cols += (blk.cols - c0).tolist() if len(blk.cols) < ec else []
        counts += list(blk.counts)
    permuted = any(not np.array_equal(mat.perm, np.arange(m)) for mat in mats)
    return {
        "head": np.array([2, len(mats), m, k, br, bc, *(keep if uniform else (-1, -1))], np.int32),
        "vals": np.array(vals, np.float32),
        "cols": np.array(cols, index_dtype(bc)),
        "rows": np.array(rows, index_dtype(br)),
        "counts": np.array([] if uniform else counts, index_dtype(max(br, bc))),
        "perm": np.concatenate([mat.perm for mat in mats]).astype(np.int32)
        if permuted
        else np.zeros(0, np.int32),
    }


def _check_round_trip(mats: list[BCRMatrix], dense: list[np.ndarray]) -> dict[str, np.ndarray]:
    """pack == the reference layout, unpack inverts it exactly, bytes are what is stored."""
    arrays = pack(mats)
    want = _reference_pack(mats)
    assert tuple(arrays) == SUFFIXES
    for suffix in SUFFIXES:
        assert arrays[suffix].dtype == want[suffix].dtype, suffix
        assert np.array_equal(arrays[suffix], want[suffix]), suffix
    back = unpack(arrays, mats[0].shape, mats[0].block)
    assert back == mats
    for got, w in zip(back, dense, strict=True):
        assert np.array_equal(got.to_dense(), w)
    kept = [np.stack(c) for c in zip(*(mat.kept() for mat in mats), strict=True)]
    permuted = any(mat.permuted() for mat in mats)
    nbytes = sum(a.nbytes for a in arrays.values())
    assert nbytes == packed_bytes(*kept, mats[0].shape, mats[0].block, permuted)
    if len(mats) == 1:
        assert nbytes == mats[0].total_bytes()
        assert mats[0].index_bytes() == nbytes - 4 * len(arrays["vals"])
    return arrays


def _col_pruned(
    rng: np.random.Generator, shape: tuple[int, int], block: tuple[int, int], keep: int
) -> np.ndarray:
    """Every block keeps all its rows and `keep` random columns (per-block column pruning)."""
    w = np.zeros(shape, np.float32)
    for r0 in range(0, shape[0], block[0]):
        for c0 in range(0, shape[1], block[1]):
            ec = min(block[1], shape[1] - c0)
            cols = c0 + rng.choice(ec, size=min(keep, ec), replace=False)
            r1 = min(r0 + block[0], shape[0])
            w[r0:r1, cols] = rng.uniform(0.5, 2.0, size=(r1 - r0, len(cols)))
    return w


# --------------------------------------------------------------------------
# the compact path


def test_column_pruned_8x16_is_uniform_and_row_full() -> None:
    """ResNet-style 64 x 576 (3x3 conv, 64 channels) at 8x: near 8x smaller than dense."""
    w = _col_pruned(np.random.default_rng(0), (64, 576), (8, 16), keep=2)
    mat = BCRMatrix.from_dense(w, (8, 16))
    arrays = _check_round_trip([mat], [w])
    assert arrays["head"].tolist() == [2, 1, 64, 576, 8, 16, 8, 2]
    assert len(arrays["rows"]) == len(arrays["counts"]) == len(arrays["perm"]) == 0
    assert arrays["cols"].dtype == np.uint8 and len(arrays["cols"]) == 2 * 8 * 36
    blocks = 8 * 36
    assert mat.total_bytes() == 32 + (16 * 4 + 2) * blocks == 19_040
    assert mat.total_bytes() <= w.nbytes / 7


def test_balanced_with_partial_edges_stays_uniform() -> None:
    """Edge blocks keep their clipped counts: still no per-block counts."""
    w = _col_pruned(
        np.random.default_rng(1), (21, 37), (8, 16), keep=3
    )  # last block column: 5 wide
    mat = BCRMatrix.from_dense(w, (8, 16))
    arrays = _check_round_trip([mat], [w])
    assert arrays["head"][6:].tolist() == [8, 3] and len(arrays["counts"]) == 0
    assert len(arrays["rows"]) == 0  # the 5-row bottom stripe keeps all 5 rows


def test_edge_block_keeping_less_than_clipped_lists_counts() -> None:
    w = _col_pruned(np.random.default_rng(2), (16, 35), (8, 16), keep=4)  # edge block: 3 columns
    w[:, 32:] = 0
    w[:, 34] = 1.0  # the edge blocks keep 1 column, not min(4, 3)
    arrays = _check_round_trip([BCRMatrix.from_dense(w, (8, 16))], [w])
    assert arrays["head"][6:].tolist() == [-1, -1]
    assert arrays["counts"].reshape(2, 3, 2)[:, 2].tolist() == [[8, 1], [8, 1]]


# --------------------------------------------------------------------------
# the general path, case by case


def _row_pruned(w: np.ndarray) -> np.ndarray:
    out = w.copy()
    out[1::3] = 0
    return out


CASES = {
    "dense": lambda rng: rng.uniform(0.5, 2.0, (10, 13)).astype(np.float32),
    "zero": lambda rng: np.zeros((10, 13), np.float32),
    "one_value": lambda rng: np.pad(np.ones((1, 1), np.float32), ((4, 5), (7, 5))),
    "rows_and_cols_pruned": lambda rng: _row_pruned(_col_pruned(rng, (17, 40), (4, 8), 3)),
    "scattered": lambda rng: np.where(
        rng.random((19, 23)) < 0.2, rng.standard_normal((19, 23)), 0
    ).astype(np.float32),
    "empty_stripe": lambda rng: np.vstack(
        [np.zeros((4, 16), np.float32), _col_pruned(rng, (8, 16), (4, 8), 2)]
    ),
    "tiny_blocks": lambda rng: _col_pruned(rng, (7, 5), (1, 1), 1),
    "block_bigger_than_matrix": lambda rng: _row_pruned(
        rng.uniform(0.5, 2.0, (3, 5)).astype(np.float32)
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("block", [(4, 8), (3, 5), (8, 16), (1, 1)])
def test_round_trip_cases(name: str, block: tuple[int, int]) -> None:
    w = CASES[name](np.random.default_rng(3))
    _check_round_trip([BCRMatrix.from_dense(w, block)], [w])


def test_wide_blocks_index_with_uint16() -> None:
    w = np.zeros((2, 600), np.float32)
    w[0, [3, 299, 599]] = 1.0
    arrays = _check_round_trip([BCRMatrix.from_dense(w, (2, 600))], [w])
    assert arrays["cols"].tolist() == [3, 299, 599] and arrays["cols"].dtype == np.uint16
    assert arrays["rows"].tolist() == [0] and arrays["rows"].dtype == np.uint8


def test_permuted_rows_and_groups() -> None:
    rng = np.random.default_rng(4)
    dense = [_row_pruned(_col_pruned(rng, (12, 20), (4, 8), 2)) for _ in range(3)]
    perms = [np.arange(12), rng.permutation(12), rng.permutation(12)]
    mats = [BCRMatrix.from_dense(w, (4, 8), p) for w, p in zip(dense, perms, strict=True)]
    arrays = _check_round_trip(mats, dense)
    assert arrays["head"][1] == 3
    assert arrays["perm"].tolist() == np.concatenate(perms).tolist()


def test_groups_in_row_order_store_no_perm() -> None:
    rng = np.random.default_rng(5)
    dense = [_col_pruned(rng, (16, 32), (8, 16), 2) for _ in range(2)]
    arrays = _check_round_trip([BCRMatrix.from_dense(w, (8, 16)) for w in dense], dense)
    assert len(arrays["perm"]) == 0 and arrays["head"][6:].tolist() == [8, 2]


def test_one_uneven_group_makes_all_groups_list_counts() -> None:
    rng = np.random.default_rng(6)
    dense = [_col_pruned(rng, (16, 32), (8, 16), 2), _col_pruned(rng, (16, 32), (8, 16), 3)]
    arrays = _check_round_trip([BCRMatrix.from_dense(w, (8, 16)) for w in dense], dense)
    assert arrays["head"][6:].tolist() == [-1, -1] and len(arrays["counts"]) == 2 * 2 * 2 * 2


# --------------------------------------------------------------------------
# random BCR matrices


@st.composite
def bcr_matrices(draw: st.DrawFn) -> tuple[list[np.ndarray], list[np.ndarray], tuple[int, int]]:
    """G same-shaped grids (W[perm]) with planted per-block kept sets, and perms.

    Blocks are empty, full, row-full, column-full or random; shapes are often
    not multiples of the block, and some draws are balanced column pruning.
    """
    m, k = draw(st.integers(1, 30)), draw(st.integers(1, 30))
    block = (draw(st.integers(1, 10)), draw(st.integers(1, 20)))
    groups = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        dense = [
            _col_pruned(rng, (m, k), block, draw(st.integers(1, block[1]))) for _ in range(groups)
        ]
    else:
        dense = [_planted(rng, (m, k), block) for _ in range(groups)]
    perms = [rng.permutation(m) if draw(st.booleans()) else np.arange(m) for _ in range(groups)]
    return dense, perms, block


def _planted(
    rng: np.random.Generator, shape: tuple[int, int], block: tuple[int, int]
) -> np.ndarray:
    w = np.zeros(shape, np.float32)
    for r0 in range(0, shape[0], block[0]):
        for c0 in range(0, shape[1], block[1]):
            er, ec = min(block[0], shape[0] - r0), min(block[1], shape[1] - c0)
            kind = rng.integers(5)  # empty, full, row-full, column-full, random
            nr = [0, er, er, rng.integers(1, er + 1), rng.integers(1, er + 1)][kind]
            nc = [0, ec, rng.integers(1, ec + 1), ec, rng.integers(1, ec + 1)][kind]
            rows = r0 + np.sort(rng.choice(er, size=nr, replace=False))
            cols = c0 + np.sort(rng.choice(ec, size=nc, replace=False))
            w[np.ix_(rows, cols)] = rng.choice([-1.0, 1.0], (nr, nc)) * rng.uniform(
                0.5, 2.0, (nr, nc)
            )
    return w


@settings(max_examples=150, deadline=None)
@given(bcr_matrices())
def test_random_matrices_round_trip_exactly(case: tuple) -> None:
    grids, perms, block = case
    dense = []
    for grid, perm in zip(grids, perms, strict=True):
        dense.append(np.empty_like(grid))
        dense[-1][perm] = grid  # the structure is planted in the permuted row space
    mats = [BCRMatrix.from_dense(w, block, p) for w, p in zip(dense, perms, strict=True)]
    for mat, w in zip(mats, dense, strict=True):
        assert mat.stored_values() == np.count_nonzero(w)  # planted values are nonzero
    _check_round_trip(mats, dense)


# --------------------------------------------------------------------------
# corrupt input


def _general() -> dict[str, np.ndarray]:
    """A packed 6x10 matrix in 4x8 blocks with listed counts and stored rows and cols."""
    w = np.zeros((6, 10), np.float32)
    w[np.ix_([0, 2], [1, 5])] = 1.0
    w[4, 9] = 2.0
    return pack([BCRMatrix.from_dense(w, (4, 8), np.array([0, 1, 2, 3, 5, 4]))])


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda a: a["head"].__setitem__(0, 1), "layout version 1 \\(expected 2\\)"),
        (
            lambda a: a["head"].__setitem__(3, 11),
            "describes a 6x11 matrix in 4x8 blocks, expected 6x10 in 4x8",
        ),
        (lambda a: a["head"].__setitem__(1, 0), "at least one group"),
        (lambda a: a["head"].__setitem__(6, 2), "must be -1, -1 or >= 0 with no 'counts'"),
        (lambda a: a.update(counts=a["counts"][:-1]), "'counts' must hold 8 entries"),
        (lambda a: a["counts"].__setitem__(0, 5), "'counts' exceed a block's extent"),
        (lambda a: a["counts"].__setitem__(0, 0), "rows without columns"),
        (lambda a: a.update(rows=a["rows"][:-1]), "'rows' holds 2 indices, the counts need 3"),
        (
            lambda a: a.update(cols=a["cols"].astype(np.float32)),
            "'cols' must be a 1-D array of kind",
        ),
        (
            lambda a: a["rows"].__setitem__(2, 3),
            r"group 0, block \(1, 1\) rows: .* within \[0, 2\)",
        ),
        (lambda a: a.update(perm=a["perm"][:5]), "'perm' length must be 0 or 6"),
        (lambda a: a.update(vals=a["vals"][:-1]), "'vals' holds 4 values, the counts need 5"),
    ],
)
def test_unpack_rejects_corrupt_arrays(corrupt, message: str) -> None:
    arrays = _general()
    assert arrays["head"][6:].tolist() == [-1, -1] and arrays["rows"].tolist() == [0, 2, 1]
    unpack(arrays, (6, 10), (4, 8))
    corrupt(arrays)
    with pytest.raises(BCRFormatError, match=message):
        unpack(arrays, (6, 10), (4, 8))


def test_matrix_rejects_inconsistent_masks() -> None:
    mat = BCRMatrix.from_dense(np.eye(3, dtype=np.float32), (2, 2))
    fields = (mat.shape, mat.block, mat.row_mask, mat.col_mask, mat.values, mat.perm)
    past_edge = mat.row_mask.copy()
    past_edge[1, 0, 1] = True  # row 3 of a 3-row matrix
    with pytest.raises(BCRFormatError, match="row_mask keeps an index past the matrix edge"):
        BCRMatrix(*fields[:2], past_edge, *fields[3:])
    no_cols = mat.col_mask.copy()
    no_cols[0, 0] = False
    with pytest.raises(BCRFormatError, match="rows without columns"):
        BCRMatrix(*fields[:3], no_cols, *fields[4:])
    with pytest.raises(BCRFormatError, match="values must be 1-D float32"):
        BCRMatrix(*fields[:4], mat.values[:-1], mat.perm)
    with pytest.raises(BCRFormatError, match=r"col_mask must be bool \[2, 2, 2\]"):
        BCRMatrix(*fields[:3], mat.col_mask[:, :1], *fields[4:])
