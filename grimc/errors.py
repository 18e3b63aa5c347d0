"""User-facing errors: one clear line, no traceback, exit code 2."""


class GrimcError(Exception):
    """An error the user can fix; str() is a single line naming what and where."""

    exit_code = 2
