"""The per-layer TOML configuration of `grimc prune` (format in grimc.prune)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from grimc.prune.discover import PrunableLayer, matches
from grimc.prune.rules import (
    DEFAULT_KEYS,
    LAYER_KEYS,
    PruneError,
    label_text,
    merge_options,
    show,
    validate_options,
)

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
            raise PruneError(f"{label_text(label)}: cannot read config ({reason})") from None
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
        label = label_text(label)
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
                f"{where}: unknown table {show(extra[0])} (expected [defaults] and [layers])"
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
                    f"{where}: layer {show(pattern)}: expected a table of settings or \"dense\", "
                    f"not {show(value)}"
                )
            checked = validate_options(options, f"{where}: layer {show(pattern)}", LAYER_KEYS)
            entries.append(ConfigEntry(pattern, checked, where))
        return cls(checked_defaults, tuple(entries))

    def options_for(self, layer: PrunableLayer) -> dict:
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


def load_config(config: PruneConfig | Mapping | str | os.PathLike | None) -> PruneConfig:
    if config is None:
        return PruneConfig()
    if isinstance(config, PruneConfig):
        return config
    if isinstance(config, Mapping):
        return PruneConfig.from_mapping(config)
    return PruneConfig.load(config)

