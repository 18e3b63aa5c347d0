"""User-facing errors: one clear line, no traceback, exit code 2; bugs exit 70."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence

INTERNAL_ERROR_EXIT = 70


class GrimcError(Exception):
    """An error the user can fix; str() is a single line naming what and where."""

    exit_code = 2


def run_guarded(func: Callable[[Sequence[str]], int], argv: Sequence[str], prog: str) -> int:
    """Run a command-line entry point, mapping errors to one stderr line and an exit code.

    GrimcError -> its exit code (2: bad input); any other exception is a grimc
    bug -> exit 70 (GRIMC_DEBUG=1 prints the traceback).
    """
    try:
        return func(argv)
    except GrimcError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug in grimc: say so, in one line unless debugging
        if os.environ.get("GRIMC_DEBUG"):
            traceback.print_exc()
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(
            f"{prog}: internal error: {type(exc).__name__}: {detail} "
            "(this is a grimc bug; rerun with GRIMC_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return INTERNAL_ERROR_EXIT


def cannot_write(path: object, exc: OSError) -> GrimcError:
    """A full or read-only file system is the user's to fix, not a grimc bug."""
    return GrimcError(f"{path}: cannot write ({exc.strerror or exc})")
