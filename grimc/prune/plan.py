"""Which rule each layer gets: built-in defaults, the config, API/CLI options,
include/exclude patterns and the dense rules, in that order of precedence.

Shared by the ONNX path (`prune_model`) and the torch API (`grimc.train`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from grimc.prune.config import PruneConfig, load_config
from grimc.prune.discover import PrunableLayer, dense_rule, matches
from grimc.prune.rules import (
    DEFAULT_KEYS,
    MIN_K,
    MIN_WEIGHTS,
    Settings,
    merge_options,
    show,
    validate_options,
)

L = TypeVar("L", bound=PrunableLayer)


@dataclass(frozen=True)
class Plan(Generic[L]):
    """One layer, its rule, and why it stays dense (None: it is pruned)."""

    layer: L
    settings: Settings
    dense_reason: str | None


@dataclass(frozen=True)
class Options:
    """The resolved options of one pruning run (config + explicit arguments)."""

    config: PruneConfig
    base: dict
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @classmethod
    def resolve(
        cls,
        config: PruneConfig | Mapping | str | os.PathLike | None = None,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        where: str = "prune_model",
        **given: object,
    ) -> Options:
        """Validate the explicitly given (not None) options over the config's [defaults]."""
        cfg = load_config(config)
        explicit = validate_options({k: v for k, v in given.items() if v is not None}, where,
                                    DEFAULT_KEYS)
        base = merge_options(merge_options({}, cfg.defaults), explicit)
        Settings.from_options(base).check_reachable()
        for entry in cfg.entries:
            if not entry.options.get("dense"):
                Settings.from_options(merge_options(base, entry.options)).check_reachable(
                    f"{entry.where}: layer {show(entry.pattern)}")
        return cls(cfg, base, tuple(include), tuple(exclude))

    def plan(self, layers: Sequence[L]) -> list[Plan[L]]:
        """Each layer's rule; precedence: exclude, include, config `dense`, dense rules."""
        min_weights = int(self.base.get("min_weights", MIN_WEIGHTS))  # type: ignore[call-overload]
        min_k = int(self.base.get("min_k", MIN_K))  # type: ignore[call-overload]
        plans = []
        for layer in layers:
            options = merge_options(self.base, self.config.options_for(layer))
            if any(matches(layer, p) for p in self.exclude):
                reason: str | None = "--exclude"
            elif any(matches(layer, p) for p in self.include):
                reason = None
            elif "dense" in options:
                reason = "config" if options["dense"] else None
            else:
                reason = dense_rule(layer, min_weights, min_k)
            plans.append(Plan(layer, Settings.from_options(options), reason))
        return plans

    def unmatched(self, layers: Sequence[PrunableLayer]) -> list[str]:
        """Warnings for patterns that match no layer."""
        found = []
        for flag, patterns in (("--include", self.include), ("--exclude", self.exclude)):
            found += [f"{flag} {show(p)} matches no layer" for p in patterns
                      if not any(matches(layer, p) for layer in layers)]
        found += [f"{e.where}: layer pattern {show(e.pattern)} matches no layer"
                  for e in self.config.entries
                  if not any(matches(layer, e.pattern) for layer in layers)]
        return found
