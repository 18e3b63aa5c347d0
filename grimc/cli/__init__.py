"""`grimc`: compile an ONNX model; inspect the IR on the way.

    grimc model.onnx -o out.c                  C source + header + weight blob
    grimc model.onnx --emit=ir                 print the optimized IR
    grimc model.onnx --print-ir-after-all      dump IR after every pass (stderr)
    grimc <subcommand> ...                     see `grimc --help`

Every user error is one line on stderr and exit code 2; no output file is left
behind. Set GRIMC_DEBUG=1 to get Python tracebacks for internal errors.

This package is the command line only: no grimc module imports it. Each
subcommand lives in its own module, imported when it runs.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from grimc.cli.common import SUBCOMMANDS
from grimc.errors import run_guarded


def dispatch(argv: Sequence[str]) -> int:
    """`grimc SUBCOMMAND ...` runs grimc.cli.SUBCOMMAND; anything else compiles."""
    if argv and argv[0] in SUBCOMMANDS:
        return importlib.import_module(f"grimc.cli.{argv[0]}").main(argv[1:])
    from grimc.cli.compile import main as compile_main

    return compile_main(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return run_guarded(dispatch, list(sys.argv[1:] if argv is None else argv), "grimc")
