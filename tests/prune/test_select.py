"""The one BCR selection (`grimc.prune.bcr_mask`): whatever the shape and rule, the mask is
exactly BCR -- in every block a product of kept rows and kept columns -- with the counts
the rule promises, including rate 1 and layers smaller than a block."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from grimc.prune import Settings, balanced_keep, bcr_mask, effective_block, prune_matrices

PROPERTY = settings(max_examples=80, deadline=None)


def block_sets(mask: np.ndarray, block: tuple[int, int]):
    """(kept rows, kept cols, block mask) of every block of one (M, K) mask."""
    br, bc = block
    for r0 in range(0, mask.shape[0], br):
        for c0 in range(0, mask.shape[1], bc):
            sub = mask[r0 : r0 + br, c0 : c0 + bc]
            yield sub.any(axis=1), sub.any(axis=0), sub


def assert_exact_bcr(mask: np.ndarray, block: tuple[int, int]) -> None:
    for rows, cols, sub in block_sets(mask, block):
        np.testing.assert_array_equal(sub, np.outer(rows, cols))


def edge_count(extent: int, full: int, k: int) -> int:
    if extent == full:
        return k
    return int(min(max(np.floor(extent * k / full + 0.5), 1), k, extent))


@st.composite
def rules(draw) -> Settings:
    block = (draw(st.integers(1, 20)), draw(st.integers(1, 20)))
    balanced = draw(st.booleans())
    mode = draw(st.sampled_from(["rate", "one", "rates"]))
    if mode == "one":
        return Settings(block=block, rate=1.0, balanced=balanced)
    if mode == "rate":
        top = block[0] * block[1] if balanced else 64.0
        return Settings(block=block, rate=draw(st.floats(1.0, float(top))), balanced=balanced,
                        row_share=draw(st.sampled_from([0.0, 0.5, 1.0])))
    return Settings(block=block, rate=None, col_rate=draw(st.floats(0.0, 0.95)),
                    row_rate=draw(st.floats(0.0, 0.95)), balanced=balanced)


@st.composite
def weights(draw) -> np.ndarray:
    g, m, k = draw(st.integers(1, 3)), draw(st.integers(1, 40)), draw(st.integers(1, 40))
    w = np.random.default_rng(draw(st.integers(0, 2**16))).standard_normal((g, m, k))
    if draw(st.booleans()):  # exact zeros and ties must not break the structure
        w[np.abs(w) < 0.5] = 0.0
    return w.astype(np.float32)


@PROPERTY
@given(weights(), rules())
def test_mask_is_exactly_bcr_with_the_promised_counts(w: np.ndarray, rule: Settings) -> None:
    mask = bcr_mask(w, rule)
    assert mask.shape == w.shape and mask.dtype == bool
    block = effective_block(rule.block, w.shape[1:])
    for g in range(len(w)):
        assert_exact_bcr(mask[g], block)
    assert mask.any()  # a layer never vanishes (unbalanced ranks all groups together)
    if rule.balanced:
        kr, kc = balanced_keep(rule, block)
        for g in range(len(w)):
            for rows, cols, sub in block_sets(mask[g], block):
                assert rows.sum() == edge_count(sub.shape[0], block[0], kr)
                assert cols.sum() == edge_count(sub.shape[1], block[1], kc)
    # the same selection as the ONNX path's prune_matrices, weight for weight
    np.testing.assert_array_equal(prune_matrices(w, block, rule).mask, mask)


@PROPERTY
@given(weights(), st.integers(1, 20), st.integers(1, 20), st.booleans())
def test_rate_one_keeps_everything(w: np.ndarray, br: int, bc: int, balanced: bool) -> None:
    assert bcr_mask(w, Settings(block=(br, bc), rate=1.0, balanced=balanced)).all()


@PROPERTY
@given(weights(), st.integers(2, 8))
def test_layer_smaller_than_its_block_is_one_clipped_block(w: np.ndarray, rate: int) -> None:
    """A block larger than the matrix is the whole matrix: whole rows and columns go."""
    _, m, k = w.shape
    rule = Settings(block=(m + 5, k + 7), rate=float(min(rate, m * k)))
    mask = bcr_mask(w, rule)
    kr, kc = balanced_keep(rule, (m, k))
    for g in range(len(w)):
        rows, cols = mask[g].any(axis=1), mask[g].any(axis=0)
        assert (rows.sum(), cols.sum()) == (kr, kc)
        np.testing.assert_array_equal(mask[g], np.outer(rows, cols))


def test_two_dimensional_weights_give_a_two_dimensional_mask() -> None:
    w = np.random.default_rng(0).standard_normal((16, 32)).astype(np.float32)
    mask = bcr_mask(w, Settings(block=(8, 16), rate=8.0))
    assert mask.shape == (16, 32)
    assert mask.sum() == 16 * 32 // 8
    np.testing.assert_array_equal(mask, bcr_mask(w[None], Settings(block=(8, 16), rate=8.0))[0])
