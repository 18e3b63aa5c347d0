"""`grimc prune`: BCR-prune a dense ONNX model (the command lives in grimc.prune)."""

from __future__ import annotations

from collections.abc import Sequence

from grimc.progress import set_quiet

QUIET_FLAGS = ("-q", "--quiet")


def main(argv: Sequence[str]) -> int:
    from grimc.prune import prune_main

    set_quiet(any(a in QUIET_FLAGS for a in argv))
    return prune_main([a for a in argv if a not in QUIET_FLAGS])
