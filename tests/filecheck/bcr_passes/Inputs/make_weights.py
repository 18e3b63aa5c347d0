"""Regenerate the tiny weight stores of the BCR pass FileCheck tests.

    python tests/filecheck/bcr_passes/Inputs/make_weights.py

Weights with planted BCR structure are pruned by hand here (numpy; grimc only
packs the reorder test's input), so that detection is tested on zeros grimc did not make. The
tests check IR structure; numerics are in tests/bcr/test_bcr_passes.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from grimc.bcr_format import BCRMatrix, pack, store_keys

HERE = Path(__file__).parent


def normal(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Nonzero normal values (never exactly 0, so every kept weight counts)."""
    values = rng.standard_normal(shape).astype(np.float32)
    return np.where(values == 0, np.float32(1), values)


def plant(
    rng: np.random.Generator, w: np.ndarray, block: tuple[int, int], keep: tuple[int, int]
) -> np.ndarray:
    """Keep `keep` random rows x columns of every block of the 2-D `w`, zero the rest."""
    out = np.zeros_like(w)
    for r0 in range(0, w.shape[0], block[0]):
        for c0 in range(0, w.shape[1], block[1]):
            rows = np.arange(r0, min(r0 + block[0], w.shape[0]))
            cols = np.arange(c0, min(c0 + block[1], w.shape[1]))
            rs = rng.choice(rows, min(keep[0], len(rows)), replace=False)
            cs = rng.choice(cols, min(keep[1], len(cols)), replace=False)
            out[np.ix_(rs, cs)] = w[np.ix_(rs, cs)]
    return out


def planted(
    rng: np.random.Generator, shape: tuple[int, ...], block: tuple[int, int], keep: tuple[int, int]
) -> np.ndarray:
    """A weight of `shape` whose GEMM view (rows = shape[0]) has planted BCR structure."""
    w = normal(rng, shape[0], int(np.prod(shape[1:])))
    return plant(rng, w, block, keep).reshape(shape)


def unstructured(rng: np.random.Generator, shape: tuple[int, ...], density: float) -> np.ndarray:
    w = normal(rng, *shape)
    return np.where(rng.random(shape) < density, w, np.float32(0))


def per_group(rng: np.random.Generator, shape: tuple[int, ...], groups: int, **kw) -> np.ndarray:
    """Planted structure per group along the first axis (conv groups, RNN directions)."""
    per = (shape[0] // groups, *shape[1:])
    return np.concatenate([planted(rng, per, **kw) for _ in range(groups)])


def stacked(rng: np.random.Generator, shape: tuple[int, int, int], **kw) -> np.ndarray:
    """RNN W/R [dirs, rows, cols] with planted structure per direction."""
    return np.stack([planted(rng, shape[1:], **kw) for _ in range(shape[0])])


def detect_store(rng: np.random.Generator) -> dict[str, np.ndarray]:
    b816 = {"block": (8, 16), "keep": (8, 4)}
    return {
        "conv_w": planted(rng, (16, 8, 3, 3), **b816),
        "conv_b": normal(rng, 16),
        "dense_w": normal(rng, 16, 8, 3, 3),
        "random_w": unstructured(rng, (16, 8, 3, 3), 0.15),
        "grouped_w": per_group(rng, (32, 4, 3, 3), 2, **b816),
        "dw_w": planted(rng, (16, 1, 3, 3), block=(1, 9), keep=(1, 2)),
        "fc_w": planted(rng, (16, 64), **b816),
        "fc_wt": planted(rng, (16, 64), **b816).T.copy(),
        "fc_b": normal(rng, 16),
        "fc_c_row": normal(rng, 1, 16),
        "fc_c_full": normal(rng, 2, 16),
        "proj_w": planted(rng, (16, 64), block=(4, 16), keep=(4, 2)).T.copy(),
        "gru_w": stacked(rng, (1, 48, 32), **b816),
        "gru_r": stacked(rng, (1, 48, 16), **b816),
        "gru_b": normal(rng, 1, 96),
        "rnn_w": normal(rng, 2, 32, 16),
        "rnn_r": stacked(rng, (2, 32, 32), **b816),
    }


def reorder_store(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A planted 8x16 matrix with shuffled rows, packed as it is (identity perm)."""
    w = planted(rng, (32, 64), block=(8, 16), keep=(8, 4))
    shuffled = w[rng.permutation(32)]
    ordered = planted(rng, (32, 64), block=(8, 16), keep=(8, 4))
    store: dict[str, np.ndarray] = {}
    for prefix, matrix in (("shuffled", shuffled), ("ordered", ordered)):
        arrays = pack([BCRMatrix.from_dense(matrix, (8, 16))])
        store.update({store_keys(prefix)[k]: v for k, v in arrays.items()})
    return store


def main() -> None:
    rng = np.random.default_rng(0)
    np.savez(HERE / "detect.npz", **detect_store(rng))
    np.savez(HERE / "reorder.npz", **reorder_store(rng))


if __name__ == "__main__":
    main()
