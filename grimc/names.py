"""Sanitized identifiers: model names are untrusted input.

Every name that reaches the IR or generated code goes through `sanitize`, which
keeps only `[A-Za-z0-9_]`, never starts with a digit, is bounded in length and
never collides with C keywords or reserved identifiers.
"""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")
MAX_LEN = 48

_C_RESERVED = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if "
    "inline int long register restrict return short signed sizeof static struct switch typedef "
    "union unsigned void volatile while main".split()
)


def sanitize(name: str, fallback: str = "t") -> str:
    """A C-safe identifier derived from `name` (deterministic, not unique)."""
    cleaned = _UNSAFE.sub("_", name).strip("_")
    if len(cleaned) > MAX_LEN:
        digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        cleaned = f"{cleaned[: MAX_LEN - 9]}_{digest}"
    if not cleaned or cleaned[0].isdigit() or cleaned.startswith("_"):
        cleaned = f"{fallback}_{cleaned}" if cleaned else fallback
    if cleaned in _C_RESERVED:
        cleaned = f"{cleaned}_"
    return cleaned


class NameTable:
    """Hands out unique sanitized names; the same input gets the same output."""

    def __init__(self) -> None:
        self._taken: set[str] = set()
        self._given: dict[str, str] = {}

    def unique(self, name: str, fallback: str = "t") -> str:
        if name in self._given:
            return self._given[name]
        base = sanitize(name, fallback)
        candidate, n = base, 1
        while candidate in self._taken:
            candidate = f"{base}_{n}"
            n += 1
        self._taken.add(candidate)
        self._given[name] = candidate
        return candidate

    def fresh(self, hint: str) -> str:
        """A new unique name that is not tied to an input name."""
        base = sanitize(hint)
        candidate, n = base, 1
        while candidate in self._taken:
            candidate = f"{base}_{n}"
            n += 1
        self._taken.add(candidate)
        return candidate

    def reserve(self, name: str) -> None:
        self._taken.add(name)


def quote_for_message(name: str, limit: int = 60) -> str:
    """A model-provided name made safe to print in a one-line diagnostic."""
    text = name.encode("unicode_escape").decode("ascii")
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
