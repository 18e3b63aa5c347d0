"""User-facing errors: one clear line, no traceback, exit code 2."""


class GrimcError(Exception):
    """An error the user can fix; str() is a single line naming what and where."""

    exit_code = 2


def cannot_write(path: object, exc: OSError) -> GrimcError:
    """A full or read-only file system is the user's to fix, not a grimc bug."""
    return GrimcError(f"{path}: cannot write ({exc.strerror or exc})")
