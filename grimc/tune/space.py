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
        "vec": ("p", "w"),  # direct or Winograd (3x3 stride 1 only; else refused)
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
    "sched.cl_linear": {
        "rows": (1, 2, 4, 8, 16),
        "order": ("data", "rows"),
        ("lx", "ly", "lz"): (
            (0, 0, 0), (16, 1, 1), (32, 1, 1), (64, 1, 1), (128, 1, 1),
            (1, 16, 1), (1, 64, 1), (4, 16, 1), (8, 8, 1), (16, 4, 1), (16, 16, 1),
        ),
    },  # fmt: skip
    "sched.cl_cell": {"rows": (1, 2, 4, 8, 16), "local": (16, 32, 64, 128, 256)},
}
"""Values per knob; knobs not listed keep the default's value. A tuple of knob
names is one knob whose values set them together (an OpenCL work-group size:
lx, ly, lz are all 0, the driver's choice, or all set; its last dimension
stays 1, which every kernel's NDRange allows, and it stays within the 256
work-items GPUs commonly allow)."""

Knob = str | tuple[str, ...]


def _get(knobs: dict[str, object], knob: Knob) -> object:
    return tuple(knobs[k] for k in knob) if isinstance(knob, tuple) else knobs[knob]


def _flat(knobs: dict[Knob, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for knob, value in knobs.items():
        if isinstance(knob, tuple):
            out.update(zip(knob, value, strict=True))  # type: ignore[call-overload]
        else:
            out[knob] = value
    return out


def knob_values(default: KnobsAttr) -> dict[Knob, tuple[object, ...]]:
    """Each tunable knob's values, the default's own value first."""
    out: dict[Knob, tuple[object, ...]] = {}
    for knob, values in SPACE.get(default.name, {}).items():
        own = _get(default.knobs(), knob)
        out[knob] = (own, *(v for v in values if v != own))
    return out


def tunable(default: KnobsAttr) -> set[str]:
    """The names of the knobs the space varies (those of a joint knob one by one)."""
    return set(_flat({k: v[0] for k, v in knob_values(default).items()}))


def make(default: KnobsAttr, knobs: dict[Knob, object], target: Target) -> KnobsAttr | None:
    """The default with `knobs` changed, or None if the verifier or register budget refuses."""
    try:
        attr = default.replace(**_flat(knobs))  # type: ignore[arg-type]
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
    return make(a, {k: rng.choice((_get(ka, k), _get(kb, k))) for k in knob_values(a)}, target)


def mutate(
    attr: KnobsAttr, target: Target, rng: random.Random, rate: float = 0.3
) -> KnobsAttr | None:
    """Each tunable knob redrawn with probability `rate` (at least one)."""
    values = knob_values(attr)
    if not values:
        return None
    chosen = [k for k in values if rng.random() < rate] or [rng.choice(list(values))]
    return make(attr, {k: rng.choice(values[k]) for k in chosen}, target)
