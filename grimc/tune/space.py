"""Candidate knob values per schedule kind.

The space holds the values worth measuring around the cost model's default;
thread and task counts stay the default's (bcr-reorder balanced the rows for
them, and the tuner measures at the compile's thread count). A candidate is a
`KnobsAttr` built with `replace`, so the attribute's verifier rejects values
it never accepts; the lowering's own checks (a tile that fits, a split the
kernel has) reject more at generation time (grimc.tune.measure).
"""

from __future__ import annotations

import random

from xdsl.utils.exceptions import VerifyException

from grimc.dialects.sched import KnobsAttr
from grimc.target import Target
from grimc.transforms.schedule_select import fits_registers

SPACE: dict[str, dict[str, tuple[object, ...]]] = {
    "sched.spmm": {
        "rows": (1, 2, 4, 8, 16),
        "nv": (1, 2, 3, 4, 6),
        "unroll": (1, 2, 4),
        "order": ("stripe", "spatial"),
        "pf": (0, 8, 16, 24, 48),
        "rle": (False, True),
    },
    "sched.gemv": {"rows": (1, 2, 4, 8, 16), "nb_tile": (1, 2, 4), "sets": (1, 2, 4), "rle": (False, True)},
    "sched.csr": {"nv": (1, 2, 3, 4)},
    "sched.gemm": {
        "mr": (1, 2, 4, 6, 8),
        "nv": (1, 2, 3, 4),
        "ku": (1, 2, 4),
        "kc": (64, 128, 256, 512),
        "mcb": (64, 128, 256),
    },
    "sched.conv": {
        "mr": (2, 4, 6, 8),
        "nv": (1, 2, 3, 4),
        "order": ("cob", "tile"),
        "pf": (0, 2, 4),
        "pfa": (0, 32, 64),
        "pfb": (0, 32, 64),
    },
    "sched.depthwise": {"dv": (1, 2, 3, 4)},
    "sched.cell": {"nvg": (1, 2, 4), "bb": (1, 2, 4)},
    "sched.sparse_cell": {"bb": (1, 2, 4), "sets": (1, 2, 4)},
}
"""Values per knob; knobs not listed keep the default's value."""


def knob_values(default: KnobsAttr) -> dict[str, tuple[object, ...]]:
    """Each tunable knob's values, the default's own value first."""
    out = {}
    for knob, values in SPACE.get(default.name, {}).items():
        own = default.knobs()[knob]
        out[knob] = (own, *(v for v in values if v != own))
    return out


def make(default: KnobsAttr, knobs: dict[str, object], target: Target) -> KnobsAttr | None:
    """The default with `knobs` changed, or None if the verifier or register budget refuses."""
    try:
        attr = default.replace(**knobs)  # type: ignore[arg-type]
        attr.verify()
    except (VerifyException, TypeError, ValueError):
        return None
    return attr if fits_registers(attr, target) else None


def sample(default: KnobsAttr, target: Target, rng: random.Random) -> KnobsAttr | None:
    """A random point of the space (None: the draw was refused)."""
    values = knob_values(default)
    return make(default, {k: rng.choice(v) for k, v in values.items()}, target)


def neighbours(default: KnobsAttr, target: Target) -> list[KnobsAttr]:
    """Every candidate one knob away from the default."""
    out = []
    for knob, values in knob_values(default).items():
        for value in values[1:]:
            attr = make(default, {knob: value}, target)
            if attr is not None:
                out.append(attr)
    return out


def crossover(a: KnobsAttr, b: KnobsAttr, target: Target, rng: random.Random) -> KnobsAttr | None:
    """Each tunable knob from one parent or the other."""
    ka, kb = a.knobs(), b.knobs()
    return make(a, {k: rng.choice((ka[k], kb[k])) for k in knob_values(a)}, target)


def mutate(
    attr: KnobsAttr, target: Target, rng: random.Random, rate: float = 0.3
) -> KnobsAttr | None:
    """Each tunable knob redrawn with probability `rate` (at least one)."""
    values = knob_values(attr)
    if not values:
        return None
    chosen = [k for k in values if rng.random() < rate] or [rng.choice(list(values))]
    return make(attr, {k: rng.choice(values[k]) for k in chosen}, target)
