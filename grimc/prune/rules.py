"""Pruning rules: options and their validation, and how a rate becomes per-block keep counts.

Everything here is shared by every pruning path (ONNX models, the torch API,
the command line), so that one rate means one structure everywhere.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from grimc.errors import GrimcError
from grimc.layers import MIN_SPARSE_WEIGHTS
from grimc.names import quote_for_message

DEFAULT_BLOCK = (8, 16)
DEFAULT_RATE = 8.0
MIN_WEIGHTS = MIN_SPARSE_WEIGHTS
"""Layers with fewer weights stay dense (`grimc.layers` owns the threshold: bcr-detect and
inspect use the same)."""
MIN_K = 32
"""Layers with a shorter GEMM reduction stay dense (RGB stems: 3*3*3 = 27)."""



class PruneError(GrimcError):
    """Bad pruning options, config or weights; one line naming what and where."""


class PruneWarning(UserWarning):
    """Something the user probably did not mean, e.g. a pattern that matches no layer."""




_BLOCK_RE = re.compile(r"\s*(\d+)\s*[xX]\s*(\d+)\s*")


def parse_block(value: object, where: str) -> tuple[int, int]:
    """`"8x16"` or `(8, 16)` -> (rows, cols), both positive."""
    if isinstance(value, str):
        match = _BLOCK_RE.fullmatch(value)
        dims = (int(match[1]), int(match[2])) if match else None
    elif isinstance(value, Sequence) and len(value) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        dims = (int(value[0]), int(value[1]))
    else:
        dims = None
    if dims is None or min(dims) < 1:
        raise PruneError(
            f"{where}: block {show(value)}: expected ROWSxCOLS with positive integers, e.g. 8x16"
        )
    return dims


def show(value: object) -> str:
    return quote_for_message(value) if isinstance(value, str) else repr(value)


def _number(value: object, where: str, what: str, lo: float, hi: float, hi_open: bool) -> float:
    """A finite real in [lo, hi] (or [lo, hi)); strings are parsed (CLI)."""
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise PruneError(f"{where}: {what} {show(value)} is not a number") from None
    above = number >= hi if hi_open else number > hi
    if not math.isfinite(number) or number < lo or above:
        bound = f"in [{lo:g}, {hi:g})" if hi_open else f"in [{lo:g}, {hi:g}]"
        if math.isinf(hi):
            bound = f"at least {lo:g}"
        raise PruneError(f"{where}: {what} {number:g} must be {bound}")
    return number


def _count(value: object, where: str, what: str) -> int:
    number = _number(value, where, what, 0, math.inf, False)
    if number != int(number):
        raise PruneError(f"{where}: {what} {number:g} must be a whole number")
    return int(number)


def _check_rate(value: object, where: str) -> float:
    try:
        return _number(value, where, "rate", 1.0, math.inf, False)
    except PruneError as exc:
        if "must be" in str(exc):
            raise PruneError(
                f"{where}: rate {show(value)} must be at least 1 (compression = 1 / density; "
                "use col_rate/row_rate for pruned fractions)"
            ) from None
        raise


_VALIDATORS: dict[str, Any] = {
    "block": parse_block,
    "rate": _check_rate,
    "col_rate": lambda v, w: _number(v, w, "col_rate", 0.0, 1.0, True),
    "row_rate": lambda v, w: _number(v, w, "row_rate", 0.0, 1.0, True),
    "row_share": lambda v, w: _number(v, w, "row_share", 0.0, 1.0, False),
    "min_weights": lambda v, w: _count(v, w, "min_weights"),
    "min_k": lambda v, w: _count(v, w, "min_k"),
}


def _check_bool(value: object, where: str, what: str) -> bool:
    if not isinstance(value, bool):
        raise PruneError(f"{where}: {what} must be true or false, not {show(value)}")
    return value


LAYER_KEYS = ("block", "rate", "col_rate", "row_rate", "row_share", "balanced", "dense")
DEFAULT_KEYS = ("block", "rate", "col_rate", "row_rate", "row_share", "balanced", "min_weights",
                "min_k")


def validate_options(values: Mapping[str, object], where: str, keys: Sequence[str]) -> dict:
    """Check and normalize a partial settings mapping (config entry, API or CLI)."""
    out: dict[str, object] = {}
    for key, value in values.items():
        if key not in keys:
            raise PruneError(f"{where}: unknown key {show(key)} (expected one of {', '.join(keys)})")
        if key in ("balanced", "dense"):
            out[key] = _check_bool(value, where, key)
        else:
            out[key] = _VALIDATORS[key](value, where)
    if "rate" in out and ({"col_rate", "row_rate"} & out.keys()):
        raise PruneError(f"{where}: give either rate or col_rate/row_rate, not both")
    return out


def merge_options(base: Mapping[str, object], update: Mapping[str, object]) -> dict:
    """`base` overridden by `update`; a rate replaces col/row rates and vice versa."""
    merged = dict(base)
    if "rate" in update:
        merged.pop("col_rate", None)
        merged.pop("row_rate", None)
    if {"col_rate", "row_rate"} & update.keys():
        merged.pop("rate", None)
    merged.update(update)
    return merged


@dataclass(frozen=True)
class Settings:
    """How one layer is pruned: nominal block, rate (or col/row rates), mode."""

    block: tuple[int, int] = DEFAULT_BLOCK
    rate: float | None = DEFAULT_RATE
    col_rate: float = 0.0
    row_rate: float = 0.0
    row_share: float = 0.0
    balanced: bool = True

    @classmethod
    def from_options(cls, options: Mapping[str, object]) -> Settings:
        fields = {k: v for k, v in options.items() if k in cls.__dataclass_fields__}
        if "col_rate" in fields or "row_rate" in fields:
            fields["rate"] = None
        return cls(**fields)  # type: ignore[arg-type]

    @property
    def density(self) -> float:
        """Target fraction of weights kept."""
        if self.rate is not None:
            return 1.0 / self.rate
        return (1.0 - self.col_rate) * (1.0 - self.row_rate)

    def check_reachable(self, where: str = "") -> None:
        """Balanced blocks keep at least one row and one column: density >= 1/(br*bc)."""
        cells = self.block[0] * self.block[1]
        if self.balanced and self.rate is not None and self.rate > cells:
            raise PruneError(
                f"{where}{': ' if where else ''}rate {self.rate:g} is out of reach of balanced {fmt_block(self.block)} "
                f"blocks, which keep at least 1 of {cells} weights (use a larger block, "
                "a smaller rate or unbalanced pruning)"
            )


def fmt_block(block: Sequence[int]) -> str:
    return f"{block[0]}x{block[1]}"


def round_half_up(x: np.ndarray | float) -> np.ndarray:
    """Round half up (Python's round() goes to even: 2.5 -> 2)."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)


def split_rate(settings: Settings, block: tuple[int, int]) -> tuple[float, float | None]:
    """(column density, row density) targets; row None = make up the total (rate mode)."""
    if settings.rate is None:
        return 1.0 - settings.col_rate, 1.0 - settings.row_rate
    col_compression = min(settings.rate ** (1.0 - settings.row_share), float(block[1]))
    return 1.0 / col_compression, None


def balanced_keep(settings: Settings, block: tuple[int, int]) -> tuple[int, int]:
    """(rows, cols) every full `block` keeps in balanced mode (module docstring rule)."""
    br, bc = block
    col_density, row_density = split_rate(settings, block)
    kc = int(np.clip(round_half_up(bc * col_density), 1, bc))
    if row_density is None:
        row_density = settings.density / (kc / bc)
    kr = int(np.clip(round_half_up(br * row_density), 1, br))
    return kr, kc



def effective_block(block: tuple[int, int], matrix: tuple[int, int]) -> tuple[int, int]:
    """A block dimension larger than the matrix means the whole extent."""
    return min(block[0], matrix[0]), min(block[1], matrix[1])


def label_text(text: str) -> str:
    """A file name or label as it may appear in a one-line message."""
    plain = text.isprintable() and 0 < len(text) <= 200
    return text if plain else quote_for_message(text, 200)
