"""Test tiers for case x configuration grids.

The slow tier (`pytest`) runs every case on every configuration (target,
threads). The fast tier (`pytest -m "not slow"`, what CI runs) runs every case
once, on configurations taken in turn, so each configuration still runs its
share of the cases and no target goes untested. Random (hypothesis) tests draw
a small budget of examples in the fast tier and their full budget in the slow one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest


def spread(
    cases: Sequence[str], configs: Sequence[tuple[Any, ...]], id_of: Callable[..., str]
) -> list[Any]:
    """Params `(case, *config)` for the whole grid; case i is fast only on configs[i % n].

    `id_of(case, *config)` gives each param the id the stacked parametrize used to give.
    """
    params = []
    for i, case in enumerate(cases):
        for j, config in enumerate(configs):
            marks = () if j == i % len(configs) else (pytest.mark.slow,)
            params.append(pytest.param(case, *config, id=id_of(case, *config), marks=marks))
    return params


def threads_in_turn(
    cases: Sequence[str], targets: Sequence[str], threads: Sequence[int] = (1, 2)
) -> list[Any]:
    """Params `(case, target, threads)` for the whole grid; the fast tier runs every case
    on every target, with one thread count each, taken in turn over cases and targets."""
    return [
        pytest.param(
            case, target, n, id=f"{case}-{target}-{n}",
            marks=() if (i + k) % len(threads) == j else (pytest.mark.slow,),
        )
        for i, case in enumerate(cases)
        for k, target in enumerate(targets)
        for j, n in enumerate(threads)
    ]  # fmt: skip


def every(cases: Sequence[str], step: int) -> list[Any]:
    """Params for `cases`; every `step`-th one (from the first) is fast, the rest are slow."""
    return [pytest.param(case, id=case, marks=() if i % step == 0 else (pytest.mark.slow,))
            for i, case in enumerate(cases)]


def examples(fast: int, full: int) -> pytest.MarkDecorator:
    """Parametrize `examples`, a hypothesis budget: `fast` in the fast tier, `full` (slow).

    The test applies it inside: `settings(max_examples=examples)` on a nested `@given`.
    """
    return pytest.mark.parametrize(
        "examples",
        [pytest.param(fast, id=f"{fast}ex"), pytest.param(full, id=f"{full}ex", marks=pytest.mark.slow)],
    )
