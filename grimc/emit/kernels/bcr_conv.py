"""`bcr.conv2d` -> the `bcr_spmm` kernel: register-blocked sparse conv, no im2col.

Column k = (ci, r, s) of a group's GEMM view reads input channel ci shifted by
(r*dil_h, s*dil_w): for a tile of output pixels it is a (shifted) row of the
input feature map, so every list entry stores that shift as a precomputed
input offset and the kernel loads input vectors straight from x.

Pixel tiles. With stride 1 and an output as wide as the input (`same`
padding, 1x1), output pixel p = oh*W + ow reads input p + offset: tiles run
over flattened pixels and may cross row boundaries ("flat" mode), so ragged
widths cost nothing. Otherwise ("rows" mode) a tile is a run of one output
row; with stride > 1 its input lanes are strided. Padding is never copied:
entries are sorted by kernel position (r, s), so within one position every
tile has fixed lane masks (a compile-time table, `mask[tile][pos][vector]`);
masked loads supply the zeros, and whole positions outside the image are
skipped. Tiles whose masks are all full take an unmasked fast path.

Strided convolutions read their input through a *polyphase split* first
(`PhaseSplit`, kernel `phase_split`): input pixel (i*sh + a, j*sw + b) goes to
plane (a, b) at (i, j), padding included as zeros. Kernel position (r, s)
then reads plane ((r*dh) % sh, (s*dw) % sw) shifted by ((r*dh) // sh,
(s*dw) // sw): a stride-1, unpadded conv over the planes, so tiles load
contiguous vectors instead of gathering every sh-th lane (4-15x faster on
ResNet-18's stride-2 layers; the split copies the input once).

Schedule: the op's `#sched.spmm` (chosen by the schedule-select pass, read
here): `rows` per register group and `nv` vectors per tile (rows*nv
accumulators), `unroll` of the entry loop, `order` ("stripe": each group over
all tiles; "spatial": a block of `tblock` tiles over all groups, so the input
block stays in L2), `pf` (prefetch distance in entries, 0 = off), `rle` (off:
every row reloads its input vector, the ablation), `threads` tasks over
register groups or pixel tiles (`split`); the task bounds are balanced by
nonzeros here. A `#sched.csr` schedule selects the CSR baseline (csr.py).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from grimc.dialects import bcr
from grimc.dialects.graph import ints
from grimc.dialects.sched import (
    PHASE_ATTR,
    SCHEDULE_ATTR,
    CsrSchedule,
    SpmmSchedule,
    schedule_of,
    split_of,
)
from grimc.emit.kernel import (
    ActRef,
    CodegenError,
    KernelInstance,
    LoweringContext,
    act_params,
    lowers,
    shape,
)
from grimc.emit.kernels.bcr import (
    RowGroups,
    balanced_bounds,
    float_blob,
    int_blob,
    load_weight,
    row_groups,
)
from grimc.emit.kernels.conv import ConvShape


@dataclass(frozen=True)
class ConvGeometry(ConvShape):
    """A conv's shape (`ConvShape`, read from a bcr.conv2d) and what the BCR
    kernel derives from it: input offsets of GEMM columns, tiles, lane masks."""

    @classmethod
    def of(cls, op: bcr.Conv2dOp) -> ConvGeometry:
        n, cin, h, w = shape(op.x)
        _, cout, oh, ow = shape(op.y)
        kh, kw = ints(op.kernel_shape)
        sh, sw = ints(op.strides)
        pt, pl, _, _ = ints(op.pads)
        dh, dw = ints(op.dilations)
        return cls(
            n=n, cin=cin, h=h, w=w, cout=cout, kh=kh, kw=kw, oh=oh, ow=ow, sh=sh, sw=sw,
            pt=pt, pl=pl, dh=dh, dw=dw, groups=op.group.value.data,
        )  # fmt: skip

    @property
    def npos(self) -> int:
        return self.kh * self.kw

    def input_offset(self, cols: np.ndarray, group: int) -> np.ndarray:
        """Input offset of GEMM columns k = (ci, r, s) of `group`, relative to a tile's base."""
        ci, pos = np.divmod(cols, self.npos)
        r, s = np.divmod(pos, self.kw)
        plane = (group * self.cin_g + ci) * self.h * self.w
        return plane + r * self.dh * self.w + s * self.dw

    def position(self, cols: np.ndarray) -> np.ndarray:
        return cols % self.npos

    def tiles(self, tile: int) -> tuple[int, int]:
        """(tile count, tiles per output row; 0 in flat mode)."""
        if self.is_linear:
            return math.ceil(self.oh * self.ow / tile), 0
        per_row = math.ceil(self.ow / tile)
        return self.oh * per_row, per_row

    def lane_masks(self, tile: int, vw: int) -> np.ndarray:
        """[tiles, kernel positions, tile // vw] lane bit masks of valid input reads."""
        ntiles, per_row = self.tiles(tile)
        t = np.arange(ntiles)[:, None]
        j = np.arange(tile)[None, :]
        if self.is_linear:
            p = t * tile + j
            live = p < self.oh * self.ow
            oh, ow = np.divmod(p, self.ow)
        else:
            oh = np.broadcast_to(t // per_row, (ntiles, tile))
            ow = (t % per_row) * tile + j
            live = ow < self.ow
        r, s = np.divmod(np.arange(self.npos), self.kw)
        ih = (oh * self.sh - self.pt)[:, None, :] + (r * self.dh)[None, :, None]
        iw = (ow * self.sw - self.pl)[:, None, :] + (s * self.dw)[None, :, None]
        ok = live[:, None, :] & (ih >= 0) & (ih < self.h) & (iw >= 0) & (iw < self.w)
        lanes = ok.reshape(ntiles, self.npos, tile // vw, vw).astype(np.int64)
        return (lanes << np.arange(vw)).sum(axis=-1)


def _taps(geo: ConvGeometry, pos: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per kernel position: its input phase (a, b) and shift (qr, qs) in the phase planes."""
    r, s = np.divmod(pos, geo.kw)
    qr, a = np.divmod(r * geo.dh, geo.sh)
    qs, b = np.divmod(s * geo.dw, geo.sw)
    return a, b, qr, qs


@dataclass(frozen=True)
class PhaseSplit:
    """The polyphase view of a strided conv (see module doc).

    Planes are laid out [n][group][phase][channel of group][hq][wq], so each
    group's channels stay contiguous and `phased` is an ordinary grouped conv.
    """

    geo: ConvGeometry
    phases: tuple[tuple[int, int], ...]
    hq: int
    wq: int

    @classmethod
    def of(cls, geo: ConvGeometry) -> PhaseSplit | None:
        if geo.sh == 1 and geo.sw == 1:
            return None
        a, b, _, _ = _taps(geo, np.arange(geo.npos))
        phases = sorted(set(zip(a.tolist(), b.tolist(), strict=True)))
        hq = geo.oh + (geo.kh - 1) * geo.dh // geo.sh
        wq = geo.ow + (geo.kw - 1) * geo.dw // geo.sw
        return cls(geo, tuple(phases), hq, wq)

    @property
    def phased(self) -> ConvGeometry:
        """The stride-1, unpadded conv over the planes that computes the same output."""
        g = self.geo
        return replace(
            g,
            cin=g.cin * len(self.phases),
            h=self.hq,
            w=self.wq,
            kh=(g.kh - 1) * g.dh // g.sh + 1,
            kw=(g.kw - 1) * g.dw // g.sw + 1,
            sh=1, sw=1, pt=0, pl=0, dh=1, dw=1,
        )

    def column_map(self) -> np.ndarray:
        """GEMM column (ci, r, s) of the strided conv -> its column in `phased`."""
        g, ph = self.geo, self.phased
        ci, pos = np.divmod(np.arange(g.cin_g * g.npos), g.npos)
        a, b, qr, qs = _taps(g, pos)
        index = {p: i for i, p in enumerate(self.phases)}
        plane = np.array([index[p] for p in zip(a.tolist(), b.tolist(), strict=True)])
        return (plane * g.cin_g + ci) * ph.npos + qr * ph.kw + qs

    def remap(self, grids: list[np.ndarray]) -> list[np.ndarray]:
        """The weight grids with columns moved to their `phased` positions."""
        cmap = self.column_map()
        out = []
        for w in grids:
            moved = np.zeros((w.shape[0], self.phased.cin_g * self.phased.npos), dtype=w.dtype)
            moved[:, cmap] = w
            out.append(moved)
        return out

    def col_ranges(self) -> list[tuple[int, int, int]]:
        """Per phase (a, b): output columns [lo, hi) that read real input pixels, and the
        input column of j = 0 (j*sw + that offset); the rest are padding zeros."""
        g = self.geo
        ranges = []
        for _, b in self.phases:
            off = b - g.pl
            lo = min(self.wq, max(0, -(off // g.sw)))
            hi = min(self.wq, max(lo, (g.w - 1 - off) // g.sw + 1))
            ranges.append((lo, hi, off))
        return ranges

    @property
    def nplanes(self) -> int:
        """Planes of the split: per image, phase and input channel."""
        return self.geo.n * len(self.phases) * self.geo.cin

    @property
    def nbytes(self) -> int:
        return 4 * self.nplanes * self.hq * self.wq

    def kernel(self, x: Any, planes: ActRef, ntasks: int) -> KernelInstance:
        """The `phase_split` kernel writing the planes, in `ntasks` tasks."""
        g, nplanes = self.geo, self.nplanes
        params = {
            "h": g.h, "w": g.w, "sh": g.sh, "sw": g.sw, "pt": g.pt, "cin_g": g.cin_g,
            "hq": self.hq, "wq": self.wq, "nph": len(self.phases),
            "row_phase": [a for a, _ in self.phases],
            "cols": self.col_ranges(),
            "planes": nplanes,
            "ntasks": ntasks,
        }
        return KernelInstance("phase_split", params, [("x", x)], [("y", planes)])


def segments(
    groups: RowGroups, positions: list[np.ndarray], split: bool
) -> tuple[np.ndarray, list[int]]:
    """[(pos, e0, e1)] runs of equal kernel position per group, and per-group run starts."""
    segs: list[tuple[int, int, int]] = []
    gseg = [0]
    e = 0
    for pos in positions:
        n = len(pos)
        if split and n:
            cuts = np.flatnonzero(np.diff(pos)) + 1
            starts = np.concatenate([[0], cuts])
            ends = np.concatenate([cuts, [n]])
            segs += [
                (int(pos[a]), e + int(a), e + int(b)) for a, b in zip(starts, ends, strict=True)
            ]
        elif n:
            segs.append((0, e, e + n))
        e += n
        gseg.append(len(segs))
    return np.array(segs, dtype=np.int64).reshape(-1, 3), gseg


@lowers(bcr.Conv2dOp)
def lower_bcr_conv(
    op: bcr.Conv2dOp, ctx: LoweringContext
) -> KernelInstance | list[KernelInstance]:
    if isinstance(op.attributes.get(SCHEDULE_ATTR), CsrSchedule):
        from grimc.emit.kernels.csr import lower_csr_conv

        return lower_csr_conv(op, ctx)
    sched = schedule_of(op, SpmmSchedule).knobs()
    if sched["split"] not in ("groups", "tiles"):
        raise CodegenError(f"{op.name}: #sched.spmm split = {sched['split']}: a conv splits groups or tiles")
    geo = ConvGeometry.of(op)
    mats, grids = load_weight(ctx, op.weights.data, op.encoding)
    x: Any = ctx.operand(op.x)
    prologue: list[KernelInstance] = []
    split = PhaseSplit.of(geo)
    if split is not None:
        planes = ctx.scratch(split.nbytes)
        prologue.append(split.kernel(x, planes, split_of(op, "planes", PHASE_ATTR).threads.data))
        geo, grids, x = split.phased, split.remap(grids), planes
    vw = ctx.target.vw
    tile = int(sched["nv"]) * vw
    masks = geo.lane_masks(tile, vw)
    masked = bool((masks != (1 << vw) - 1).any())

    def key(cols: np.ndarray) -> np.ndarray:
        # Masks are fixed per kernel position: sort by position, then channel.
        return geo.position(cols) * geo.cin + cols // geo.npos if masked else cols

    groups = row_groups(mats, int(sched["rows"]), key, grids=grids)
    offsets = np.concatenate(
        [geo.input_offset(c, g) for c, g in zip(groups.cols, groups.owner, strict=True)] or [[]]
    )
    segs, gseg = segments(groups, [geo.position(c) for c in groups.cols], masked)
    nnz = int(sum(np.count_nonzero(g) for g in grids))
    pixels = geo.oh * geo.ow
    ntiles, per_row = geo.tiles(tile)
    ntasks = int(sched["threads"])
    if sched["split"] == "tiles":  # every task takes all groups, a range of tiles
        bounds = balanced_bounds([1] * ntiles, ntasks)
    else:
        bounds = balanced_bounds(groups.entries() + 1, ntasks)

    inputs: list[tuple[str, Any]] = [
        ("x", x),
        (
            "wv",
            float_blob(ctx, np.concatenate([w.ravel() for w in groups.weights] or [[]]), "bcr_w"),
        ),
        ("off", int_blob(ctx, offsets, "bcr_off", pad=int(sched["pf"]))),
        ("seg", int_blob(ctx, segs, "bcr_seg")),
        ("gseg", int_blob(ctx, gseg, "bcr_gseg")),
        ("orow", int_blob(ctx, groups.orow, "bcr_orow")),
    ]
    if masked:
        inputs.append(("mask", int_blob(ctx, masks, "bcr_mask")))
    if op.b is not None:
        inputs.append(("b", ctx.operand(op.b)))
    if op.residual is not None:
        inputs.append(("res", ctx.operand(op.residual)))
    params = {
        **asdict(geo),
        **sched,
        "op": "conv",
        "mode": "flat" if geo.is_linear else "rows",
        "masked": masked,
        # NEON has no masked load: a segment inside the image loads and ANDs.
        "inb": masked and geo.sw == 1 and ctx.target.isa == "neon",
        "ntiles": ntiles,
        "per_row": per_row,
        "npos": geo.npos if masked else 1,
        "ngroups": groups.count,
        "bounds": bounds,
        "xs": geo.cin * geo.h * geo.w,
        "ys": geo.cout * pixels,
        "ohw": pixels,
        "base0": -(geo.pt * geo.w + geo.pl),
        "nnz": nnz,
        "entries": groups.total_entries(),
        "act": act_params(op.act),
    }
    spmm = KernelInstance(
        kind="bcr_spmm",
        params=params,
        inputs=inputs,
        outputs=[("y", ctx.result(op.y))],
        flops=2 * nnz * pixels * geo.n,
    )
    return [*prologue, spmm] if prologue else spmm
