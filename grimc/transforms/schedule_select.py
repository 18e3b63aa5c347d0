"""schedule-select: the one place that decides how every scheduled kernel runs.

For each op whose kernel has knobs, this pass reads the module's `#sched.target`
and the op's shapes and weights, runs the cost model below, and writes a typed
schedule attribute (`grimc.dialects.sched`) on the op, under the key `sched`
(`sched.proj` for the input projection of a recurrent op). Lowerings only read
these attributes; a schedule edited by hand in an IR dump is what the code is
generated with (`grimc-opt dump.mlir -p ...`, or `grimc dump.mlir`). Ops that
already carry a schedule keep it unless `overwrite=true`.

BCR ops (bcr.conv2d, bcr.matmul; the projection of bcr.gru/lstm/rnn) get:

- `#sched.spmm` (register-blocked sparse kernel; a matmul with at least 4
  vectors of batch rows) or `#sched.gemv` (fewer batch rows), or `#sched.csr`
  with `sparse-format=csr` (or the op's `sparse_format = "csr"` attribute).

**Register grouping** (redundant-load elimination). In a BCR block every kept
row reads the same kept columns. The sparse kernel holds the accumulators of a
register group of R consecutive rows of the reordered row space and walks one
list over the columns any of them keeps, so each input vector of a list entry
is loaded once and feeds all R rows. One cost model (`RegisterBudget`,
`register_tiles`) picks R and the tile: tiles of R rows x V vectors of pixels
(or batch rows), R in 1..max_rows, V in 1..max_vectors, R*V within the
target's accumulators (`register_budget`: three quarters of its registers),
cost `entries(R) * tiles(V) * (overhead + max(R*V/2, (V+R)/2, 4))` cycles (two
FMAs and two loads per cycle, the FMA latency per entry; per list entry and
tile R*V FMAs, R weight broadcasts and V input loads, R*V without RLE, so
loads/FMA = 1/R + 1/V with RLE). It runs in two steps:

1. `loads_tile`, on the op's own pixel count P (tiles = ceil(P / (V*vw))), no
   entry overhead: tiles within 2% of the fewest cycles tie and go to fewer
   loads per FMA, larger R, R nearer the block height, wider tiles. `unroll`
   is 2 when the lists average at least 8 entries per group; `order` is
   `spatial` for a conv larger than 1x1 whose input exceeds half the L2.
2. `choose_tile`, on the geometry the kernel really runs (after a strided
   conv's polyphase split, its real tile padding) with the fixed cost per
   entry: when step 1 chose R = 1 it picks R again (else R is kept); the tile
   stays step 1's unless step 1 chose a single pixel.

`fits_registers` is the same budget for what a tuner may try.

**Other knobs.** Spatial blocks (`tblock`) hold a quarter of the L2 of input;
prefetch (`pf`) is `PREFETCH` entries for kernels larger than 1x1. GEMV:
R by modeled weight loads + gathers (`gemv_rows`), `nb_tile` batch rows within
the accumulators, enough accumulator `sets` to cover the FMA latency, `gather`
the longest group list in whole vectors (at most `GATHER_CHUNK` per pass).
**Threads**: bcr-reorder's balance (`#bcr.schedule` threads > 1) if it set one,
else the compile's thread count unless the work is under `MAX_PARALLEL_GRAIN`
multiply-adds per thread; tasks split register groups, or pixel tiles when
there are fewer groups than tasks (conv), or batch chunks when there are at
least two per task (matmul).

**Recurrences.** bcr.gru/lstm/rnn get `#sched.sparse_cell`: q columns per
vector by modeled cycles per step (`choose_q`: the L2 weight stream or the
FMAs, plus forming each input vector), up to 4 batch rows per block, enough
accumulator sets, tasks per step once a step has `MIN_PARALLEL_ENTRIES` list
entries. graph.gru/lstm/rnn get `#sched.cell` (the widest chunk whose whole
batch fits the registers; tasks once a step has `MIN_PARALLEL_MACS`) and a
`#sched.gemm` projection.

**Dense kernels.** graph.gemm/matmul get `#sched.gemm`, graph.conv
`#sched.conv` or `#sched.depthwise`: the ISA's register tile (`DENSE_TILES`),
a GEMV tile for one row, K chunks within L1, blocks within L2, channel vectors
for small images on x86, and an even thread split.
**Sweeps.** Memory-bound kernels get `#sched.split`: element-wise ops a flat
split into chunks aligned to `CHUNK_ALIGN` floats (or whole rows of a
broadcast), pools and batch norm / LRN their planes, softmax and layer norm
their rows, a strided BCR conv's phase split (key `sched.phase`) its planes;
one task per thread once the sweep is large enough to repay waking the pool.
**OpenCL** (target `opencl`): GEMM, GEMV and conv kernels, BCR or dense
(and a recurrence's input projection), get `#sched.cl_linear`: R rows per
work-item (its `floatR` weight loads; register groups as above) minimizing
list entries x (R FMAs + one gathered input load, `CL_LOAD_COST`), up to the
target's vector width; batch rows / pixels vary fastest; the driver picks the
work-group size. Recurrences get `#sched.cl_cell` (R over the R matrix, a
work-group of `CL_CELL_LOCAL` per direction). There are no CSR OpenCL kernels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.ir import Operation
from xdsl.passes import ModulePass

from grimc.dialects import graph
from grimc.dialects.bcr import BCROp, Conv2dOp, EncodingAttr, RecurrentOp
from grimc.dialects.graph import shape_of
from grimc.dialects.sched import (
    CL_WIDTHS,
    PHASE_ATTR,
    PROJECTION_ATTR,
    SCHEDULE_ATTR,
    CellSchedule,
    ClCellSchedule,
    ClLinearSchedule,
    ConvSchedule,
    CsrSchedule,
    DepthwiseSchedule,
    GemmSchedule,
    GemvSchedule,
    KnobsAttr,
    SparseCellSchedule,
    SplitSchedule,
    SpmmSchedule,
    module_target_or,
)
from grimc.emit.kernels.activation import ACTIVATION_OPS
from grimc.emit.kernels.bcr_conv import ConvGeometry, PhaseSplit
from grimc.emit.kernels.bcr_matmul import STACK_BYTES
from grimc.emit.kernels.bcr_recurrent import list_lengths, q_choices
from grimc.emit.kernels.conv import ConvShape, choose_kind, conv_shape
from grimc.emit.kernels.elementwise import ELTWISE_OPS, eltwise_layout
from grimc.emit.kernels.gemm import Problem, gemm_problem, matmul_problem
from grimc.emit.kernels.recurrent import Cell, cell_of
from grimc.errors import GrimcError
from grimc.target import Target
from grimc.transforms._bcr_utils import (
    LINEAR_REFS,
    PackedWeight,
    WeightRef,
    decode_packed,
    encoding_of,
    pixels,
    prefix_of,
    store_of,
    weight_refs,
)

FORMAT_ATTR = "sparse_format"
"""Discardable op attribute that overrides the pass's (or code generator's) sparse format."""
FORMATS = ("bcr", "csr")

PREFETCH = 24
"""Entries ahead to prefetch inputs for (kernels larger than 1x1, whose list entries
hop between channels and kernel positions): +10-25% on VGG-16-sized layers with
inputs in L2, neutral on 1x1 and L1-resident inputs."""

MAX_PARALLEL_GRAIN = 50_000
"""Below this many multiply-adds per thread, waking the pool costs more than it saves."""

GATHER_CHUNK = 2048
"""Most inputs the GEMV kernel gathers per pass (on the stack; a multiple of every
vector width); a group's list shorter than that is gathered in one pass."""

GATHER_CYCLES = 0.5
"""Modeled cost of gathering one input element (a scalar load and store)."""

NEAR = 0.02
"""Register tiles within this fraction of the fewest modeled cycles count as ties,
decided by fewer loads per FMA: the issue model ignores load latency and port
pressure, yet 8 rows x 3 vectors beat 8 x 2 by 10-15%."""


# --------------------------------------------------------------------------
# list entries of register groups


def _padded(wp: np.ndarray, rows: int) -> np.ndarray:
    pad = -wp.shape[0] % rows
    return np.pad(wp, ((0, pad), (0, 0))) if pad else wp


def group_counts(grids: Sequence[np.ndarray], rows: int) -> np.ndarray:
    """List length of every register group if rows are grouped R at a time.

    A group's list holds every column any of its rows keeps (nonzero); `grids`
    are the matrices in kernel row order (W[perm])."""
    counts = [
        (_padded(wp, rows) != 0).reshape(-1, rows, wp.shape[1]).any(axis=1).sum(axis=1)
        for wp in grids
    ]
    return np.concatenate(counts).astype(np.int64)


def group_entries(grids: Sequence[np.ndarray], rows: int) -> int:
    """Total list entries if rows are grouped R at a time."""
    return int(group_counts(grids, rows).sum())


def group_count(grids: Sequence[np.ndarray], rows: int) -> int:
    """Register groups: every matrix's rows cut R at a time (the last padded)."""
    return sum(-(-wp.shape[0] // rows) for wp in grids)


# --------------------------------------------------------------------------
# the register-tile cost model


@dataclass(frozen=True)
class RegisterBudget:
    """The register tiles a target's kernels may use, and the issue model that costs
    them: `fma_per_cycle` FMAs and `loads_per_cycle` loads issue per cycle, an
    accumulator is updated at most once per `fma_latency`, and a list entry of a
    sparse kernel has a fixed `entry_overhead` (offset load, loop control, prefetch)."""

    accumulators: int
    max_rows: int
    max_vectors: int
    fma_per_cycle: float = 2.0
    loads_per_cycle: float = 2.0
    fma_latency: float = 4.0
    entry_overhead: float = 1.0

    def issue_cycles(self, rows: int, vectors: int) -> float:
        """Cycles of one list entry over a tile of `vectors` vectors: rows*vectors FMAs,
        `vectors` input loads + `rows` weight broadcasts, at least the FMA latency (each
        accumulator is updated once per entry)."""
        return max(
            rows * vectors / self.fma_per_cycle,
            (vectors + rows) / self.loads_per_cycle,
            self.fma_latency,
        )


def register_budget(target: Target) -> RegisterBudget:
    """Three quarters of the vector registers hold accumulators (the rest: inputs and
    broadcasts): 32 registers (AVX-512, NEON) -> 24, at most 8 rows x 6 vectors;
    16 (AVX2) -> 12, 4 x 3."""
    accumulators = target.registers * 3 // 4
    return RegisterBudget(accumulators, max(1, accumulators // 3), max(1, accumulators // 4))


@dataclass(frozen=True)
class RegisterTile:
    """A register tile of `rows` rows x `vectors` vectors and its modeled cost."""

    rows: int
    vectors: int
    entries: int
    cycles: float

    @property
    def loads_per_fma(self) -> float:
        """Input loads + weight broadcasts per FMA (with RLE): 1/rows + 1/vectors."""
        return (self.vectors + self.rows) / (self.rows * self.vectors)


def register_tiles(
    grids: Sequence[np.ndarray],
    budget: RegisterBudget,
    tiles: Callable[[int], int],
    rows: Iterable[int],
    overhead: float,
) -> list[RegisterTile]:
    """Every tile of R rows (from `rows`) x V vectors within the accumulators, costed:
    list entries when grouping R rows x `tiles(V)` tiles (padding included) x
    (`overhead` + issue cycles) per entry and tile."""
    out = []
    for r in rows:
        entries = group_entries(grids, r)
        for v in range(1, budget.max_vectors + 1):
            if r * v > budget.accumulators:
                break
            cycles = entries * tiles(v) * (overhead + budget.issue_cycles(r, v))
            out.append(RegisterTile(r, v, entries, cycles))
    return out


def _tiles(pixel_count: int, vectors: int, vector_width: int) -> int:
    return max(1, -(-pixel_count // (vectors * vector_width)))


def loads_tile(grids: np.ndarray, height: int, pixel_count: int, target: Target) -> RegisterTile:
    """Step 1: the tile of fewest issue cycles over the op's own `pixel_count` (no
    entry overhead), near-ties to fewer loads per FMA (module docstring). `height`
    is the block rows."""
    budget = register_budget(target)
    vw = target.vector_width
    tiles = register_tiles(
        grids != 0, budget, lambda v: _tiles(pixel_count, v, vw), range(1, budget.max_rows + 1), 0.0
    )
    fastest = min(t.cycles for t in tiles)
    near = [t for t in tiles if t.cycles <= (1 + NEAR) * fastest]
    return min(
        near,
        key=lambda t: (round(t.loads_per_fma, 9), -t.rows, abs(t.rows - height), -t.vectors),
    )


def choose_tile(
    grids: Sequence[np.ndarray],
    budget: RegisterBudget,
    block_rows: int,
    tiles: Callable[[int], int],
    rows: int | None = None,
) -> tuple[int, int]:
    """Step 2: (R, nv) of fewest modeled cycles on the kernel's own geometry
    (`tiles(nv)`), the entry overhead included. `rows` fixes R. Ties go to the larger
    R, then to R near the block's rows, then to wider tiles."""
    ranked = register_tiles(
        grids, budget, tiles, [rows] if rows else range(1, budget.max_rows + 1),
        budget.entry_overhead,
    )  # fmt: skip
    best = min(
        ranked,
        key=lambda t: (round(t.cycles, 6), -t.rows, abs(t.rows - block_rows), -t.vectors),
    )
    return best.rows, best.vectors


def fits_registers(attr: KnobsAttr, target: Target) -> bool:
    """Whether a schedule's register tile fits the target's accumulators (more would
    spill every FMA): what a tuner may try."""
    k = attr.knobs()
    budget = register_budget(target).accumulators
    if isinstance(attr, SpmmSchedule):
        return int(k["rows"]) * int(k["nv"]) <= budget
    if isinstance(attr, GemmSchedule | ConvSchedule):
        return int(k["mr"]) * int(k["nv"]) <= budget
    if isinstance(attr, GemvSchedule):
        return int(k["rows"]) * int(k["nb_tile"]) * int(k["sets"]) <= budget
    return True


# --------------------------------------------------------------------------
# loads per FMA of a chosen schedule (an analysis: benches and tests report it)


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


def entry_counts(entries: int, tiles: int, rle: bool, rows: int, vectors: int) -> LoadCounts:
    """Loads and FMAs of `entries` list entries over `tiles` tiles (module docstring)."""
    steps = entries * tiles
    return LoadCounts(
        input_loads=steps * (vectors if rle else rows * vectors),
        weight_loads=steps * rows,
        fmas=steps * rows * vectors,
    )


def loads_per_fma(op: BCROp, target: Target) -> float:
    """Input-vector + weight loads per FMA of the inner loop of `op`'s sparse kernel
    under its `#sched.spmm`/`#sched.gemv` (the plain nest, 2.0, when it has none)."""
    return op_load_counts(op, target).per_fma


def op_load_counts(op: BCROp, target: Target) -> LoadCounts:
    """Loads and FMAs of one inference of `op` under its schedule (see `loads_per_fma`)."""
    vw = target.vector_width
    sched = op.attributes.get(SCHEDULE_ATTR)
    rows, nv, rle = 1, 1, False
    if isinstance(sched, SpmmSchedule | GemvSchedule):
        rows, rle = sched.rows.data, bool(sched.rle.data)
        nv = sched.nv.data if isinstance(sched, SpmmSchedule) else 1
    total = LoadCounts(0, 0, 0)
    for ref, _encoding, weight in _weights(op):
        grids = weight.grids
        p = pixels(op, ref)
        v = max(1, -(-min(nv * vw, p) // vw))
        runs = shape_of(op.x)[0] if ref.label == "R" else 1  # R runs once per time step
        total = total + entry_counts(
            group_entries(grids, rows), _tiles(p, v, vw) * runs, rle, rows, v
        )
    return total


def gemv_rows(grids: Sequence[np.ndarray], vw: int, nb_tile: int, budget: RegisterBudget) -> int:
    """R minimizing modeled cycles: per chunk of vw columns, R weight loads and
    FMAs per batch row plus the gather, which R rows share."""
    costs = []
    for rows in range(1, budget.max_rows + 1):
        chunks = int(np.ceil(group_counts(grids, rows) / vw).sum())
        nbr = max(1, min(nb_tile, budget.accumulators // rows))
        per_chunk = max(rows * nbr / budget.fma_per_cycle, (rows + nbr) / budget.loads_per_cycle)
        costs.append((chunks * (per_chunk / nbr + vw * GATHER_CYCLES), -rows, rows))
    return min(costs)[2]


def task_count(encoding: EncodingAttr, threads: int, work: int) -> int:
    """Tasks for a kernel of `work` multiply-adds: bcr-reorder's balance when it set
    threads > 1, else `threads` unless the work is too small to repay waking the pool."""
    if encoding.schedule.threads.data > 1:
        return encoding.schedule.threads.data
    if threads <= 1:
        return 1
    return max(1, min(threads, work // MAX_PARALLEL_GRAIN))


def use_gemm(nb: int, k: int, vw: int) -> bool:
    """Many batch rows: the transposed register tile beats re-streaming weights."""
    return nb >= 4 * vw and 4 * k * 2 * vw <= STACK_BYTES


# --------------------------------------------------------------------------
# per op


@dataclass(frozen=True)
class Grouping:
    """Model 1's choice for one weight: rows per group, tile (pixels), unroll."""

    rows: int
    tile: int
    unroll: int


def grouping(grids: np.ndarray, encoding: EncodingAttr, p: int, target: Target) -> Grouping:
    """Model 1 on a weight applied to `p` pixels or batch rows."""
    tile = loads_tile(grids, encoding.block_shape[0], p, target)
    groups = group_count(list(grids), tile.rows)
    return Grouping(
        rows=tile.rows,
        tile=min(tile.vectors * target.vector_width, max(p, 1)),
        unroll=2 if tile.entries >= 8 * groups else 1,
    )


def sparse_conv_schedule(
    op: Conv2dOp, grids: np.ndarray, target: Target, threads: int
) -> SpmmSchedule:
    """bcr.conv2d -> bcr_spmm (module docstring)."""
    vw = target.vector_width
    encoding = op.encoding
    first = grouping(grids, encoding, pixels(op, LINEAR_REFS[0]), target)
    geo = ConvGeometry.of(op)
    xs = shape_of(op.x)
    spatial = 4 * xs[1] * xs[2] * xs[3] > target.l2_bytes // 2 and geo.npos > 1
    kernel_grids = list(grids)
    split = PhaseSplit.of(geo)
    if split is not None:
        geo, kernel_grids = split.phased, split.remap(kernel_grids)
    rows, nv = choose_tile(
        kernel_grids,
        register_budget(target),
        encoding.block_shape[0],
        lambda nv: geo.tiles(nv * vw)[0],
        rows=None if first.rows == 1 else first.rows,
    )
    if first.tile > 1:
        nv = max(1, math.ceil(first.tile / vw))
    tile = nv * vw
    block_bytes = target.l2_bytes // 2  # one spatial block of input: half the L2
    halo = (geo.kh - 1) * geo.dh * geo.w + (geo.kw - 1) * geo.dw
    step = tile * geo.sw if geo.is_linear else geo.w * geo.sh / math.ceil(geo.ow / tile)
    tblock = max(1, int((block_bytes / 2 / (4 * geo.cin) - halo) // max(step, 1)))
    nnz = int(np.count_nonzero(grids))
    ntasks = task_count(encoding, threads, nnz * geo.oh * geo.ow * geo.n)
    ntiles = geo.tiles(tile)[0]
    by_tiles = group_count(kernel_grids, rows) < ntasks <= ntiles
    return SpmmSchedule(
        rows=rows, nv=nv, unroll=first.unroll, order="spatial" if spatial else "stripe",
        tblock=tblock, pf=PREFETCH if geo.npos > 1 else 0, rle=True, threads=ntasks,
        split="tiles" if by_tiles else "groups",
    )  # fmt: skip


def linear_schedule(
    encoding: EncodingAttr, grids: np.ndarray, nb: int, target: Target, threads: int
) -> SpmmSchedule | GemvSchedule:
    """A sparse linear layer of `nb` batch rows (bcr.matmul, an RNN's projection)."""
    vw = target.vector_width
    k = encoding.matrix_shape[1]
    first = grouping(grids, encoding, nb, target)
    budget = register_budget(target)
    mats = list(grids)
    if use_gemm(nb, k, vw):
        max_nv = max(1, min(budget.max_vectors, STACK_BYTES // (4 * k * vw)))
        stack_budget = RegisterBudget(budget.accumulators, budget.max_rows, max_nv)
        rows, nv = choose_tile(
            mats, stack_budget, encoding.block_shape[0], lambda nv: math.ceil(nb / (nv * vw)),
            rows=None if first.rows == 1 else first.rows,
        )  # fmt: skip
        if first.tile > 1:
            nv = max(1, min(max_nv, math.ceil(first.tile / vw)))
        ntasks = task_count(encoding, threads, group_entries(mats, rows) * rows * nb)
        chunks = math.ceil(nb / (nv * vw)) >= 2 * ntasks
        return SpmmSchedule(
            rows=rows, nv=nv, unroll=first.unroll, order="stripe", tblock=1, pf=0, rle=True,
            threads=ntasks, split="chunks" if chunks else "groups",
        )  # fmt: skip
    nb_cap = max(1, min(nb, 4))
    rows = first.rows if first.rows > 1 else gemv_rows(mats, vw, nb_cap, budget)
    nb_tile = max(1, min(nb_cap, budget.accumulators // rows))
    sets = max(1, min(4, math.ceil(2 * budget.fma_latency / (rows * nb_tile))))
    counts = group_counts(mats, rows)
    chunks = -(-counts // vw)  # vectors of each group's list
    gather = min(GATHER_CHUNK, max(vw, int(chunks.max(initial=1)) * vw))
    ntasks = task_count(encoding, threads, int(counts.sum()) * rows * nb)
    return GemvSchedule(
        rows=rows, nb_tile=nb_tile, sets=sets, gather=gather, rle=True, threads=ntasks
    )


def csr_schedule(
    op: BCROp, encoding: EncodingAttr, grids: np.ndarray, work: int, target: Target, threads: int
) -> CsrSchedule:
    """The CSR baseline: the widest pixel tile that fits, threads over rows."""
    nv = register_budget(target).max_vectors if isinstance(op, Conv2dOp) else 1
    return CsrSchedule(nv=nv, threads=task_count(encoding, threads, work))


def _weights(op: BCROp) -> Iterator[tuple[WeightRef, EncodingAttr, PackedWeight]]:
    """(ref, encoding, decoded weight) of each packed weight of `op`."""
    store = store_of(op)
    for ref in weight_refs(op):
        encoding = encoding_of(op, ref)
        yield ref, encoding, decode_packed(store, prefix_of(op, ref), encoding)


def sparse_format_of(op: Operation, default: str) -> str:
    """ "bcr" or "csr": the op's `sparse_format` attribute, else `default`."""
    attr = op.attributes.get(FORMAT_ATTR)
    fmt = attr.data if isinstance(attr, StringAttr) else default
    if fmt not in FORMATS:
        raise GrimcError(f"{op.name}: unknown sparse format '{fmt}' (expected bcr or csr)")
    return fmt


# --------------------------------------------------------------------------
# dense kernels


@dataclass(frozen=True)
class DenseTiles:
    """Register tiles of the dense kernels on one ISA: (mr, nv) of the GEMM (mr rows x
    nv vectors: mr*nv accumulators + nv B vectors + 1 broadcast fill the register
    file) and of the conv (mr channels x nv pixel vectors); the conv's channel-vector
    tiles (pixels, channel vectors), tried in order (x86 only; 7 divides every map size
    of a 224x224 network)."""

    gemm: tuple[int, int]
    conv: tuple[int, int]
    conv_channels: tuple[tuple[int, int], ...] = ()
    winograd: bool = False
    """3x3 stride-1 convs with enough channels run Winograd F(2x2, 3x3) (`vec = w`):
    measured on x86 only (docs/operators.md)."""


DENSE_TILES: dict[str, DenseTiles] = {
    "avx512": DenseTiles((12, 2), (8, 3), ((7, 3), (6, 4)), winograd=True),
    "avx2": DenseTiles((6, 2), (4, 3), ((6, 2),), winograd=True),
    "neon": DenseTiles((8, 3), (8, 3)),
    "scalar": DenseTiles((4, 4), (4, 2)),
}
"""By `Target.isa` (others: scalar's)."""

KC_MAX = 256
"""Longest GEMM K chunk; a kc x nr panel chunk then fits L1 next to the A rows."""

GEMM_L2_SHARE = 8
"""The GEMM's A block (mc x kc floats) kept in L2 takes this fraction of it."""

GEMM_MIN_PARALLEL_FLOPS = 200_000
CONV_MIN_PARALLEL_FLOPS = 400_000
"""Below these, waking the pool costs more than the work."""

WINOGRAD_MIN_CHANNELS = 32
"""Winograd F(2x2, 3x3) needs this many input and output channels: its input
transform costs about 1/Cout and its output transform 1/Cin of the 2.25x smaller
GEMM work (the text recognizer's 32 -> 64 and 64 -> 128 convs pay, 1 -> 32 not)."""

WINOGRAD_L2_SHARE = 2
"""A Winograd block's transformed inputs and products (16 x (Cin + Cout) x tb
floats per task) take this fraction of L2, but hold at least WINOGRAD_MIN_TILES."""

WINOGRAD_MIN_TILES = 32
"""Smallest block worth it: ResNet-18's 256-channel 14x14 convs ran no faster than
the direct conv with 16 tiles per block (1-vector micro-kernels), 0.86x of its time
with 32. A conv whose 32-tile block does not fit L2 stays direct (VGG-16's
512-channel convs: 1.4x slower with blocks twice L2)."""

CONV_L2_SHARE = 4
"""A conv's packed block of `kc x tb` floats (per task, in arena scratch) takes this
fraction of L2; a packed `kc x T` tile (read by every channel block) stays within L1."""

MIN_PARALLEL_MACS = 65_536
"""Per-step recurrent work (MACs per direction) below which one thread runs a step.
A grimc_parallel_for round trip measured ~0.5 us on an idle 2-core host, about
the time of 16k MACs; splitting pays from a few times that (GRU hidden ~150)."""


def dense_tiles(target: Target) -> DenseTiles:
    return DENSE_TILES.get(target.isa, DENSE_TILES["scalar"])


def gemm_schedule(prob: Problem, target: Target, threads: int) -> GemmSchedule:
    """GEMV tile for M = 1, else the register-file-filling tile of the target; K chunks
    within L1, A blocks within L2, then the thread split."""
    vw = target.vector_width
    if prob.m == 1:
        mr, nv, ku = 1, 4 if vw > 1 else 8, 2
    else:
        (mr, nv), ku = dense_tiles(target).gemm, 1
    nr = nv * vw
    if prob.m == 1 and prob.b_const:
        kc = prob.k
    else:
        chunks = math.ceil(prob.k / KC_MAX)
        kc = math.ceil(prob.k / chunks)
    # a run-time packed B chunk is packed once per L2 block of A: use bigger blocks
    block = target.l2_bytes // GEMM_L2_SHARE
    budget = block if prob.b_const else 4 * block
    mcb = max(1, budget // (4 * kc * mr))
    split, ntasks = _gemm_split(prob, mr, nr, threads)
    return GemmSchedule(mr=mr, nv=nv, ku=ku, kc=kc, mcb=mcb, split=split, ntasks=ntasks)


def _gemm_split(prob: Problem, mr: int, nr: int, threads: int) -> tuple[str, int]:
    """Which dimension the threads share, and into how many tasks."""
    flops = 2 * prob.m * prob.n * prob.k * prob.nb
    if threads <= 1 or flops < GEMM_MIN_PARALLEL_FLOPS:
        return "n", 1
    panels, blocks = math.ceil(prob.n / nr), math.ceil(prob.m / mr)
    if prob.nb >= threads:
        return "b", threads
    if panels >= 2 * threads or (not prob.b_const and panels >= threads) or blocks < threads:
        return "n", min(threads, panels)
    return "m", min(threads, blocks)


def _conv_split(s: ConvShape, ncb: int, threads: int, by_pixels: bool) -> tuple[str, int]:
    """Which dimension the threads share: images or groups when they cut into
    equal parts, else pixel ranges (`by_pixels`) or channel blocks."""
    if threads <= 1 or s.flops < CONV_MIN_PARALLEL_FLOPS:
        return "p", 1
    if s.n % threads == 0:
        return "n", threads
    if s.groups % threads == 0:
        return "g", threads
    if by_pixels:
        return "p", threads
    if ncb >= threads:
        return "c", threads
    return "p", 1


def pixel_efficiency(p: int, vw: int) -> float:
    """Share of computed lanes that are real pixels when vectorizing P pixels."""
    return p / (math.ceil(p / vw) * vw)


def dense_conv_schedule(s: ConvShape, target: Target, threads: int) -> ConvSchedule:
    """The target's register tile, L1-sized reduction chunks, L2-sized pixel blocks, an
    even thread split. Small images (7x7: 49 pixels fill 4 vectors of 16 to 77%)
    vectorize over output channels instead (`vec = c`); 3x3 stride-1 convs with
    enough channels, but not so many that a Winograd block outgrows L2, run
    Winograd F(2x2, 3x3) (`vec = w`)."""
    vw = target.vector_width
    tiles = dense_tiles(target)
    if tiles.conv_channels and s.k >= 64 and pixel_efficiency(s.p, vw) < 0.9:
        return _channel_schedule(s, target, threads)
    if (
        tiles.winograd
        and s.is_3x3_unit
        and min(s.cin, s.cout) >= WINOGRAD_MIN_CHANNELS
        and (4 * 16 * (s.cin + s.cout) * WINOGRAD_MIN_TILES <= target.l2_bytes)
    ):
        return _winograd_schedule(s, target, threads)
    mr, nv = tiles.conv
    mr = min(mr, s.cout_g)
    t = nv * vw
    kc = _chunk(s.k, t, target)
    ncb = math.ceil(s.cout_g / mr)
    split, ntasks = _conv_split(s, ncb, threads, s.p >= 4 * t * threads or ncb < threads)
    p_task = math.ceil(s.p / ntasks) if split == "p" else s.p
    ntiles = math.ceil(p_task / t)
    block_bytes = target.l2_bytes // CONV_L2_SHARE
    blocks = math.ceil(ntiles / max(1, block_bytes // (4 * kc * t)))
    return ConvSchedule(
        vec="p", mr=mr, nv=nv, kc=kc, tb=math.ceil(ntiles / blocks) * t, order="cob",
        split=split, ntasks=ntasks, pf=2, pfa=64, pfb=0,
    )  # fmt: skip


def _chunk(k: int, t: int, target: Target) -> int:
    """The reduction chunk: equal chunks, each with a kc x t tile within L1."""
    chunks = math.ceil(k / max(1, target.l1_bytes // (4 * t)))
    return math.ceil(k / chunks)


def _channel_schedule(s: ConvShape, target: Target, threads: int) -> ConvSchedule:
    """Channel vectors: mr pixels x nv vectors of output channels, the whole
    image in one block, threads split over images, groups or channel panels
    (pixel ranges would each need the whole weight matrix)."""
    vw = target.vector_width
    tiles = dense_tiles(target).conv_channels
    mr, nv = next((tile for tile in tiles if s.p % tile[0] == 0), tiles[-1])
    mr = min(mr, s.p)
    t = nv * vw
    ncb = math.ceil(s.cout_g / t)
    split, ntasks = _conv_split(s, ncb, threads, by_pixels=False)
    return ConvSchedule(
        vec="c", mr=mr, nv=nv, kc=_chunk(s.k, t, target), tb=s.p, order="cob", split=split,
        ntasks=ntasks, pf=2, pfa=64, pfb=0,
    )  # fmt: skip


def _winograd_schedule(s: ConvShape, target: Target, threads: int) -> ConvSchedule:
    """Winograd F(2x2, 3x3): the conv's register tile over 16 GEMMs of output channels
    x 2x2-output tiles, Cin chunks within L1, `tb` tiles per block (equal blocks of
    whole vectors, transformed inputs and products within a share of L2), threads
    over images or tile ranges."""
    vw = target.vector_width
    mr, nv = dense_tiles(target).conv
    t = nv * vw
    ncb = math.ceil(s.cout / mr)
    split, ntasks = _conv_split(s, ncb, threads, by_pixels=True)
    tiles = s.n * s.winograd_tiles if split == "n" else s.winograd_tiles
    per_task = math.ceil(tiles / ntasks)
    share = target.l2_bytes // WINOGRAD_L2_SHARE // (4 * 16 * (s.cin + ncb * mr))
    fit = max(WINOGRAD_MIN_TILES, share)
    blocks = math.ceil(per_task / fit)  # equal blocks of whole vectors
    tb = math.ceil(math.ceil(per_task / blocks) / vw) * vw
    return ConvSchedule(
        vec="w", mr=mr, nv=nv, kc=_chunk(s.cin, t, target), tb=tb, order="cob", split=split,
        ntasks=ntasks, pf=0, pfa=0, pfb=0,
    )  # fmt: skip


def depthwise_schedule(s: ConvShape, target: Target, threads: int) -> DepthwiseSchedule:
    """Four independent pixel vectors per step; threads over (image, channel) planes."""
    planes = s.n * s.cout
    ntasks = 1 if threads <= 1 or s.flops < CONV_MIN_PARALLEL_FLOPS else min(threads, planes)
    return DepthwiseSchedule(dv=4 if target.vector_width > 1 else 1, ntasks=ntasks)


def cell_schedule(
    cell: Cell, batch: int, hidden: int, dirs: int, target: Target, threads: int
) -> CellSchedule:
    """Fill the register file with accumulators, whole batch in one block when
    it fits; split chunks over threads only when a step is big enough."""
    regs, vw = target.registers, target.vector_width
    gl = max(len(p) for p in cell.phases)

    def rows_that_fit(nvg: int) -> int:
        """Most batch rows whose accumulators, plus the gl*nvg weight vectors and
        one broadcast, fit in the registers (at least 1)."""
        bb = 1
        while bb < batch and gl * nvg * (bb + 2) + 1 <= regs:
            bb += 1
        return bb

    candidates = (4, 2, 1) if vw == 1 else (2, 1)
    nvg = next((n for n in candidates if rows_that_fit(n) == batch), 1)
    bb = rows_that_fit(nvg)
    chunks = math.ceil(hidden / (nvg * vw))
    macs = cell.gates * hidden * hidden * batch
    if threads <= 1 or macs < MIN_PARALLEL_MACS:
        ntasks = 1
    else:  # threads <= dirs: one thread per direction, no per-step barrier
        ntasks = min(chunks, math.ceil(threads / dirs))
    return CellSchedule(nvg=nvg, bb=bb, ntasks=min(ntasks, chunks))


def dense_schedules(op: Operation, target: Target, threads: int) -> dict[str, KnobsAttr]:
    """The schedules of a dense op's kernel(s); {} for ops without knobs."""
    if isinstance(op, graph.GemmOp):
        return {SCHEDULE_ATTR: gemm_schedule(gemm_problem(op), target, threads)}
    if isinstance(op, graph.MatMulOp):
        return {SCHEDULE_ATTR: gemm_schedule(matmul_problem(op)[0], target, threads)}
    if isinstance(op, graph.ConvOp):
        s = conv_shape(op)
        if choose_kind(s) == "conv2d_depthwise":
            return {SCHEDULE_ATTR: depthwise_schedule(s, target, threads)}
        return {SCHEDULE_ATTR: dense_conv_schedule(s, target, threads)}
    if isinstance(op, graph.RecurrentOp):
        cell = cell_of(op)
        seq, batch, inp = shape_of(op.x)
        hidden = op.hidden_size.value.data
        sched = cell_schedule(cell, batch, hidden, op.num_directions, target, threads)
        u = sched.nvg.data * target.vector_width
        hp = math.ceil(hidden / u) * u
        prob = Problem(seq * batch, op.num_directions * cell.gates * hp, inp, 1, True)
        return {SCHEDULE_ATTR: sched, PROJECTION_ATTR: gemm_schedule(prob, target, threads)}
    split = sweep_split(op, threads)
    return {} if split is None else {SCHEDULE_ATTR: split}


# --------------------------------------------------------------------------
# memory-bound sweeps: element-wise, pooling, normalization, the phase split

SWEEP_MIN_PARALLEL_ELEMS = 1 << 16
"""Below this many elements a flat element-wise sweep is not worth waking the pool."""

MIN_TASK_ELEMS = 1024
"""Smallest chunk of a flat sweep worth a task of its own."""

CHUNK_ALIGN = 16
"""Flat sweeps cut chunks on multiples of 16 floats (64 bytes, a cache line)."""

PLANE_MIN_PARALLEL_ELEMS = 1 << 15
"""Below this many elements a sweep over planes or rows is not worth waking the pool."""

PLANE_OPS: tuple[type[Operation], ...] = (
    graph.BatchNormOp,
    graph.LRNOp,
    graph.MaxPoolOp,
    graph.AvgPoolOp,
    graph.GlobalAvgPoolOp,
)
ROW_OPS: tuple[type[Operation], ...] = (graph.SoftmaxOp, graph.LayerNormOp)


def elems_split(n: int, threads: int) -> SplitSchedule:
    """A flat sweep of n elements: one aligned chunk per thread when it pays."""
    if threads <= 1 or n < SWEEP_MIN_PARALLEL_ELEMS:
        tasks = 1
    else:
        tasks = max(1, min(threads, n // max(MIN_TASK_ELEMS, CHUNK_ALIGN)))
    return SplitSchedule(threads=tasks, over="elems", align=CHUNK_ALIGN)


def items_split(items: int, elems: int, threads: int, over: str = "planes") -> SplitSchedule:
    """A sweep of `items` independent planes or rows (`elems` elements in all)."""
    if threads <= 1 or elems < PLANE_MIN_PARALLEL_ELEMS:
        tasks = 1
    else:
        tasks = max(1, min(threads, items))
    return SplitSchedule(threads=tasks, over=over, align=1)


def sweep_split(op: Operation, threads: int) -> SplitSchedule | None:
    """The `#sched.split` of an element-wise, pooling or normalization op; None for others."""
    if isinstance(op, ACTIVATION_OPS):
        return elems_split(math.prod(shape_of(op.x)), threads)
    if isinstance(op, ELTWISE_OPS):
        layout = eltwise_layout(op)
        flat = elems_split(layout.rows * layout.inner, threads)
        if layout.rows == 1:
            return flat
        return SplitSchedule(threads=min(flat.threads.data, layout.rows), over="rows", align=1)
    if isinstance(op, PLANE_OPS):
        xs = shape_of(op.x)
        return items_split(xs[0] * xs[1], math.prod(xs), threads)
    if isinstance(op, ROW_OPS):  # rows: the axes before `axis`
        xs = shape_of(op.x)
        return items_split(math.prod(xs[: op.axis.value.data]), math.prod(xs), threads, "rows")
    return None


def phase_split_schedule(op: Conv2dOp, threads: int) -> dict[str, KnobsAttr]:
    """`sched.phase` of a strided conv: its planes split over the threads."""
    split = PhaseSplit.of(ConvGeometry.of(op))
    if split is None:
        return {}
    return {PHASE_ATTR: items_split(split.nplanes, split.nplanes * split.hq * split.wq, threads)}


# --------------------------------------------------------------------------
# the sparse recurrence

MIN_PARALLEL_ENTRIES = 4096
"""Per-step list entries (per direction, times batch rows) below which one task
runs a step. An entry costs about a cycle (a weight vector load, an input
broadcast, an FMA); a grimc_parallel_for round trip (~0.5 us, `recurrent.py`)
is worth ~2k of them, so splitting pays from about twice that."""

ENTRY_BYTES_PER_CYCLE = 26.0
"""Bandwidth the weight stream gets from L2 (bytes per cycle; measured ~93 GB/s on
the 3.5 GHz Zen 5 host): a layer's recurrent weights stay in L2 for the whole
sequence, and an entry of vw floats costs vw * 4 / 26 cycles at least."""

INPUT_CYCLES = {1: 0.0, 2: 0.5}
"""Extra cycles per entry and batch row to form the input vector of q columns
(q = 2: a second broadcast merged in); larger q: about q (lane loads and
inserts). Measured per entry on the host: AVX-512 q=1 0.70 ns, q=2 0.80 ns,
q=4 1.7 ns; AVX2 q=1 0.44 ns, q=2 0.64 ns."""

MAX_SETS = 4
"""Accumulator sets per group (hides the FMA latency when few batch rows)."""


def q_cost(entries: int, q: int, vw: int, bb: int) -> float:
    """Modeled cycles of one step per batch block: per entry the weight stream
    (vw floats from L2) or bb FMAs (two per cycle), whichever bounds it, plus forming the
    input vector of each of the bb batch rows."""
    per_entry = max(vw * 4 / ENTRY_BYTES_PER_CYCLE, bb / 2) + bb * INPUT_CYCLES.get(q, float(q))
    return entries * per_entry


def choose_q(r: np.ndarray, gates: int, hidden: int, vw: int, bb: int) -> int:
    """The q of fewest modeled cycles (ties: the smaller q)."""
    costs = [
        (q_cost(int(list_lengths(r, gates, hidden, vw, q).sum()), q, vw, bb), q)
        for q in q_choices(vw)
    ]
    return min(costs)[1]


def sparse_cell_schedule(
    op: RecurrentOp, r: np.ndarray, target: Target, threads: int, csr: bool
) -> SparseCellSchedule:
    """q by modeled cycles (`choose_q`), up to 4 batch rows per block, enough accumulator
    sets, and tasks per step when a step has enough list entries. `r` [dirs, G*H, H] in
    original row order."""
    cell = cell_of(op)
    _, batch, _ = shape_of(op.x)
    hidden = op.hidden_size.value.data
    vw = target.vector_width
    dirs = r.shape[0]
    bb = min(batch, 4)  # up to 4 batch rows share each weight vector load
    if csr:
        q = 0
        step = int(np.count_nonzero(r)) * batch // dirs
    else:
        q = choose_q(r, cell.gates, hidden, vw, bb)
        step = int(list_lengths(r, cell.gates, hidden, vw, q).sum()) * batch // dirs
    chunks = math.ceil(hidden / vw)
    if threads <= 1 or step < MIN_PARALLEL_ENTRIES:
        ntasks = 1
    else:  # threads <= dirs: one per direction
        ntasks = min(chunks, math.ceil(threads / dirs))
    sets = max(1, min(MAX_SETS, math.ceil(MAX_SETS / bb)))  # sets x batch rows >= 4
    return SparseCellSchedule(q=q, bb=bb, sets=sets, ntasks=min(ntasks, chunks))


def op_schedules(
    op: Operation, target: Target, threads: int, sparse_format: str
) -> dict[str, KnobsAttr]:
    """The schedule attributes (by key) the cost model chooses for `op`; {} if it has none."""
    if not isinstance(op, BCROp):
        return dense_schedules(op, target, threads)
    csr = sparse_format_of(op, sparse_format) == "csr"
    decoded = list(_weights(op))
    packed = {ref.label: weight for ref, _, weight in decoded}
    weights = {ref.label: (ref, enc, weight.grids) for ref, enc, weight in decoded}
    if isinstance(op, RecurrentOp):
        ref, encoding, grids = weights["W"]
        nb = pixels(op, ref)
        r_packed = packed["R"]
        r = np.stack([r_packed.dense(g) for g in range(len(r_packed.grids))])
        proj: KnobsAttr
        if csr:
            work = int(np.count_nonzero(grids)) * nb
            proj = csr_schedule(op, encoding, grids, work, target, threads)
        else:
            proj = linear_schedule(encoding, grids, nb, target, threads)
        return {
            SCHEDULE_ATTR: sparse_cell_schedule(op, r, target, threads, csr),
            PROJECTION_ATTR: proj,
        }
    ref, encoding, grids = weights["weights"]
    nb = pixels(op, ref)
    if csr:
        work = int(np.count_nonzero(grids)) * nb
        return {SCHEDULE_ATTR: csr_schedule(op, encoding, grids, work, target, threads)}
    if isinstance(op, Conv2dOp):
        return {
            SCHEDULE_ATTR: sparse_conv_schedule(op, grids, target, threads),
            **phase_split_schedule(op, threads),
        }
    return {SCHEDULE_ATTR: linear_schedule(encoding, grids, nb, target, threads)}


# --------------------------------------------------------------------------
# OpenCL (target opencl: templates/opencl)

CL_LOAD_COST = 4.0
"""Modeled cost of one (gathered) input load of an OpenCL work-item, in FMAs."""

CL_CELL_LOCAL = 64
"""Work-items per direction of the OpenCL recurrence (one work-group each)."""


def cl_rows(entries: Callable[[int], int], target: Target) -> int:
    """OpenCL rows per work-item R (the width of its weight vector loads), up to
    the target's vector width: fewest modeled list entries(R) x (R FMAs + one
    input load), padding rows costing FMAs; ties to the wider R."""
    costs = [
        (entries(r) * (r + CL_LOAD_COST), -r, r) for r in CL_WIDTHS if r <= target.vector_width
    ]
    return min(costs)[2]


def sparse_entries(grids: Sequence[np.ndarray]) -> Callable[[int], int]:
    """List entries of BCR register groups of R rows over `grids` (kernel row order)."""
    nz = [g != 0 for g in grids]
    return lambda r: group_entries(nz, r)


def dense_entries(groups: int, m: int, k: int) -> Callable[[int], int]:
    """List entries of `groups` dense m x k matrices: every column, per group of R rows."""
    return lambda r: groups * -(-m // r) * k


def cl_linear(entries: Callable[[int], int], target: Target) -> ClLinearSchedule:
    """`#sched.cl_linear`: R by `cl_rows`, batch rows / pixels fastest, driver-picked
    work-groups."""
    return ClLinearSchedule(rows=cl_rows(entries, target), order="data", lx=0, ly=0, lz=0)


def opencl_schedules(op: Operation, target: Target) -> dict[str, KnobsAttr]:
    """The OpenCL schedules of `op`: `#sched.cl_linear` for GEMM / GEMV / conv kernels
    (BCR or dense; a recurrence's input projection), `#sched.cl_cell` for a
    recurrence. The general `matmul` kernel (activation operands) has no knobs."""
    if isinstance(op, BCROp):
        grids = {ref.label: weight.grids for ref, _, weight in _weights(op)}
        if isinstance(op, RecurrentOp):
            rows = cl_rows(sparse_entries(grids["R"]), target)
            return {
                SCHEDULE_ATTR: ClCellSchedule(rows=rows, local=CL_CELL_LOCAL),
                PROJECTION_ATTR: cl_linear(sparse_entries(grids["W"]), target),
            }
        return {SCHEDULE_ATTR: cl_linear(sparse_entries(grids["weights"]), target)}
    if isinstance(op, graph.RecurrentOp):
        _, _, inp = shape_of(op.x)
        hidden = op.hidden_size.value.data
        gh, dirs = op.GATES * hidden, op.num_directions
        return {
            SCHEDULE_ATTR: ClCellSchedule(
                rows=cl_rows(dense_entries(dirs, gh, hidden), target), local=CL_CELL_LOCAL
            ),
            PROJECTION_ATTR: cl_linear(dense_entries(dirs, gh, inp), target),
        }
    if isinstance(op, graph.GemmOp | graph.MatMulOp):
        b = (*shape_of(op.b), 1)[:2] if len(shape_of(op.b)) == 1 else shape_of(op.b)
        trans_b = isinstance(op, graph.GemmOp) and op.trans_b.value.data
        k, m = (b[-1], b[-2]) if trans_b else (b[-2], b[-1])
        return {SCHEDULE_ATTR: cl_linear(dense_entries(1, m, k), target)}
    if isinstance(op, graph.ConvOp):
        cout, cin_g, kh, kw = shape_of(op.w)
        groups = op.group.value.data
        return {
            SCHEDULE_ATTR: cl_linear(dense_entries(groups, cout // groups, cin_g * kh * kw), target)
        }
    return {}


SWEEP_OPS: tuple[type[Operation], ...] = (*ACTIVATION_OPS, *ELTWISE_OPS, *PLANE_OPS, *ROW_OPS)
"""The ops whose kernel gets a `#sched.split` (on C targets)."""


def schedule_keys(op: Operation) -> tuple[str, ...]:
    """The attributes `op_schedules` writes on `op` (a strided BCR conv's phase split
    only while it has no CSR schedule)."""
    if isinstance(op, RecurrentOp | graph.RecurrentOp):
        return (SCHEDULE_ATTR, PROJECTION_ATTR)
    if isinstance(op, Conv2dOp) and not isinstance(op.attributes.get(SCHEDULE_ATTR), CsrSchedule):
        geo = ConvGeometry.of(op)
        return (SCHEDULE_ATTR, PHASE_ATTR) if (geo.sh, geo.sw) != (1, 1) else (SCHEDULE_ATTR,)
    if isinstance(op, (BCROp, graph.GemmOp, graph.MatMulOp, graph.ConvOp, *SWEEP_OPS)):
        return (SCHEDULE_ATTR,)
    return ()


def select_schedules(
    module: ModuleOp,
    target: Target | None = None,
    threads: int = 1,
    sparse_format: str = "bcr",
    overwrite: bool = False,
) -> None:
    """Write the cost model's schedule on every scheduled op of `module` (module doc).

    `target`: default the module's `#sched.target` (native, recorded, if none).
    """
    if threads < 1:
        raise GrimcError(f"schedule-select: threads={threads} must be >= 1")
    if sparse_format not in FORMATS:
        raise GrimcError(f"schedule-select: sparse-format={sparse_format} (expected bcr or csr)")
    target = target or module_target_or(module, None)
    opencl = target.family == "opencl"
    if opencl and sparse_format == "csr":
        raise GrimcError("schedule-select: target opencl has no CSR kernels (use bcr or dense)")
    for op in list(module.walk()):
        keys = schedule_keys(op)
        if not keys or (not overwrite and all(key in op.attributes for key in keys)):
            continue
        chosen = (
            opencl_schedules(op, target) if opencl
            else op_schedules(op, target, threads, sparse_format)
        )  # fmt: skip
        for key, attr in chosen.items():
            if overwrite or key not in op.attributes:
                op.attributes[key] = attr


@dataclass(frozen=True)
class ScheduleSelect(ModulePass):
    """Choose every kernel's schedule from the cost model, for the module's target."""

    name = "schedule-select"

    threads: int = 1
    sparse_format: str = "bcr"
    overwrite: bool = False

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        select_schedules(op, None, self.threads, self.sparse_format, self.overwrite)
