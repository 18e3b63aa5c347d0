"""`grimc prune`: BCR-prune a dense ONNX model (the command lives in grimc.prune)."""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str]) -> int:
    from grimc.prune import prune_main

    return prune_main(argv)
