"""A learned cost model that picks which bred candidates are worth measuring.

The optional `learned` extra (xgboost). Once a task has `MIN_MEASURED`
measured points (its measured candidates and the default, plus the default and
winner of every tuned neighbour of the same kind in the database), a small
gradient-boosted regressor is fit from the schedule's knobs to the log of its
cost relative to the default, and the genetic algorithm breeds a pool `POOL`
times larger than a batch, of which only the candidates the model ranks best
are built and measured (grimc.tune.search). Without xgboost, or with
`learned=False`, the search is the plain genetic algorithm, decision for
decision.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from grimc.dialects.sched import Knob, KnobsAttr
from grimc.errors import GrimcError
from grimc.tune.space import SPACE
from grimc.tunedb import Record

MIN_MEASURED = 8
"""Measured points (the default included) before the model ranks anything."""
POOL = 4
"""Bred candidates per batch slot the model chooses from."""


def features(kind: str, knobs: dict[str, Knob]) -> list[float]:
    """One row per schedule: log2(1 + n) of each integer knob (each of a joint knob's
    integers too), 0/1 for a flag, one column per word of a word knob (the knobs of the
    kind's search space, in order)."""
    row: list[float] = []
    for knob, values in SPACE[kind].items():
        if isinstance(knob, tuple):
            row += [math.log2(1.0 + float(knobs[name])) for name in knob]  # type: ignore[arg-type]
        elif isinstance(knobs[knob], str):
            row += [float(knobs[knob] == word) for word in values]
        else:
            row.append(math.log2(1.0 + float(knobs[knob])))  # type: ignore[arg-type]
    return row


class CostModel:
    """xgboost regression of log(cost / default cost) on the knob features."""

    def __init__(self, seed: int = 0):
        import xgboost

        self._xgb, self.seed = xgboost, seed

    def rank(
        self, kind: str, measured: dict[KnobsAttr, float], neighbours: Sequence[Record],
        pool: Sequence[KnobsAttr],
    ) -> list[KnobsAttr] | None:
        """`pool` best predicted first, or None while fewer than MIN_MEASURED points exist.

        `measured`: cost ratios to the default (the default itself as 1.0)."""
        rows = [features(kind, attr.knobs()) for attr in measured]
        costs = [math.log(ratio) for ratio in measured.values()]
        for record in neighbours:
            if record.kind == kind and record.default_cost > 0 and record.cost > 0:
                rows += [features(kind, json.loads(record.default_knobs)),
                         features(kind, json.loads(record.knobs))]
                costs += [0.0, math.log(record.cost / record.default_cost)]
        if len(rows) < MIN_MEASURED or not pool:
            return None
        xgb = self._xgb
        params = {"max_depth": 3, "eta": 0.3, "nthread": 1, "seed": self.seed,
                  "tree_method": "exact", "objective": "reg:squarederror"}
        booster = xgb.train(params, xgb.DMatrix(rows, label=costs), num_boost_round=64)
        predicted = booster.predict(xgb.DMatrix([features(kind, attr.knobs()) for attr in pool]))
        order = sorted(range(len(pool)), key=lambda i: (float(predicted[i]), i))
        return [pool[i] for i in order]


def cost_model(learned: bool | None, seed: int = 0) -> CostModel | None:
    """The model to use: `None` means whenever xgboost is installed, True requires it."""
    if learned is False:
        return None
    try:
        return CostModel(seed)
    except ImportError:
        if learned:
            raise GrimcError("a learned cost model needs the optional package xgboost "
                             "(pip install 'grimc[learned]')") from None
        return None

