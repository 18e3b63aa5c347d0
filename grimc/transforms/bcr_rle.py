"""bcr-rle: redundant-load elimination by register blocking across output rows.

In a BCR block every kept row reads the same kept input columns. The sparse
kernel (`bcr_spmm`, see `#bcr.schedule` in dialects/bcr.py for the loop nest)
holds the accumulators of a *register group* of R consecutive rows of the
reordered row space and walks one list over the columns any of them keeps
(across all blocks those rows cross, so blocks sharing a column share its
load). With RLE each input vector of the list entry is loaded once and feeds
all R rows. This pass picks R and the tile for every BCR weight and writes
them into its schedule: `rle`, `rows` = R, `tile` = V x `vector_width` output
pixels (or batch rows), `unroll` and `order`. An explicit schedule is what
the lowering then honours, and what a tuner starts from.

**The loads-per-FMA model** (`loads_per_fma`), per list entry and tile of
V = ceil(min(tile, P) / vector_width) vectors (P = output pixels or batch rows
of one application of the weight):

- FMAs: R * V (zeros of rows that do not keep the column included: the
  register group computes all R rows);
- weight loads: R (each row's weight is broadcast once per entry and reused
  for the V vectors; counted explicitly even where the ISA folds the
  broadcast into the FMA's memory operand);
- input loads: V with RLE; R * V without (every row reloads the input).

So loads/FMA = (R*V + R) / (R*V) = 1 + 1/V without RLE (2 for the plain
nest, V = 1) and (V + R) / (R*V) = 1/R + 1/V with it: (1 + R)/R at V = 1, 0.458
for the 8 rows x 3 vectors tile of docs/bcr.md. Sums over all entries and
tiles weight the W and R matrices of recurrent ops by how often they run. The
schedule is evaluated as written: the all-default schedule is the plain nest
(R = 1, V = 1, no RLE: 2.0), even though today's lowering picks a register
tile itself when it sees an untouched schedule.

**The choice.** For R in 1..max_rows and V in 1..max_vectors with R*V <=
accumulators (registers 16 -> 12 accumulators, R <= 4, V <= 3; registers 32 ->
24, R <= 8, V <= 6), minimize the modeled cycles
``entries(R) * tiles(V) * max(R*V / 2, (V + R) / 2, 4)``: list entries grow
with R where rows keep different columns, tiles of V vectors pad P, two FMAs
and two loads issue per cycle, and one entry takes at least the FMA latency
(4 cycles). Tiles within 2% of the fewest cycles tie; ties go to fewer
loads per FMA, then larger R, R nearer the block height, wider tiles. `unroll`
is 2 when the lists average at least 8 entries per group; `order` is
`spatial` for a conv whose input exceeds L2 (512 KiB) and whose kernel is
larger than 1x1, else `stripe` (the lowering's own rule for untuned ops).
Defaults target host AVX2 (`registers=16 vector-width=8`); use
`registers=32 vector-width=16` for AVX-512 and `registers=32 vector-width=4`
for NEON.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass

from grimc.dialects.bcr import BCROp, Conv2dOp, RecurrentOp, ScheduleAttr
from grimc.dialects.graph import shape_of
from grimc.errors import GrimcError
from grimc.transforms._bcr_utils import (
    WeightRef,
    bcr_ops,
    decode_packed,
    encoding_of,
    pixels,
    prefix_of,
    store_of,
    weight_refs,
    with_schedule,
)

L2_BYTES = 512 * 1024
"""Input size beyond which a conv runs pixel tiles over all stripes (order = spatial)."""

FMA_PER_CYCLE = 2.0
LOADS_PER_CYCLE = 2.0
FMA_LATENCY = 4.0
NEAR = 0.02
"""Register tiles within this fraction of the fewest modeled cycles count as ties,
decided by fewer loads per FMA: the issue model ignores load latency and port
pressure, yet 8 rows x 3 vectors beat 8 x 2 by 10-15% (docs/bcr.md)."""


@dataclass(frozen=True)
class LoadCounts:
    """Vector loads and FMAs of a kernel's inner loop."""

    input_loads: int
    weight_loads: int
    fmas: int

    def __add__(self, other: LoadCounts) -> LoadCounts:
        return LoadCounts(
            self.input_loads + other.input_loads,
            self.weight_loads + other.weight_loads,
            self.fmas + other.fmas,
        )

    @property
    def per_fma(self) -> float:
        return (self.input_loads + self.weight_loads) / self.fmas if self.fmas else 0.0


def group_entries(grids: np.ndarray, rows: int) -> int:
    """List entries when each grid's rows are cut into register groups of `rows`.

    A group's list holds every column any of its rows keeps (nonzero), so the
    count is the number of (group, column) pairs with a nonzero. `grids` is
    [G, M, K] in kernel row order (`PackedWeight.grids`).
    """
    nz = grids != 0
    g, m, k = nz.shape
    pad = -m % rows
    if pad:
        nz = np.concatenate([nz, np.zeros((g, pad, k), dtype=bool)], axis=1)
    return int(nz.reshape(g, -1, rows, k).any(axis=2).sum())


def entry_counts(entries: int, tiles: int, rle: bool, rows: int, vectors: int) -> LoadCounts:
    """Loads and FMAs of `entries` list entries over `tiles` tiles (module docstring)."""
    steps = entries * tiles
    return LoadCounts(
        input_loads=steps * (vectors if rle else rows * vectors),
        weight_loads=steps * rows,
        fmas=steps * rows * vectors,
    )


def tile_vectors(schedule: ScheduleAttr, pixel_count: int, vector_width: int) -> int:
    """V: vectors per row in one tile (a tile never exceeds the pixels there are)."""
    return max(1, -(-min(schedule.tile.data, pixel_count) // vector_width))


def _tiles(pixel_count: int, vectors: int, vector_width: int) -> int:
    return max(1, -(-pixel_count // (vectors * vector_width)))


def _runs(op: BCROp, ref: WeightRef) -> int:
    """How often the weight is applied per inference: R once per time step."""
    if isinstance(op, RecurrentOp) and ref.label == "R":
        return shape_of(op.x)[0]
    return 1


def op_load_counts(op: BCROp, vector_width: int = 8) -> LoadCounts:
    """Loads and FMAs of one inference of `op` under its schedule(s) as written."""
    store = store_of(op)
    total = LoadCounts(0, 0, 0)
    for ref in weight_refs(op):
        encoding = encoding_of(op, ref)
        schedule = encoding.schedule
        grids = decode_packed(store, prefix_of(op, ref), encoding).grids
        p = pixels(op, ref)
        v = tile_vectors(schedule, p, vector_width)
        rows = schedule.rows.data
        total = total + entry_counts(
            group_entries(grids, rows),
            _tiles(p, v, vector_width) * _runs(op, ref),
            bool(schedule.rle.data),
            rows,
            v,
        )
    return total


def loads_per_fma(op: BCROp, vector_width: int = 8) -> float:
    """Input-vector + weight loads per FMA of the inner loop the sparse kernel runs for `op`.

    The analytic model of the module docstring, evaluated on the op's packed
    weights and schedule(s); `vector_width` is the target's floats per vector.
    """
    return op_load_counts(op, vector_width).per_fma


# --------------------------------------------------------------------------
# the choice


@dataclass(frozen=True)
class RegisterTile:
    rows: int
    vectors: int
    entries: int
    cycles: float


def entry_cycles(rows: int, vectors: int) -> float:
    """Modeled cycles of one list entry over one tile (issue widths, FMA latency)."""
    return max(rows * vectors / FMA_PER_CYCLE, (vectors + rows) / LOADS_PER_CYCLE, FMA_LATENCY)


def choose_tile(
    grids: np.ndarray, height: int, pixel_count: int, vector_width: int, registers: int
) -> RegisterTile:
    """The register tile with the fewest modeled cycles that fits (module docstring).

    `grids` [G, M, K] in kernel row order; `height` the block rows (tie-break).
    """
    accumulators = registers * 3 // 4
    max_rows, max_vectors = max(1, accumulators // 3), max(1, accumulators // 4)
    nz = grids != 0
    tiles: list[RegisterTile] = []
    for rows in range(1, max_rows + 1):
        entries = group_entries(nz, rows)
        for vectors in range(1, max_vectors + 1):
            if rows * vectors > accumulators:
                break
            cycles = entries * _tiles(pixel_count, vectors, vector_width) * entry_cycles(rows, vectors)
            tiles.append(RegisterTile(rows, vectors, entries, cycles))
    fastest = min(t.cycles for t in tiles)
    near = [t for t in tiles if t.cycles <= (1 + NEAR) * fastest]
    return min(
        near,
        key=lambda t: (
            round((t.vectors + t.rows) / (t.rows * t.vectors), 9),
            -t.rows,
            abs(t.rows - height),
            -t.vectors,
        ),
    )


def loop_order(op: BCROp) -> str:
    """`spatial` for a conv whose input outgrows L2 (and is not 1x1), else `stripe`."""
    if isinstance(op, Conv2dOp):
        xs = shape_of(op.x)
        kernel = [int(v) for v in op.kernel_shape.get_values()]
        if 4 * xs[1] * xs[2] * xs[3] > L2_BYTES and kernel != [1, 1]:
            return "spatial"
    return "stripe"


def rle_module(module: ModuleOp, registers: int = 16, vector_width: int = 8) -> None:
    """Write rle/rows/tile/unroll/order into the schedule of every BCR weight of `module`."""
    for op in list(bcr_ops(module)):
        store = store_of(op)
        for ref in weight_refs(op):
            encoding = encoding_of(op, ref)
            grids = decode_packed(store, prefix_of(op, ref), encoding).grids
            p = pixels(op, ref)
            tile = choose_tile(grids, encoding.block_shape[0], p, vector_width, registers)
            groups = len(grids) * -(-grids.shape[1] // tile.rows)
            op.properties[ref.encoding_prop] = with_schedule(
                encoding,
                rle=True,
                rows=tile.rows,
                tile=min(tile.vectors * vector_width, max(p, 1)),
                unroll=2 if tile.entries >= 8 * groups else 1,
                order=loop_order(op),
            )


@dataclass(frozen=True)
class BcrRle(ModulePass):
    """Register-block BCR kernels across rows so each input vector is loaded once per group."""

    name = "bcr-rle"

    registers: int = 16
    vector_width: int = 8

    def __post_init__(self) -> None:
        if self.vector_width < 1:
            raise GrimcError(f"bcr-rle: vector-width={self.vector_width} must be >= 1")
        if self.registers < 4:
            raise GrimcError(f"bcr-rle: registers={self.registers} must be >= 4")

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        rle_module(op, self.registers, self.vector_width)
