"""`grimc passes`: the registered passes, one per line with its first docstring line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def main(argv: Sequence[str]) -> int:
    from grimc.universe import PASSES

    argparse.ArgumentParser(prog="grimc passes", description=__doc__).parse_args(argv)
    for name, loader in PASSES.items():
        doc = (loader().__doc__ or "").strip().splitlines()
        print(f"{name:28s} {doc[0] if doc else ''}")
    return 0
