"""Regenerate the tiny weight stores used by the graph-pass FileCheck tests.

    python tests/filecheck/graph/Inputs/make_weights.py

The tests only check IR structure (numerics are in tests/unit/test_graph_passes.py),
so the values are arbitrary but fixed; BN variances are positive.
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def normal(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def batch_norm(rng: np.random.Generator, prefix: str, channels: int) -> dict[str, np.ndarray]:
    return {
        f"{prefix}_scale": normal(rng, channels),
        f"{prefix}_bias": normal(rng, channels),
        f"{prefix}_mean": normal(rng, channels),
        f"{prefix}_var": rng.uniform(0.5, 2.0, channels).astype(np.float32),
    }


def main() -> None:
    rng = np.random.default_rng(0)
    np.savez(
        HERE / "bn.npz",
        conv_w=normal(rng, 4, 3, 3, 3),
        conv_b=normal(rng, 4),
        fc_w=normal(rng, 6, 5),
        fc_wt=normal(rng, 5, 6),
        fc_b=normal(rng, 6),
        **batch_norm(rng, "bn", 4),
        **batch_norm(rng, "fc_bn", 6),
    )
    np.savez(
        HERE / "fold.npz",
        w=normal(rng, 3, 4),
        v=normal(rng, 4),
        m=normal(rng, 4, 4),
    )
    np.savez(
        HERE / "gelu.npz",
        inv_sqrt2=np.array([1 / np.sqrt(2)], dtype=np.float32),
        one=np.array([1.0], dtype=np.float32),
        half=np.array([0.5], dtype=np.float32),
        two=np.array([2.0], dtype=np.float32),
    )


if __name__ == "__main__":
    main()
