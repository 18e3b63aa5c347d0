"""Test tiers for case x configuration grids.

The slow tier (`pytest`) runs every case on every configuration (target,
threads). The fast tier (`pytest -m "not slow"`, what CI runs) runs every case
once, on configurations taken in turn, so each configuration still runs its
share of the cases and no target goes untested.
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


def every(cases: Sequence[str], step: int) -> list[Any]:
    """Params for `cases`; every `step`-th one (from the first) is fast, the rest are slow."""
    return [pytest.param(case, id=case, marks=() if i % step == 0 else (pytest.mark.slow,))
            for i, case in enumerate(cases)]
