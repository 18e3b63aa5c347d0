"""Regenerate the weight store of detect_permuted.mlir.

    python tests/filecheck/bcr_passes/Inputs/make_permuted_weights.py

BCR weights pruned by hand (make_weights.py's `planted`) whose output rows
were then shuffled, as a channel permutation or a pruner that regroups rows
leaves them, next to unstructured sparsity of the same density.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from make_weights import normal, planted, unstructured

HERE = Path(__file__).parent


def shuffled(rng: np.random.Generator, w: np.ndarray) -> np.ndarray:
    """`w` with its output rows (first axis) in random order."""
    return w[rng.permutation(w.shape[0])]


def permuted_store(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "conv_w": shuffled(rng, planted(rng, (32, 16, 3, 3), block=(8, 16), keep=(6, 4))),
        "conv_b": normal(rng, 32),
        "fc_w": shuffled(rng, planted(rng, (64, 256), block=(4, 16), keep=(4, 3))),
        "random_w": unstructured(rng, (64, 256), 0.1875),
    }


def main() -> None:
    np.savez(HERE / "permuted.npz", **permuted_store(np.random.default_rng(0)))


if __name__ == "__main__":
    main()
