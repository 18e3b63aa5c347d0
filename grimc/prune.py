"""Magnitude-based BCR pruning of a dense ONNX model (`grimc prune`, `prune_model`).

**What is pruned** (docs/bcr.md). Every weight initializer of a Conv, of a
Gemm/MatMul with constant B, and the W and R of GRU/LSTM/RNN, viewed as GEMM
matrices with rows = outputs:

- Conv ``[Cout, Cin/g, kh, kw]`` -> g matrices ``(Cout/g, Cin/g*kh*kw)``;
- Gemm/MatMul ``B [K, N]`` -> ``W = B^T (N, K)`` (Gemm transB=1: ``W = B``);
- GRU/LSTM/RNN ``W [dirs, G*H, I]`` / ``R [dirs, G*H, H]`` -> one matrix per
  direction; the layer names are ``<node>:W`` and ``<node>:R``.

A layer is named after its node (the weight's name when the node has none);
patterns (`fnmatch` globs) match the layer name or the weight's name. A weight
shared by several nodes is pruned once, in the view of its first consumer.

**How.** Each matrix is cut into ``br x bc`` blocks (edge blocks partial). In
each block, first the block-columns with the largest L2 norm are kept, then,
among the kept columns, the block-rows with the largest L2 norm; the rest
becomes 0. What survives is ``kept_rows x kept_cols`` per block, exactly the
structure `grimc.bcr_format.BCRMatrix.from_dense` detects (kept weights that
were already 0 stay 0, so it may detect fewer). Ties keep the lower index.

- *Balanced* (default): every full block keeps ``kc`` columns and ``kr`` rows
  (per-block top-k). A partial edge block keeps ``round(extent * k / full)``,
  at least 1 and at most k.
- *Unbalanced*: one global ranking per layer (all groups/directions together):
  block-columns by RMS (L2 / sqrt(length), which is the L2 order inside a
  full stripe and fair to partial edge blocks) until the kept entries are
  nearest to the column density, then block-rows (scored on the kept columns)
  likewise for the row density. Blocks may end up empty.
- A block dimension larger than the matrix is clipped to it: ``br >= M`` drops
  whole input columns of W, ``bc >= K`` whole output rows (filters), both is
  whole-matrix column+row pruning. The report shows the effective block.

**Rates.** Column rate ``pc`` and row rate ``pr`` (pruned fractions) give
density ``(1-pc)(1-pr)``; ``--col-rate/--row-rate`` set them. ``--rate R`` asks
for compression R = 1/density and splits it (the default rule):

    column compression Rc = min(R ** (1 - row_share), bc)     row_share default 0
    kc = clamp(round(bc / Rc), 1, bc)
    kr = clamp(round(br * bc / (R * kc)), 1, br)

so with the default row_share 0 the whole rate is column pruning while
``R <= bc`` (and bc/R is a whole number), and row pruning makes up the rest:
beyond bc (one column per block) and the rounding of kc. 8x16 blocks: R=8 keeps
8x2, R=16 8x1, R=32 4x1, R=10 6x2. ``row_share`` 0.5 splits R evenly in log
space. Balanced blocks cannot go below 1/(br*bc), so a larger R is an error
(a warning when only a layer's clipped block is that small: it gets 1x1).

**Dense by default**: depthwise convs (Cin/g == 1), layers with a GEMM
reduction K < 32 (stems over RGB input: 3*3*3 = 27) and layers with fewer than
4096 weights. ``include``/``exclude`` patterns and a config entry's ``dense``
override these rules (precedence: exclude, include, config, rules).

**Config file** (TOML)::

    [defaults]                 # optional; same keys as the CLI options
    block = "8x16"
    rate = 8

    [layers]                   # pattern -> settings, or "dense"
    "conv_*" = { block = "4x16", col_rate = 0.75, row_rate = 0.5 }
    "conv_3" = { rate = 16, balanced = false }
    "gemm_0" = "dense"
    "conv_0" = { dense = false }    # prune although the rules keep it dense

Keys: block, rate, col_rate, row_rate, row_share, balanced, dense (and
min_weights, min_k in [defaults]). Every matching glob entry applies in file
order, then exact names; later keys override earlier ones, and setting
``rate`` replaces col_rate/row_rate and vice versa. Precedence overall:
built-in defaults < [defaults] < CLI options / API arguments < [layers].

Bytes are counted as grimc stores weights: float32 values, and for pruned
layers the BCRC index arrays (`grimc.bcr_format`).
"""

from __future__ import annotations

import argparse
import fnmatch
import math
import os
import re
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from grimc.bcr_format import packed_bytes
from grimc.errors import GrimcError
from grimc.names import quote_for_message

DEFAULT_BLOCK = (8, 16)
DEFAULT_RATE = 8.0
MIN_WEIGHTS = 4096
"""Layers with fewer weights stay dense: too little work to gain from sparsity."""
MIN_K = 32
"""Layers with a shorter GEMM reduction stay dense (RGB stems: 3*3*3 = 27)."""

RNN_OPS = ("GRU", "LSTM", "RNN")
FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE)
_WORD = 4  # bytes per float32 value / int32 index, as grimc stores weights
_CHUNK_ELEMENTS = 1 << 22  # float64 scratch per step: bounds memory on VGG-16's fc layers


class PruneError(GrimcError):
    """Bad pruning options, config or weights; one line naming what and where."""


class PruneWarning(UserWarning):
    """Something the user probably did not mean, e.g. a pattern that matches no layer."""


# ---------------------------------------------------------------------------------------
# options


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
            f"{where}: block {_show(value)}: expected ROWSxCOLS with positive integers, e.g. 8x16"
        )
    return dims


def _show(value: object) -> str:
    return quote_for_message(value) if isinstance(value, str) else repr(value)


def _number(value: object, where: str, what: str, lo: float, hi: float, hi_open: bool) -> float:
    """A finite real in [lo, hi] (or [lo, hi)); strings are parsed (CLI)."""
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise PruneError(f"{where}: {what} {_show(value)} is not a number") from None
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
                f"{where}: rate {_show(value)} must be at least 1 (compression = 1 / density; "
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
        raise PruneError(f"{where}: {what} must be true or false, not {_show(value)}")
    return value


LAYER_KEYS = ("block", "rate", "col_rate", "row_rate", "row_share", "balanced", "dense")
DEFAULT_KEYS = ("block", "rate", "col_rate", "row_rate", "row_share", "balanced", "min_weights",
                "min_k")


def validate_options(values: Mapping[str, object], where: str, keys: Sequence[str]) -> dict:
    """Check and normalize a partial settings mapping (config entry, API or CLI)."""
    out: dict[str, object] = {}
    for key, value in values.items():
        if key not in keys:
            raise PruneError(f"{where}: unknown key {_show(key)} (expected one of {', '.join(keys)})")
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
                f"{where}{': ' if where else ''}rate {self.rate:g} is out of reach of balanced {_fmt_block(self.block)} "
                f"blocks, which keep at least 1 of {cells} weights (use a larger block, "
                "a smaller rate or unbalanced pruning)"
            )


def _fmt_block(block: Sequence[int]) -> str:
    return f"{block[0]}x{block[1]}"


def _round(x: np.ndarray | float) -> np.ndarray:
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
    kc = int(np.clip(_round(bc * col_density), 1, bc))
    if row_density is None:
        row_density = settings.density / (kc / bc)
    kr = int(np.clip(_round(br * row_density), 1, br))
    return kr, kc


# ---------------------------------------------------------------------------------------
# layers of a model


@dataclass(frozen=True)
class Layer:
    """A prunable weight: where it is and how it maps to GEMM matrices (G, M, K)."""

    name: str
    op: str
    weight: str
    index: int
    """Position in graph.initializer."""
    layout: str
    """"conv", "w" (matrix as stored: Gemm transB=1, RNN W/R) or "b" (W = B^T)."""
    shape: tuple[int, ...]
    """The initializer's shape."""
    groups: int
    matrix: tuple[int, int]
    """(M, K) of one group."""
    depthwise: bool = False

    @property
    def weights(self) -> int:
        return self.groups * self.matrix[0] * self.matrix[1]

    def gemm_view(self, array: np.ndarray) -> np.ndarray:
        """The initializer as G stacked (M, K) matrices (a view where possible)."""
        if self.layout == "b":
            return array.T[None]
        return array.reshape(self.groups, *self.matrix)

    def from_gemm_view(self, mats: np.ndarray) -> np.ndarray:
        if self.layout == "b":
            return np.ascontiguousarray(mats[0].T)
        return mats.reshape(self.shape)


def _attr(node: onnx.NodeProto, name: str, default: int) -> int:
    for attr in node.attribute:
        if attr.name == name:
            return int(helper.get_attribute_value(attr))
    return default


def _layer_views(node: onnx.NodeProto, dims: Mapping[str, tuple[int, ...]]) -> Iterator[tuple]:
    """(input slot, suffix, layout, groups, matrix, depthwise) of each prunable weight."""
    op = node.op_type
    inputs = list(node.input)

    def const(slot: int) -> tuple[int, ...] | None:
        return dims.get(inputs[slot]) if len(inputs) > slot and inputs[slot] else None

    if op == "Conv" and (shape := const(1)) and len(shape) >= 3:
        groups = _attr(node, "group", 1)
        if groups >= 1 and shape[0] % groups == 0:
            k = math.prod(shape[1:])
            yield 1, "", "conv", groups, (shape[0] // groups, k), groups > 1 and shape[1] == 1
    elif op in ("Gemm", "MatMul") and (shape := const(1)) and len(shape) == 2:
        if op == "Gemm" and _attr(node, "transB", 0):
            yield 1, "", "w", 1, (shape[0], shape[1]), False
        else:
            yield 1, "", "b", 1, (shape[1], shape[0]), False
    elif op in RNN_OPS:
        for slot, suffix in ((1, ":W"), (2, ":R")):
            if (shape := const(slot)) and len(shape) == 3:
                yield slot, suffix, "w", shape[0], (shape[1], shape[2]), False


def find_layers(model: onnx.ModelProto) -> list[Layer]:
    """Prunable float weights in graph order (main graph; subgraphs are left alone)."""
    graph = model.graph
    index = {t.name: i for i, t in enumerate(graph.initializer) if t.data_type in FLOAT_TYPES}
    dims = {name: tuple(int(d) for d in graph.initializer[i].dims) for name, i in index.items()}
    layers: list[Layer] = []
    seen_weights: set[str] = set()
    used_names: set[str] = set()
    for node in graph.node:
        for slot, suffix, layout, groups, matrix, depthwise in _layer_views(node, dims):
            weight = node.input[slot]
            if weight in seen_weights or min(matrix) < 1:
                continue
            seen_weights.add(weight)
            name = f"{node.name}{suffix}" if node.name else weight
            base, n = name, 2
            while name in used_names:
                name, n = f"{base}#{n}", n + 1
            used_names.add(name)
            layers.append(
                Layer(name, node.op_type, weight, index[weight], layout, dims[weight], groups,
                      matrix, depthwise)
            )
    return layers


def matches(layer: Layer, pattern: str) -> bool:
    return fnmatch.fnmatchcase(layer.name, pattern) or fnmatch.fnmatchcase(layer.weight, pattern)


# ---------------------------------------------------------------------------------------
# config file


_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class ConfigEntry:
    pattern: str
    options: dict
    where: str
    """`file:line` for messages."""

    @property
    def is_glob(self) -> bool:
        return bool(_GLOB_CHARS & set(self.pattern))


@dataclass(frozen=True)
class PruneConfig:
    """A parsed per-layer configuration (see the module docstring for the format)."""

    defaults: dict = field(default_factory=dict)
    entries: tuple[ConfigEntry, ...] = ()

    @classmethod
    def load(cls, path: str | os.PathLike) -> PruneConfig:
        label = os.fspath(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise PruneError(f"{_label(label)}: cannot read config ({reason})") from None
        return cls.parse(text, label)

    @classmethod
    def parse(cls, text: str, label: str = "<config>") -> PruneConfig:
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            try:
                import tomli as tomllib  # type: ignore[no-redef]
            except ModuleNotFoundError:
                raise PruneError("config files need Python >= 3.11 (tomllib) or tomli") from None
        label = _label(label)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            return _raise_toml(exc, label)
        return cls.from_mapping(data, label, text)

    @classmethod
    def from_mapping(cls, data: Mapping, label: str = "<config>", text: str = "") -> PruneConfig:
        lines = text.splitlines()
        extra = sorted(set(data) - {"defaults", "layers"})
        if extra:
            where = _where(label, lines, r"^\s*\[?\s*" + re.escape(str(extra[0])))
            raise PruneError(
                f"{where}: unknown table {_show(extra[0])} (expected [defaults] and [layers])"
            )
        defaults = data.get("defaults", {})
        layers = data.get("layers", {})
        for name, table in (("defaults", defaults), ("layers", layers)):
            if not isinstance(table, Mapping):
                where = _where(label, lines, rf"^\s*{name}\s*=")
                raise PruneError(f"{where}: '{name}' must be a table")
        checked_defaults = _check_defaults(defaults, label, lines)
        entries = []
        for pattern, value in layers.items():
            where = _where(label, lines, _entry_regex(pattern))
            if value == "dense":
                options: Mapping = {"dense": True}
            elif isinstance(value, Mapping):
                options = value
            else:
                raise PruneError(
                    f"{where}: layer {_show(pattern)}: expected a table of settings or \"dense\", "
                    f"not {_show(value)}"
                )
            checked = validate_options(options, f"{where}: layer {_show(pattern)}", LAYER_KEYS)
            entries.append(ConfigEntry(pattern, checked, where))
        return cls(checked_defaults, tuple(entries))

    def options_for(self, layer: Layer) -> dict:
        """Merged options of the entries matching `layer` (globs in order, then exact)."""
        merged: dict = {}
        ordered = [e for e in self.entries if e.is_glob] + [e for e in self.entries if not e.is_glob]
        for entry in ordered:
            if matches(layer, entry.pattern):
                merged = merge_options(merged, entry.options)
        return merged


def _check_defaults(defaults: Mapping, label: str, lines: Sequence[str]) -> dict:
    """Validate [defaults] key by key, so that errors point at the key's line."""
    header = _where(label, lines, r"^\s*\[\s*defaults\s*\]")
    start = int(header.rpartition(":")[2]) if header != label else 0
    checked: dict = {}
    for key, value in defaults.items():
        where = _where(label, lines, rf"^\s*{re.escape(str(key))}\s*=", start) if start else label
        checked.update(validate_options({key: value}, where, DEFAULT_KEYS))
    return validate_options(checked, header, DEFAULT_KEYS)


def _raise_toml(exc: Exception, label: str) -> PruneConfig:
    message = str(exc).splitlines()[0]
    found = re.search(r"\(at line (\d+), column (\d+)\)", message)
    if found:
        message = message[: found.start()].strip()
        raise PruneError(f"{label}:{found[1]}:{found[2]}: invalid TOML: {message}") from None
    raise PruneError(f"{label}: invalid TOML: {message}") from None


def _entry_regex(pattern: str) -> str:
    """A line that defines `pattern` as a key: `"p" = ...`, `p = ...`, `[layers."p"]`."""
    quoted = re.escape(pattern)
    return rf"""(^|[\s.\[])(["']{quoted}["']|{quoted})\s*(=|\])"""


def _where(label: str, lines: Sequence[str], regex: str, start: int = 0) -> str:
    """`file:line` of the first line after line `start` matching `regex`, or just `file`."""
    compiled = re.compile(regex)
    for number, line in enumerate(lines, 1):
        if number > start and compiled.search(line):
            return f"{label}:{number}"
    return label


def _label(text: str) -> str:
    plain = text.isprintable() and 0 < len(text) <= 200
    return text if plain else quote_for_message(text, 200)


def _load_config(config: PruneConfig | Mapping | str | os.PathLike | None) -> PruneConfig:
    if config is None:
        return PruneConfig()
    if isinstance(config, PruneConfig):
        return config
    if isinstance(config, Mapping):
        return PruneConfig.from_mapping(config)
    return PruneConfig.load(config)


# ---------------------------------------------------------------------------------------
# the pruning core (pure numpy)


@dataclass(frozen=True)
class Grid:
    """An (M, K) matrix cut into S x B blocks of br x bc (edge blocks partial)."""

    m: int
    k: int
    br: int
    bc: int

    @property
    def stripes(self) -> int:
        return -(-self.m // self.br)

    @property
    def bcols(self) -> int:
        return -(-self.k // self.bc)

    def heights(self) -> np.ndarray:
        """(S,) rows in each stripe."""
        return np.minimum(self.br, self.m - self.br * np.arange(self.stripes))

    def widths(self) -> np.ndarray:
        """(B,) columns in each block column."""
        return np.minimum(self.bc, self.k - self.bc * np.arange(self.bcols))

    def valid_rows(self) -> np.ndarray:
        """(S, br): which padded rows exist."""
        return np.arange(self.br)[None, :] < self.heights()[:, None]

    def valid_cols(self) -> np.ndarray:
        """(B, bc): which padded columns exist."""
        return np.arange(self.bc)[None, :] < self.widths()[:, None]

    def chunks(self) -> Iterator[tuple[int, int]]:
        """Stripe ranges whose float64 scratch stays within _CHUNK_ELEMENTS."""
        step = max(1, _CHUNK_ELEMENTS // (self.br * self.bcols * self.bc))
        for s0 in range(0, self.stripes, step):
            yield s0, min(s0 + step, self.stripes)

    def squares(self, w: np.ndarray, s0: int, s1: int) -> np.ndarray:
        """Squared entries of stripes [s0, s1), zero-padded: (n, br, B, bc) float64."""
        r0, r1 = s0 * self.br, min(s1 * self.br, self.m)
        out = np.zeros(((s1 - s0) * self.br, self.bcols * self.bc))
        out[: r1 - r0, : self.k] = np.square(w[r0:r1], dtype=np.float64)
        return out.reshape(s1 - s0, self.br, self.bcols, self.bc)


@dataclass(frozen=True)
class Pruned:
    """Pruned matrices and what each block keeps."""

    mats: np.ndarray
    """(G, M, K), the input dtype."""
    rows: np.ndarray
    """(G, S, B) kept rows per block."""
    cols: np.ndarray
    """(G, S, B) kept columns per block (0 where the block keeps no row)."""
    block: tuple[int, int]

    @property
    def values(self) -> int:
        return int((self.rows * self.cols).sum())

    def bcrc_bytes(self) -> int:
        """Bytes of `grimc.bcr_format.pack` of these G matrices (values + indices)."""
        return packed_bytes(self.rows, self.cols, self.mats.shape[1:], self.block, permuted=False)


def _top_k(scores: np.ndarray, k: np.ndarray, axis: int) -> np.ndarray:
    """Mask of the k largest scores along `axis` (ties: lower index); -inf never wins a tie."""
    order = np.argsort(-scores, axis=axis, kind="stable")
    return np.argsort(order, axis=axis, kind="stable") < k


def _global_top(scores: np.ndarray, entries: np.ndarray, density: float) -> np.ndarray:
    """Mask of the best-scored units whose entries total nearest `density` of all.

    Units with score -inf do not exist (padding, empty blocks). At least one
    unit is kept so a layer never vanishes.
    """
    flat = scores.ravel()
    sizes = np.broadcast_to(entries, scores.shape).ravel()
    order = np.argsort(-flat, kind="stable")
    order = order[: int(np.count_nonzero(np.isfinite(flat)))]
    mask = np.zeros(flat.shape, dtype=bool)
    if len(order) == 0:
        return mask.reshape(scores.shape)
    total = np.cumsum(sizes[order])
    keep = int(np.argmin(np.abs(total - density * total[-1]))) + 1
    mask[order[:keep]] = True
    return mask.reshape(scores.shape)


def _column_scores(mats: np.ndarray, grid: Grid) -> np.ndarray:
    """(G, S, B, bc) block-column sums of squares."""
    out = np.zeros((len(mats), grid.stripes, grid.bcols, grid.bc))
    for g, w in enumerate(mats):
        for s0, s1 in grid.chunks():
            out[g, s0:s1] = grid.squares(w, s0, s1).sum(axis=1)
    return out


def _row_scores(mats: np.ndarray, grid: Grid, cmask: np.ndarray) -> np.ndarray:
    """(G, S, br, B) block-row sums of squares over the kept columns."""
    out = np.zeros((len(mats), grid.stripes, grid.br, grid.bcols))
    for g, w in enumerate(mats):
        for s0, s1 in grid.chunks():
            kept = cmask[g, s0:s1].astype(np.float64)
            out[g, s0:s1] = np.einsum("nrbc,nbc->nrb", grid.squares(w, s0, s1), kept)
    return out


def _partial_counts(extent: np.ndarray, full: int, k: int) -> np.ndarray:
    """Kept count per block along one axis: k for full blocks, proportional for edges."""
    scaled = np.clip(_round(extent * k / full), 1, np.minimum(k, extent))
    return np.where(extent == full, k, scaled)


def _select_balanced(mats: np.ndarray, grid: Grid, keep: tuple[int, int]) -> tuple:
    kr, kc = keep
    col = _column_scores(mats, grid)
    col[:, :, ~grid.valid_cols()] = -np.inf
    cmask = _top_k(col, _partial_counts(grid.widths(), grid.bc, kc)[None, None, :, None], -1)
    row = _row_scores(mats, grid, cmask)
    row[:, ~grid.valid_rows()] = -np.inf
    rmask = _top_k(row, _partial_counts(grid.heights(), grid.br, kr)[None, :, None, None], 2)
    return cmask, rmask


def _select_unbalanced(mats: np.ndarray, grid: Grid, settings: Settings) -> tuple:
    col_density, row_density = split_rate(settings, (grid.br, grid.bc))
    heights = grid.heights()[None, :, None, None]
    col = _column_scores(mats, grid) / heights
    col[:, :, ~grid.valid_cols()] = -np.inf
    cmask = _global_top(col, heights, col_density)
    if row_density is None:  # rate mode: rows make up what the columns did not reach
        reached = (cmask * heights).sum() / mats.size
        row_density = min(1.0, settings.density / reached) if reached else 1.0
    kept_cols = cmask.sum(axis=-1)[:, :, None, :]  # (G, S, 1, B)
    with np.errstate(divide="ignore", invalid="ignore"):
        row = _row_scores(mats, grid, cmask) / kept_cols
    row[(kept_cols == 0) | ~grid.valid_rows()[None, :, :, None]] = -np.inf
    rmask = _global_top(row, kept_cols, row_density)
    return cmask, rmask


def prune_matrices(mats: np.ndarray, block: tuple[int, int], settings: Settings) -> Pruned:
    """Prune G stacked (M, K) matrices into BCR with (effective) `block`.

    `block` must not exceed (M, K); see `effective_block`.
    """
    _, m, k = mats.shape
    grid = Grid(m, k, *block)
    if settings.balanced:
        cmask, rmask = _select_balanced(mats, grid, balanced_keep(settings, block))
    else:
        cmask, rmask = _select_unbalanced(mats, grid, settings)
    rows = rmask.sum(axis=2)  # (G, S, B)
    cmask &= (rows > 0)[..., None]  # a block without rows keeps no columns either
    out = np.zeros_like(mats)
    for g, w in enumerate(mats):
        for s0, s1 in grid.chunks():
            keep = rmask[g, s0:s1, :, :, None] & cmask[g, s0:s1, None, :, :]
            r0, r1 = s0 * grid.br, min(s1 * grid.br, m)
            flat = keep.reshape((s1 - s0) * grid.br, grid.bcols * grid.bc)[: r1 - r0, :k]
            out[g, r0:r1] = np.where(flat, w[r0:r1], 0)
    return Pruned(out, rows, cmask.sum(axis=-1), block)


def effective_block(block: tuple[int, int], matrix: tuple[int, int]) -> tuple[int, int]:
    """A block dimension larger than the matrix means the whole extent."""
    return min(block[0], matrix[0]), min(block[1], matrix[1])


# ---------------------------------------------------------------------------------------
# report


@dataclass(frozen=True)
class LayerReport:
    """One row of the pruning report."""

    name: str
    op: str
    weight: str
    groups: int
    matrix: tuple[int, int]
    """(M, K) of one group."""
    block: tuple[int, int] | None
    """Effective block; None for dense layers."""
    keep: tuple[int, int] | None
    """(rows, cols) each full block keeps (balanced mode), else None."""
    balanced: bool
    dense_reason: str | None
    """Why the layer stayed dense, None if pruned."""
    weights: int
    kept: int
    """Stored values: explicit zeros inside kept sub-blocks included."""
    kept_bytes: int
    dense_bytes: int

    @property
    def pruned(self) -> bool:
        return self.dense_reason is None

    @property
    def density(self) -> float:
        return self.kept / self.weights

    @property
    def compression(self) -> float:
        return self.weights / self.kept if self.kept else math.inf


@dataclass
class PruneResult:
    """The pruned model, one report row per layer, and the warnings issued."""

    model: onnx.ModelProto
    layers: list[LayerReport]
    warnings: list[str] = field(default_factory=list)

    def layer(self, name: str) -> LayerReport:
        return next(r for r in self.layers if r.name == name)

    @property
    def weights(self) -> int:
        return sum(r.weights for r in self.layers)

    @property
    def kept(self) -> int:
        return sum(r.kept for r in self.layers)

    @property
    def density(self) -> float:
        return self.kept / self.weights if self.weights else 1.0

    @property
    def kept_bytes(self) -> int:
        return sum(r.kept_bytes for r in self.layers)

    @property
    def dense_bytes(self) -> int:
        return sum(r.dense_bytes for r in self.layers)

    def table(self) -> str:
        """The per-layer table and the model total, as `grimc prune` prints it."""
        head = ("layer", "op", "gemm", "block", "keep", "density", "compress", "kept bytes", "note")
        rows = [_report_cells(r) for r in self.layers]
        pruned = sum(r.pruned for r in self.layers)
        rows.append((
            "total", "", f"{self.weights:,} w", "", "", f"{self.density:.4f}",
            _ratio(self.weights, self.kept), f"{self.kept_bytes:,}",
            f"{pruned} of {len(self.layers)} layers pruned; {self.dense_bytes:,} bytes dense "
            f"-> {self.kept_bytes:,} ({_ratio(self.dense_bytes, self.kept_bytes)})",
        ))
        widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
        right = {5, 6, 7}

        def line(cells: Sequence[str]) -> str:
            parts = [c.rjust(w) if i in right else c.ljust(w)
                     for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
            return "  ".join(parts).rstrip()

        rule = "-" * len(line(head))
        return "\n".join([line(head), rule, *map(line, rows[:-1]), rule, line(rows[-1])])


def _ratio(num: int, den: int) -> str:
    return f"{num / den:.2f}x" if den else "inf"


def _report_cells(r: LayerReport) -> tuple[str, ...]:
    m, k = r.matrix
    gemm = f"{m}x{k}" if r.groups == 1 else f"{r.groups}*{m}x{k}"
    block = _fmt_block(r.block) if r.block else "-"
    keep = _fmt_block(r.keep) if r.keep else ("global" if r.pruned else "-")
    note = f"dense: {r.dense_reason}" if r.dense_reason else ""
    return (_display(r.name), r.op, gemm, block, keep, f"{r.density:.4f}",
            _ratio(r.weights, r.kept), f"{r.kept_bytes:,}", note)


def _display(name: str) -> str:
    """Model names are untrusted: escape anything that could garble the table."""
    return name if name.isprintable() and len(name) <= 60 else quote_for_message(name)


# ---------------------------------------------------------------------------------------
# the API


@dataclass(frozen=True)
class _Plan:
    layer: Layer
    settings: Settings
    dense_reason: str | None


def _dense_rule(layer: Layer, min_weights: int, min_k: int) -> str | None:
    if layer.depthwise:
        return "depthwise"
    if layer.matrix[1] < min_k:
        return f"K {layer.matrix[1]} < {min_k}"
    if layer.weights < min_weights:
        return f"{layer.weights} < {min_weights} weights"
    return None


def _plan(
    layers: Sequence[Layer],
    base: Mapping[str, object],
    config: PruneConfig,
    include: Sequence[str],
    exclude: Sequence[str],
) -> list[_Plan]:
    min_weights = int(base.get("min_weights", MIN_WEIGHTS))  # type: ignore[call-overload]
    min_k = int(base.get("min_k", MIN_K))  # type: ignore[call-overload]
    plans = []
    for layer in layers:
        options = merge_options(base, config.options_for(layer))
        if any(matches(layer, p) for p in exclude):
            reason: str | None = "--exclude"
        elif any(matches(layer, p) for p in include):
            reason = None
        elif "dense" in options:
            reason = "config" if options["dense"] else None
        else:
            reason = _dense_rule(layer, min_weights, min_k)
        plans.append(_Plan(layer, Settings.from_options(options), reason))
    return plans


def _unmatched(layers: Sequence[Layer], config: PruneConfig, include: Sequence[str],
               exclude: Sequence[str]) -> list[str]:
    found = []
    for flag, patterns in (("--include", include), ("--exclude", exclude)):
        found += [f"{flag} {_show(p)} matches no layer" for p in patterns
                  if not any(matches(layer, p) for layer in layers)]
    found += [f"{e.where}: layer pattern {_show(e.pattern)} matches no layer"
              for e in config.entries if not any(matches(layer, e.pattern) for layer in layers)]
    return found


def _read_weight(model: onnx.ModelProto, layer: Layer, label: str) -> np.ndarray:
    tensor = model.graph.initializer[layer.index]
    where = f"{label}: layer {_show(layer.name)} (initializer {_show(layer.weight)})"
    try:
        array = numpy_helper.to_array(tensor)
    except Exception as exc:  # noqa: BLE001 - onnx raises many types on bad tensors
        raise PruneError(f"{where}: cannot read data ({str(exc).splitlines()[0][:200]})") from None
    if tuple(array.shape) != layer.shape:
        raise PruneError(f"{where}: data does not match its dims {list(layer.shape)}")
    bad = ~np.isfinite(array)
    if bad.any():
        at = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), array.shape))
        raise PruneError(f"{where}: non-finite weight {array[at]} at index {list(at)}")
    return array


def _prune_layer(model: onnx.ModelProto, plan: _Plan, label: str, notes: list[str]) -> LayerReport:
    layer, settings = plan.layer, plan.settings
    dense_bytes = _WORD * layer.weights
    if plan.dense_reason is not None:
        return LayerReport(layer.name, layer.op, layer.weight, layer.groups, layer.matrix, None,
                           None, settings.balanced, plan.dense_reason, layer.weights,
                           layer.weights, dense_bytes, dense_bytes)
    array = _read_weight(model, layer, label)
    block = effective_block(settings.block, layer.matrix)
    cells = block[0] * block[1]
    if settings.balanced and settings.density * cells < 1 and block != settings.block:
        notes.append(f"layer {_show(layer.name)}: rate {1 / settings.density:g} is out of reach "
                     f"of its effective block {_fmt_block(block)}; pruned to {cells}x")
    result = prune_matrices(layer.gemm_view(array), block, settings)
    tensor = model.graph.initializer[layer.index]
    pruned = layer.from_gemm_view(result.mats).astype(array.dtype, copy=False)
    new = numpy_helper.from_array(pruned, tensor.name)
    new.doc_string = tensor.doc_string
    tensor.CopyFrom(new)
    keep = balanced_keep(settings, block) if settings.balanced else None
    return LayerReport(layer.name, layer.op, layer.weight, layer.groups, layer.matrix, block,
                       keep, settings.balanced, None, layer.weights, result.values,
                       result.bcrc_bytes(), dense_bytes)


def _api_options(**given: object) -> dict:
    """The explicitly given (not None) API arguments, validated."""
    options = {k: v for k, v in given.items() if v is not None}
    return validate_options(options, "prune_model", DEFAULT_KEYS)


def prune_model(
    model: onnx.ModelProto | str | os.PathLike | bytes,
    block: tuple[int, int] | str | None = None,
    rate: float | None = None,
    config: PruneConfig | Mapping | str | os.PathLike | None = None,
    balanced: bool | None = None,
    *,
    col_rate: float | None = None,
    row_rate: float | None = None,
    row_share: float | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    min_weights: int | None = None,
    min_k: int | None = None,
    label: str | None = None,
) -> PruneResult:
    """BCR-prune every prunable weight of `model`; the caller's ModelProto is not modified.

    None means "the config's [defaults], else the built-in default": block 8x16,
    rate 8 (unless col_rate/row_rate are given), balanced, min_weights 4096,
    min_k 32. `config` is a PruneConfig, a TOML file path or its parsed mapping.
    Raises PruneError (or the frontend's error for unreadable models); patterns
    that match no layer are warnings (PruneWarning and `PruneResult.warnings`).
    """
    from grimc.frontend.load import load_model

    loaded, where = load_model(model, label or "model")
    if isinstance(model, onnx.ModelProto):
        loaded = onnx.ModelProto()
        loaded.CopyFrom(model)
    cfg = _load_config(config)
    given = _api_options(block=block, rate=rate, col_rate=col_rate, row_rate=row_rate,
                         row_share=row_share, balanced=balanced, min_weights=min_weights,
                         min_k=min_k)
    base = merge_options(merge_options({}, cfg.defaults), given)
    Settings.from_options(base).check_reachable()
    for entry in cfg.entries:
        if not entry.options.get("dense"):
            Settings.from_options(merge_options(base, entry.options)).check_reachable(
                f"{entry.where}: layer {_show(entry.pattern)}")
    layers = find_layers(loaded)
    notes = _unmatched(layers, cfg, include, exclude)
    plans = _plan(layers, base, cfg, include, exclude)
    reports = [_prune_layer(loaded, plan, where, notes) for plan in plans]
    for note in notes:
        warnings.warn(note, PruneWarning, stacklevel=2)
    return PruneResult(loaded, reports, notes)


def serialize(model: onnx.ModelProto) -> bytes:
    try:
        return model.SerializeToString()
    except ValueError as exc:  # protobuf refuses messages over 2 GB
        raise PruneError(f"cannot serialize the pruned model ({exc})") from None


# ---------------------------------------------------------------------------------------
# the command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grimc prune",
        description="Prune a dense ONNX model into BCR (block-based column-row) sparsity by "
        "weight magnitude; print a per-layer report and write the pruned model.",
        epilog="--rate R splits into column pruning first (up to one column per block), then "
        "row pruning; see grimc/prune.py for the exact rule and the config file format.",
    )
    parser.add_argument("model", help="dense ONNX model (.onnx)")
    parser.add_argument("-o", "--output", type=Path,
                        help="pruned model to write (atomically); without it only the report")
    parser.add_argument("--block", metavar="RxC", help="block rows x cols (default 8x16)")
    parser.add_argument("--rate", metavar="R",
                        help="compression = 1/density, e.g. 8 keeps 1/8 (default 8)")
    parser.add_argument("--col-rate", metavar="P",
                        help="fraction of block-columns pruned, in [0, 1) (instead of --rate)")
    parser.add_argument("--row-rate", metavar="P",
                        help="fraction of block-rows pruned, in [0, 1) (instead of --rate)")
    parser.add_argument("--row-share", metavar="S",
                        help="share of log(rate) given to row pruning, in [0, 1] (default 0: "
                        "columns first)")
    parser.add_argument("--unbalanced", action="store_true",
                        help="one global magnitude threshold per layer instead of the same "
                        "count in every block")
    parser.add_argument("--config", metavar="FILE.toml",
                        help="per-layer settings: pattern -> block/rate/col_rate/row_rate/dense")
    parser.add_argument("--include", action="append", default=[], metavar="PATTERN",
                        help="prune matching layers even if the default rules keep them dense")
    parser.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                        help="keep matching layers dense (wins over everything)")
    parser.add_argument("--min-weights", metavar="N",
                        help=f"layers with fewer weights stay dense (default {MIN_WEIGHTS})")
    parser.add_argument("--min-k", metavar="N",
                        help=f"layers with a shorter GEMM reduction K stay dense (default {MIN_K})")
    return parser


def _cli_options(args: argparse.Namespace) -> dict:
    """Explicit CLI options, validated with the flag names in messages."""
    flags = {"block": "--block", "rate": "--rate", "col_rate": "--col-rate",
             "row_rate": "--row-rate", "row_share": "--row-share",
             "min_weights": "--min-weights", "min_k": "--min-k"}
    options: dict[str, object] = {}
    for key, flag in flags.items():
        value = getattr(args, key)
        if value is not None:
            options.update(validate_options({key: value}, flag, DEFAULT_KEYS))
    if "rate" in options and ({"col_rate", "row_rate"} & options.keys()):
        raise PruneError("--rate: give either --rate or --col-rate/--row-rate, not both")
    if args.unbalanced:
        options["balanced"] = False
    return options


def prune_main(argv: Sequence[str]) -> int:
    """`grimc prune`: see build_parser()."""
    from grimc.fileio import write_atomically

    args = build_parser().parse_args(argv)
    if args.output is not None and not args.output.parent.exists():
        raise PruneError(f"{_label(str(args.output))}: output directory does not exist")
    options = _cli_options(args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PruneWarning)
        result = prune_model(args.model, config=args.config, include=args.include,
                             exclude=args.exclude, label=args.model, **options)
    for note in result.warnings:
        print(f"grimc: warning: {note}", file=sys.stderr)
    print(result.table())
    if args.output is not None:
        write_atomically(args.output, serialize(result.model))
    return 0
