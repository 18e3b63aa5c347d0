"""`grimc ops`: the ONNX operators grimc imports, one per line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def main(argv: Sequence[str]) -> int:
    from grimc.frontend.context import supported_ops

    argparse.ArgumentParser(prog="grimc ops", description=__doc__).parse_args(argv)
    print("\n".join(supported_ops()))
    return 0
