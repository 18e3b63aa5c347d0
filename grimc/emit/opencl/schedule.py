"""The schedule knobs of the OpenCL kernels, decided in one place.

A linear kernel (GEMM, GEMV, conv; BCR or dense) maps one work-item to a
*register group* of `rows` output rows at one batch row or output pixel: its
weights are one `float{rows}` vector load per list entry, and each input
element it loads feeds `rows` FMAs (redundant-load elimination, as on the
CPU). Knobs:

- `rows`  vector width of the weight loads = rows per work-item (1..16);
- `local` work-group size per NDRange dimension, or None (the driver picks);
- `order` which NDRange dimension is the fastest-varying (work-item mapping):
          "data" (batch rows / pixels vary fastest: coalesced input loads and
          output stores) or "rows" (register groups vary fastest).

`choose_linear` is the only place defaults are made: a cost model over the
actual sparsity, overridden by the op's `kernel_params` (the tuner's hook).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from grimc.emit.kernel import CodegenError
from grimc.emit.kernels.bcr import group_entries

WIDTHS = (1, 2, 4, 8, 16)
"""OpenCL vector widths (float3 is left out: it loads like float4)."""

MAX_DEFAULT_ROWS = 8
"""Default cap on rows per work-item: 8 accumulators plus an 8-wide weight
vector stay in registers on mobile GPUs; 16 only when a tuner asks."""

LOAD_COST = 4.0
"""Modeled cost of one (gathered) input load in FMAs."""

KNOBS = ("rows", "local", "order")


@dataclass(frozen=True)
class ClSchedule:
    rows: int = 4
    local: tuple[int, ...] | None = None
    order: str = "data"

    def __post_init__(self) -> None:
        if self.rows not in WIDTHS:
            raise CodegenError(
                f"OpenCL rows per work-item must be one of {WIDTHS}, got {self.rows}"
            )
        if self.order not in ("data", "rows"):
            raise CodegenError(f"OpenCL work-item order must be data or rows, got '{self.order}'")
        if self.local is not None and (not self.local or min(self.local) < 1):
            raise CodegenError(f"OpenCL local size must be positive, got {self.local}")

    def dims(self, data: Sequence[str]) -> dict[str, int]:
        """NDRange dimension of each index: `data` names the data indices in
        order (e.g. ("p", "n")); "g" (register groups) goes first or second."""
        names = ["g", *data] if self.order == "rows" else [data[0], "g", *data[1:]]
        return {name: i for i, name in enumerate(names)}


def parse_local(value: int | str) -> tuple[int, ...]:
    """ "64" or "8,8" (the string form a kernel_params attribute carries)."""
    try:
        sizes = tuple(int(v) for v in str(value).replace("x", ",").split(","))
    except ValueError:
        raise CodegenError(f"OpenCL local size '{value}': expected integers like 8,8") from None
    return sizes


def choose_linear(grids: Sequence[np.ndarray], overrides: Mapping[str, int | str]) -> ClSchedule:
    """Rows per work-item minimizing modeled work over the matrices' rows:
    list entries x (rows FMAs + one input load); padding rows cost FMAs."""
    unknown = set(overrides) - set(KNOBS)
    if unknown:
        raise CodegenError(f"unknown OpenCL kernel parameter(s): {', '.join(sorted(unknown))}")
    if "rows" in overrides:
        rows = int(overrides["rows"])
    else:
        costs = [
            (group_entries(grids, r) * (r + LOAD_COST), -r, r)
            for r in WIDTHS
            if r <= MAX_DEFAULT_ROWS
        ]
        rows = min(costs)[2]
    local = parse_local(overrides["local"]) if "local" in overrides else None
    return ClSchedule(rows, local, str(overrides.get("order", "data")))
