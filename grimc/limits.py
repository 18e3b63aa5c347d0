"""The size limits of what grimc compiles, in one place (docs/limits.md).

Generated kernels index tensors with C `int` and step through them in tiles
and vectors (`j + VW <= n`), so an element count must stay well inside int32:
`MAX_ELEMENTS` leaves a factor of two of headroom. Byte sizes, arena offsets
and blob offsets are 64-bit (`size_t`); `MAX_ARENA_BYTES` keeps their sums far
from wrapping. Shapes are checked with exact Python integers, so a product
that would wrap modulo 2^64 in C is seen as the huge number it is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from grimc.errors import GrimcError

ELEMENT_BYTES = 4
"""float32, grimc's only element type."""

MAX_ELEMENTS = 1 << 30
"""Elements per tensor (activations, weights, scratch): 4 GiB of float32."""

MAX_TENSOR_BYTES = MAX_ELEMENTS * ELEMENT_BYTES

MAX_ARENA_BYTES = 1 << 40
"""The sum of all activation and scratch buffers of a model (1 TiB)."""

MAX_FOLDED_BYTES = 512 << 20
"""The largest constant computed at compile time that is larger than its inputs.

Tiny models may generate their weights (the ONNX "light" zoo models build
VGG-19's 411 MB fc6 weight with ConstantOfShape), but must not make the
compiler materialize arbitrary amounts of memory. Above the cap the op runs at
run time, or the model is refused if the op has no kernel. Folds that do not
grow their data (transpose, reshape, concat of weights) are not limited."""

MAX_FOLDED_TOTAL_BYTES = 1 << 30
"""All constants of one model that grew while folding, together."""


MAX_THREADS = 1024
"""Worker threads a model is compiled for (kernels split work into that many C `int` tasks)."""


class LimitError(GrimcError):
    """A tensor or buffer beyond the limits above."""


def check_threads(threads: int) -> None:
    if not 1 <= threads <= MAX_THREADS:
        raise LimitError(f"--threads {threads}: must be between 1 and {MAX_THREADS}")


def shape_problem(shape: Sequence[int]) -> str | None:
    """Why a tensor of `shape` is beyond the limits, or None when it is within them."""
    dims = [int(d) for d in shape]
    if any(d < 0 for d in dims):
        return f"shape {dims} has a negative dim"
    count = math.prod(dims)
    if count > MAX_ELEMENTS:
        return (
            f"shape {dims} has {count} elements; grimc's limit is {MAX_ELEMENTS} (2^30) "
            "elements per tensor"
        )
    if any(d > MAX_ELEMENTS for d in dims):
        return f"shape {dims} has a dim above grimc's limit of {MAX_ELEMENTS} (2^30)"
    return None


def check_bytes(nbytes: int, limit: int, what: str) -> None:
    """Raise LimitError when `nbytes` (of `what`) exceeds `limit`."""
    if nbytes > limit:
        raise LimitError(f"{what} needs {nbytes} bytes; grimc's limit is {limit} bytes")


class FoldBudget:
    """How much constant data folding has generated so far (see MAX_FOLDED_BYTES)."""

    def __init__(self) -> None:
        self.grown = 0

    def allows(self, result_bytes: int, input_bytes: int) -> bool:
        """Whether a constant of `result_bytes` computed from `input_bytes` may be built."""
        if result_bytes <= input_bytes:
            return True
        return (
            result_bytes <= MAX_FOLDED_BYTES and self.grown + result_bytes <= MAX_FOLDED_TOTAL_BYTES
        )

    def spend(self, result_bytes: int, input_bytes: int) -> None:
        if result_bytes > input_bytes:
            self.grown += result_bytes
