"""Lazy registries of grimc's dialects and passes, also exported to xDSL.

Passes are discovered from the file tree: `grimc/transforms/bcr_reorder.py`
defines the pass `bcr-reorder`. Nothing is imported until a pass is asked for,
so `grimc --help` and `xdsl-opt` stay fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from xdsl.ir import Dialect
from xdsl.passes import ModulePass
from xdsl.universe import Universe

TRANSFORMS_DIR = Path(__file__).parent / "transforms"


def _graph_dialect() -> Dialect:
    from grimc.dialects.graph import Graph

    return Graph


def _bcr_dialect() -> Dialect:
    from grimc.dialects.bcr import BCR

    return BCR


def _sched_dialect() -> Dialect:
    from grimc.dialects.sched import SCHED

    return SCHED


DIALECTS: dict[str, Callable[[], Dialect]] = {
    "graph": _graph_dialect,
    "bcr": _bcr_dialect,
    "sched": _sched_dialect,
}


def _pass_loader(stem: str) -> Callable[[], type[ModulePass]]:
    def load() -> type[ModulePass]:
        module = importlib.import_module(f"grimc.transforms.{stem}")
        wanted = stem.replace("_", "-")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, ModulePass)
                and value is not ModulePass
                and getattr(value, "name", None) == wanted
            ):
                return value
        raise LookupError(f"grimc/transforms/{stem}.py defines no ModulePass named '{wanted}'")

    return load


def _discover_passes() -> dict[str, Callable[[], type[ModulePass]]]:
    stems = sorted(
        p.stem for p in TRANSFORMS_DIR.glob("*.py") if not p.stem.startswith("_")
    )
    return {stem.replace("_", "-"): _pass_loader(stem) for stem in stems}


PASSES: dict[str, Callable[[], type[ModulePass]]] = _discover_passes()

GRIMC_UNIVERSE = Universe(all_dialects=DIALECTS, all_passes=PASSES)
"""Registered under the `xdsl.universe` entry point for stock xdsl-opt."""


def make_context():
    """An xDSL context with builtin, func and all grimc dialects loaded."""
    from xdsl.context import Context
    from xdsl.dialects.builtin import Builtin
    from xdsl.dialects.func import Func

    ctx = Context()
    ctx.load_dialect(Builtin)
    ctx.load_dialect(Func)
    for name, loader in DIALECTS.items():
        ctx.register_dialect(name, loader)
    return ctx
