"""The one BCR selection: G stacked (M, K) matrices and a rule -> which weights survive.

Every pruning path (ONNX models, the torch API in grimc.train, the tests)
calls `bcr_mask` or `prune_matrices`; the rule is documented in grimc.prune.
Pure numpy, chunked so VGG-16's fc layers stay within a bounded scratch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from grimc.bcr_format import packed_bytes
from grimc.prune.rules import Settings, balanced_keep, effective_block, round_half_up, split_rate

_CHUNK_ELEMENTS = 1 << 22  # float64 scratch per step: bounds memory on VGG-16's fc layers



@dataclass(frozen=True)
class Grid:
    """An (M, K) matrix cut into S x B blocks of br x bc (edge blocks partial)."""

    m: int
    k: int
    br: int
    bc: int

    @property
    def stripes(self) -> int:
        return -(-self.m // self.br)

    @property
    def bcols(self) -> int:
        return -(-self.k // self.bc)

    def heights(self) -> np.ndarray:
        """(S,) rows in each stripe."""
        return np.minimum(self.br, self.m - self.br * np.arange(self.stripes))

    def widths(self) -> np.ndarray:
        """(B,) columns in each block column."""
        return np.minimum(self.bc, self.k - self.bc * np.arange(self.bcols))

    def valid_rows(self) -> np.ndarray:
        """(S, br): which padded rows exist."""
        return np.arange(self.br)[None, :] < self.heights()[:, None]

    def valid_cols(self) -> np.ndarray:
        """(B, bc): which padded columns exist."""
        return np.arange(self.bc)[None, :] < self.widths()[:, None]

    def chunks(self) -> Iterator[tuple[int, int]]:
        """Stripe ranges whose float64 scratch stays within _CHUNK_ELEMENTS."""
        step = max(1, _CHUNK_ELEMENTS // (self.br * self.bcols * self.bc))
        for s0 in range(0, self.stripes, step):
            yield s0, min(s0 + step, self.stripes)

    def squares(self, w: np.ndarray, s0: int, s1: int) -> np.ndarray:
        """Squared entries of stripes [s0, s1), zero-padded: (n, br, B, bc) float64."""
        r0, r1 = s0 * self.br, min(s1 * self.br, self.m)
        out = np.zeros(((s1 - s0) * self.br, self.bcols * self.bc))
        out[: r1 - r0, : self.k] = np.square(w[r0:r1], dtype=np.float64)
        return out.reshape(s1 - s0, self.br, self.bcols, self.bc)


@dataclass(frozen=True)
class Pruned:
    """Pruned matrices and what each block keeps."""

    mats: np.ndarray
    """(G, M, K), the input dtype."""
    mask: np.ndarray
    """(G, M, K) bool: the surviving weights (kept zeros included)."""
    rows: np.ndarray
    """(G, S, B) kept rows per block."""
    cols: np.ndarray
    """(G, S, B) kept columns per block (0 where the block keeps no row)."""
    block: tuple[int, int]

    @property
    def values(self) -> int:
        return int((self.rows * self.cols).sum())

    def bcrc_bytes(self) -> int:
        """Bytes of `grimc.bcr_format.pack` of these G matrices (values + indices)."""
        return packed_bytes(self.rows, self.cols, self.mats.shape[1:], self.block, permuted=False)


def _top_k(scores: np.ndarray, k: np.ndarray, axis: int) -> np.ndarray:
    """Mask of the k largest scores along `axis` (ties: lower index); -inf never wins a tie."""
    order = np.argsort(-scores, axis=axis, kind="stable")
    return np.argsort(order, axis=axis, kind="stable") < k


def _global_top(scores: np.ndarray, entries: np.ndarray, density: float) -> np.ndarray:
    """Mask of the best-scored units whose entries total nearest `density` of all.

    Units with score -inf do not exist (padding, empty blocks). At least one
    unit is kept so a layer never vanishes.
    """
    flat = scores.ravel()
    sizes = np.broadcast_to(entries, scores.shape).ravel()
    order = np.argsort(-flat, kind="stable")
    order = order[: int(np.count_nonzero(np.isfinite(flat)))]
    mask = np.zeros(flat.shape, dtype=bool)
    if len(order) == 0:
        return mask.reshape(scores.shape)
    total = np.cumsum(sizes[order])
    keep = int(np.argmin(np.abs(total - density * total[-1]))) + 1
    mask[order[:keep]] = True
    return mask.reshape(scores.shape)


def _column_scores(mats: np.ndarray, grid: Grid) -> np.ndarray:
    """(G, S, B, bc) block-column sums of squares."""
    out = np.zeros((len(mats), grid.stripes, grid.bcols, grid.bc))
    for g, w in enumerate(mats):
        for s0, s1 in grid.chunks():
            out[g, s0:s1] = grid.squares(w, s0, s1).sum(axis=1)
    return out


def _row_scores(mats: np.ndarray, grid: Grid, cmask: np.ndarray) -> np.ndarray:
    """(G, S, br, B) block-row sums of squares over the kept columns."""
    out = np.zeros((len(mats), grid.stripes, grid.br, grid.bcols))
    for g, w in enumerate(mats):
        for s0, s1 in grid.chunks():
            kept = cmask[g, s0:s1].astype(np.float64)
            out[g, s0:s1] = np.einsum("nrbc,nbc->nrb", grid.squares(w, s0, s1), kept)
    return out


def _partial_counts(extent: np.ndarray, full: int, k: int) -> np.ndarray:
    """Kept count per block along one axis: k for full blocks, proportional for edges."""
    scaled = np.clip(round_half_up(extent * k / full), 1, np.minimum(k, extent))
    return np.where(extent == full, k, scaled)


def _select_balanced(mats: np.ndarray, grid: Grid, keep: tuple[int, int]) -> tuple:
    kr, kc = keep
    col = _column_scores(mats, grid)
    col[:, :, ~grid.valid_cols()] = -np.inf
    cmask = _top_k(col, _partial_counts(grid.widths(), grid.bc, kc)[None, None, :, None], -1)
    row = _row_scores(mats, grid, cmask)
    row[:, ~grid.valid_rows()] = -np.inf
    rmask = _top_k(row, _partial_counts(grid.heights(), grid.br, kr)[None, :, None, None], 2)
    return cmask, rmask


def _select_unbalanced(mats: np.ndarray, grid: Grid, settings: Settings) -> tuple:
    col_density, row_density = split_rate(settings, (grid.br, grid.bc))
    heights = grid.heights()[None, :, None, None]
    col = _column_scores(mats, grid) / heights
    col[:, :, ~grid.valid_cols()] = -np.inf
    cmask = _global_top(col, heights, col_density)
    if row_density is None:  # rate mode: rows make up what the columns did not reach
        reached = (cmask * heights).sum() / mats.size
        row_density = min(1.0, settings.density / reached) if reached else 1.0
    kept_cols = cmask.sum(axis=-1)[:, :, None, :]  # (G, S, 1, B)
    with np.errstate(divide="ignore", invalid="ignore"):
        row = _row_scores(mats, grid, cmask) / kept_cols
    row[(kept_cols == 0) | ~grid.valid_rows()[None, :, :, None]] = -np.inf
    rmask = _global_top(row, kept_cols, row_density)
    return cmask, rmask


def prune_matrices(mats: np.ndarray, block: tuple[int, int], settings: Settings) -> Pruned:
    """Prune G stacked (M, K) matrices into BCR with (effective) `block`.

    `block` must not exceed (M, K); see `effective_block`.
    """
    _, m, k = mats.shape
    grid = Grid(m, k, *block)
    if settings.balanced:
        cmask, rmask = _select_balanced(mats, grid, balanced_keep(settings, block))
    else:
        cmask, rmask = _select_unbalanced(mats, grid, settings)
    rows = rmask.sum(axis=2)  # (G, S, B)
    cmask &= (rows > 0)[..., None]  # a block without rows keeps no columns either
    mask = np.zeros(mats.shape, dtype=bool)
    for g in range(len(mats)):
        for s0, s1 in grid.chunks():
            keep = rmask[g, s0:s1, :, :, None] & cmask[g, s0:s1, None, :, :]
            r0, r1 = s0 * grid.br, min(s1 * grid.br, m)
            mask[g, r0:r1] = keep.reshape((s1 - s0) * grid.br, grid.bcols * grid.bc)[: r1 - r0, :k]
    out = np.where(mask, mats, np.zeros((), dtype=mats.dtype))
    return Pruned(out, mask, rows, cmask.sum(axis=-1), block)


def bcr_mask(mats: np.ndarray, settings: Settings) -> np.ndarray:
    """The BCR mask of one (M, K) matrix or G stacked ones under `settings`.

    The nominal block is clipped to the matrix (`effective_block`); the mask
    has the shape of `mats`. Non-finite weights are the caller's to refuse.
    """
    array = np.asarray(mats)
    stacked = array if array.ndim == 3 else array[None]
    if stacked.ndim != 3 or min(stacked.shape[1:]) < 1:
        raise ValueError(f"bcr_mask: expected (M, K) or (G, M, K) weights, got {array.shape}")
    block = effective_block(settings.block, stacked.shape[1:])
    mask = prune_matrices(stacked, block, settings).mask
    return mask if array.ndim == 3 else mask[0]
