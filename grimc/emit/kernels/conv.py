"""Dense `graph.conv`: implicit GEMM with register blocking, a 1x1 GEMM, depthwise,
Winograd.

y = act(conv(x, w) + b + residual), NCHW, any groups/strides/pads/dilations.
Three kernel kinds, chosen by shape (`choose_kind`), and a fourth where the
schedule says `vec = "w"` (below):

- `conv2d_depthwise` (one input channel per group, any channel multiplier):
  vectorized over the output pixels of a row, all taps of a pixel vector
  summed in registers. Padding needs no copy of x: border columns take a
  checked scalar path, the rest of a row runs unmasked vectors while every tap
  is inside the row and prefix-masked ones after; padded rows skip their
  outside taps.
- `conv2d_1x1` (1x1, stride 1, no pads): per group a pure GEMM over pixels,
  `y[Cout_g, P] = W[Cout_g, Cin_g] x[Cin_g, P]`, reading x in place.
- `conv2d` (everything else): implicit GEMM over `K = Cin_g*kh*kw`. For a
  block of `tb` output pixels and a chunk of `kc` reduction indices the input
  patches are packed into `bp[kc][ldb]` in arena scratch (one buffer per
  task), zeros where the window leaves the image. `pack = "linear"` when the
  taps of a pixel run are a shifted run of x (stride 1, OW == W: "same"
  convs): one contiguous copy per tap, then the padding columns zeroed.
  `pack = "rows"` for any other window: per (channel, kernel row, output row)
  the zero-padded input row is split into its SW column phases once, after
  which every tap of the row is a contiguous copy.

The GEMM kinds share one register-blocked micro-kernel: `mr` output channels
x `nv` vectors of pixels (`T = nv * vw`) of accumulators; each pixel vector is
loaded once and feeds all `mr` rows (the dense analogue of BCR's redundant-load
elimination), each weight is broadcast once for the `nv` vectors. Weights are
repacked at compile time into `[group][cob][K][mr]` panels (zero rows pad the
last block), the order the micro-kernel reads them. Partial sums of earlier K
chunks live in y; bias, residual and activation are applied to the registers
of the last chunk. Pixel tails use micro-kernels of 1..nv vectors (last one
masked); the last channel block has its own `Cout_g % mr` row variant.

Winograd (`vec = "w"`, `conv2d_winograd`; 3x3 stride 1, one group): F(2x2, 3x3)
computes each 2x2 output tile from a 4x4 input tile with 16 products instead
of 36. Weights are transformed at compile time (U = G g G^T, packed
`[16][cob][Cin][mr]`); per block of `tb` tiles the kernel transforms the
input (V = B^T d B, from the even and odd columns of four input rows, so
every access is contiguous), runs the same `mr` x `nv` micro-kernel on the
16 GEMMs M = U V (channels x tiles, `kc` input channels per chunk), and
transforms back (Y = A^T M A) with bias, residual and activation. The
transforms add about 1/Cout and 1/Cin of the 2.25x smaller GEMM work, so
schedule-select picks it only with enough channels; its rounding differs from
the direct sum by a few ulps of the larger intermediate sums.

Small images (`vec = "c"`, x86: when vectors of pixels would be under 90%
full, e.g. 49 pixels in 4 x 16 lanes) swap the roles: `mr` pixels (broadcast
from the packed block) x `nv` vectors of output channels (weights packed in
`[group][panel][K][T]` panels), accumulated over all chunks in a pixel-major
scratch accumulator, then transposed into y with the epilogue.

Schedule knobs (the op's `#sched.conv` / `#sched.depthwise`, chosen by the
schedule-select pass and read here): `vec`, `mr`, `nv`, `kc` (a `kc x T` tile fits L1), `tb`
(pixels per block, a multiple of T: the packed block fits L2 and each weight
panel is reused `tb/T` times), `order` (`"cob"`: channel blocks outside pixel
tiles, or `"tile"`), prefetch distances (`pf` input channels ahead in the pack,
`pfa` weight rows ahead and `pfb` packed rows ahead in the micro-kernel, 0 =
off), and the thread split (`split` over images "n", groups "g", pixel ranges
"p" at vector granularity, or channel blocks "c", into `ntasks` equal tasks).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from grimc.dialects import graph
from grimc.dialects.graph import ints
from grimc.dialects.sched import ConvSchedule, DepthwiseSchedule, schedule_of
from grimc.emit.kernel import (
    CodegenError,
    KernelInstance,
    LoweringContext,
    Ref,
    act_params,
    lowers,
    shape,
)


@dataclass(frozen=True)
class ConvShape:
    """Every size of one conv, read from the op (pads ONNX order t, l, b, r)."""

    n: int
    cin: int
    h: int
    w: int
    cout: int
    kh: int
    kw: int
    oh: int
    ow: int
    sh: int
    sw: int
    pt: int
    pl: int
    dh: int
    dw: int
    groups: int

    @property
    def cin_g(self) -> int:
        return self.cin // self.groups

    @property
    def cout_g(self) -> int:
        return self.cout // self.groups

    @property
    def k(self) -> int:
        return self.cin_g * self.kh * self.kw

    @property
    def p(self) -> int:
        return self.oh * self.ow

    @property
    def flops(self) -> int:
        return 2 * self.n * self.cout * self.p * self.k

    @property
    def is_1x1(self) -> bool:
        return (self.kh, self.kw, self.sh, self.sw, self.pt, self.pl) == (1, 1, 1, 1, 0, 0) and (
            self.oh,
            self.ow,
        ) == (self.h, self.w)

    @property
    def is_3x3_unit(self) -> bool:
        """3x3, stride 1, dilation 1, one group: the shape Winograd F(2x2, 3x3) computes."""
        return (self.kh, self.kw, self.sh, self.sw, self.dh, self.dw, self.groups) == (
            3, 3, 1, 1, 1, 1, 1,
        )  # fmt: skip

    @property
    def winograd_tiles(self) -> int:
        """2x2 output tiles of one image."""
        return -(-self.oh // 2) * -(-self.ow // 2)

    @property
    def is_linear(self) -> bool:
        """The patch row of a run of output pixels is a shifted run of x."""
        return self.sh == 1 and self.sw == 1 and self.ow == self.w


def conv_shape(op: graph.ConvOp) -> ConvShape:
    xs, ws, ys = shape(op.x), shape(op.w), shape(op.y)
    if len(xs) != 4:
        raise CodegenError(f"graph.conv: only 2-D convolutions are supported, got rank {len(xs)}")
    strides, pads, dil = ints(op.strides), ints(op.pads), ints(op.dilations)
    return ConvShape(
        n=xs[0], cin=xs[1], h=xs[2], w=xs[3], cout=ws[0], kh=ws[2], kw=ws[3],
        oh=ys[2], ow=ys[3], sh=strides[0], sw=strides[1], pt=pads[0], pl=pads[1],
        dh=dil[0], dw=dil[1], groups=int(op.group.value.data),
    )  # fmt: skip


def choose_kind(s: ConvShape) -> str:
    if s.cin_g == 1 and s.groups > 1:
        return "conv2d_depthwise"
    if s.is_1x1:
        return "conv2d_1x1"
    return "conv2d"


def pack_weights(w: np.ndarray, groups: int, mr: int) -> np.ndarray:
    """[Cout, Cin_g, kh, kw] -> [G][ceil(Cout_g/mr)][K][mr]: per channel block
    a panel of K rows of mr weights, zero rows padding the last block."""
    cout = w.shape[0]
    k = int(np.prod(w.shape[1:]))
    cout_g = cout // groups
    ncb = math.ceil(cout_g / mr)
    padded = np.zeros((groups, ncb * mr, k), dtype=np.float32)
    padded[:, :cout_g] = w.reshape(groups, cout_g, k)
    return np.ascontiguousarray(padded.reshape(groups, ncb, mr, k).transpose(0, 1, 3, 2))


def _shape_params(s: ConvShape) -> dict[str, Any]:
    return {
        **{key.upper(): val for key, val in asdict(s).items()},
        "CIN_G": s.cin_g,
        "COUT_G": s.cout_g,
        "K": s.k,
        "P": s.p,
        "HW": s.h * s.w,
    }


def _operands(op: graph.ConvOp, ctx: LoweringContext, w: Ref) -> list[tuple[str, Ref]]:
    inputs: list[tuple[str, Ref]] = [("x", ctx.operand(op.x)), ("w", w)]
    if op.b is not None:
        inputs.append(("bias", ctx.operand(op.b)))
    if op.residual is not None:
        inputs.append(("res", ctx.operand(op.residual)))
    return inputs


def _gemm_kernel(
    op: graph.ConvOp, ctx: LoweringContext, s: ConvShape, kind: str, w: np.ndarray
) -> KernelInstance:
    vw = ctx.target.vw
    sched = schedule_of(op, ConvSchedule).knobs()
    vec, mr, ntasks = sched["vec"], int(sched["mr"]), int(sched["ntasks"])
    t = int(sched["nv"]) * vw
    # vec "p": channel blocks of mr rows; vec "c": channel panels of t lanes.
    panel = mr if vec == "p" else t
    packed = ctx.blob(pack_weights(w, s.groups, panel), f"{kind}_packed_w")
    ncb = math.ceil(s.cout_g / panel)
    outputs = [("y", ctx.result(op.y))]
    pack = "none" if kind == "conv2d_1x1" else "linear" if s.is_linear else "rows"
    layout = PackLayout.of(s, int(sched["tb"]), int(sched["kc"]), pack)
    ldc = ncb * t
    acc_off = layout.ws_task
    ws_task = acc_off + (_round64(s.p * ldc) if vec == "c" else 0)
    if ws_task:
        outputs.append(("ws", ctx.scratch(4 * ws_task * ntasks)))
    params: dict[str, Any] = {
        **_shape_params(s),
        **sched,
        "T": t,
        "ncb": ncb,
        "mr_rem": s.cout_g % mr if vec == "p" else 0,  # last block's rows
        "pack": pack,
        **asdict(layout),
        "ws_task": ws_task,
        "ldc": ldc,
        "acc_off": acc_off,
        "act": act_params(op.act),
    }
    return KernelInstance(
        kind=kind,
        params=params,
        inputs=_operands(op, ctx, packed),
        outputs=outputs,
        flops=s.flops,
    )


WINOGRAD_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
"""F(2x2, 3x3) weight transform; the input (B^T) and output (A^T) transforms are
written out in templates/c/conv2d_winograd.c.j2."""


def winograd_weights(w: np.ndarray, mr: int) -> np.ndarray:
    """[Cout, Cin, 3, 3] -> U = G g G^T packed [16][ceil(Cout/mr)][Cin][mr] (element
    e = 4a + b of the 4x4 transform; zero rows pad the last channel block)."""
    cout, cin = w.shape[:2]
    ncb = math.ceil(cout / mr)
    u = np.einsum("ai,oxij,bj->abox", WINOGRAD_G, w.astype(np.float64), WINOGRAD_G)
    padded = np.zeros((16, ncb * mr, cin))
    padded[:, :cout] = u.reshape(16, cout, cin)
    return np.ascontiguousarray(
        padded.reshape(16, ncb, mr, cin).transpose(0, 1, 3, 2), dtype=np.float32
    )


def _winograd_kernel(
    op: graph.ConvOp, ctx: LoweringContext, s: ConvShape, w: np.ndarray
) -> KernelInstance:
    """`conv2d_winograd`: see the module docstring; scratch per task holds the
    transformed block V[Cin][16][ldt], the products M[Cout][16][ldt] and the even and
    odd columns of four input rows."""
    if not s.is_3x3_unit:
        raise CodegenError(
            f"graph.conv: vec = w (Winograd) needs a 3x3 stride-1 undilated ungrouped conv, "
            f"got {s.kh}x{s.kw} stride {s.sh}x{s.sw} dilation {s.dh}x{s.dw} groups {s.groups}"
        )
    sched = schedule_of(op, ConvSchedule).knobs()
    mr, nv, ntasks = int(sched["mr"]), int(sched["nv"]), int(sched["ntasks"])
    if sched["split"] not in ("n", "p"):
        raise CodegenError(
            f"graph.conv: vec = w splits over images (n) or tiles (p), not '{sched['split']}'"
        )
    vw = ctx.target.vw
    t = nv * vw
    ldt = -(-int(sched["tb"]) // vw) * vw
    th, tw = -(-s.oh // 2), -(-s.ow // 2)
    ncb = math.ceil(s.cout / mr)
    twp = _round64(tw + 1)
    ws_task = (
        _round64(16 * s.cin * ldt) + _round64(16 * ncb * mr * ldt) + 8 * twp + 2 * _round64(2 * tw)
    )
    packed = ctx.blob(winograd_weights(w, mr), "conv2d_winograd_w")
    # even / odd input columns 2m - PL, 2m + 1 - PL (m <= TW) both inside the row
    inner = (min(tw + 1, (s.pl + 1) // 2), max(0, min(tw + 1, (s.w - 2 + s.pl) // 2 + 1)))
    params: dict[str, Any] = {
        **_shape_params(s),
        **sched,
        "T": t, "ldt": ldt, "TH": th, "TW": tw, "NT": th * tw, "ncb": ncb, "twp": twp,
        "inner": (inner[0], max(inner)), "ws_task": ws_task, "act": act_params(op.act),
    }  # fmt: skip
    return KernelInstance(
        kind="conv2d_winograd",
        params=params,
        inputs=_operands(op, ctx, packed),
        outputs=[("y", ctx.result(op.y)), ("ws", ctx.scratch(4 * ws_task * ntasks))],
        flops=s.flops,
    )


def _round64(floats: int) -> int:
    """Round a float count up to whole 64-byte lines."""
    return -(-floats // 16) * 16


@dataclass(frozen=True)
class PackLayout:
    """Where the packed block and its helpers live in a task's scratch (floats).

    `ldb`: row pitch of the packed block bp[kc][ldb] (tb, plus one line when the
    pitch would be a multiple of 4 KiB: all rows of a tile would then share L1
    sets). "rows" packing adds `nseg` row runs (4 ints each) and per run the
    input row split into phases [(phase, first, end of the in-image range)],
    `rbm` floats each.
    """

    ldb: int
    ws_task: int
    nseg: int = 0
    rbm: int = 0
    phases: tuple[tuple[int, int, int], ...] = ()

    @staticmethod
    def of(s: ConvShape, tb: int, kc: int, pack: str) -> PackLayout:
        """The layout for blocks of `tb` pixels and chunks of `kc` reduction rows."""
        if pack == "none":
            return PackLayout(ldb=s.h * s.w, ws_task=0)
        # the packs write whole vectors: round up to 16 lanes (the widest vw)
        ldb = _round64(tb)
        ldb += 16 if (4 * ldb) % 4096 == 0 else 0
        block = _round64(kc * ldb)
        if pack == "linear":
            return PackLayout(ldb, block)
        nseg = math.ceil(tb / s.ow) + 1
        shifts = [(r * s.dw) // s.sw for r in range(s.kw)]
        rbm = s.ow + max(shifts)
        phases = []
        # all phases (not only those some tap uses): one interleaved access
        for ph in range(s.sw) if s.sw <= 4 else sorted({(r * s.dw) % s.sw for r in range(s.kw)}):
            lo = min(rbm, max(0, -(-(s.pl - ph) // s.sw)))
            hi = max(lo, min(rbm, (s.w - 1 + s.pl - ph) // s.sw + 1))
            phases.append((ph, lo, hi))
        rows = _round64(4 * nseg) + _round64(nseg * s.sw * rbm)
        return PackLayout(ldb, block + rows, nseg, rbm, tuple(phases))


def _depthwise_kernel(
    op: graph.ConvOp, ctx: LoweringContext, s: ConvShape, w: np.ndarray
) -> KernelInstance:
    packed = ctx.blob(w.reshape(s.cout, s.kh * s.kw), "conv2d_depthwise_w")
    # Output columns whose taps all fall inside the row: [ow_lo, ow_hi).
    ow_lo = min(s.ow, math.ceil(s.pl / s.sw))
    ow_hi = max(ow_lo, min(s.ow, (s.w - 1 + s.pl - (s.kw - 1) * s.dw) // s.sw + 1))
    params: dict[str, Any] = {
        **_shape_params(s),
        **schedule_of(op, DepthwiseSchedule).knobs(),
        "MULT": s.cout_g,
        "ow_lo": ow_lo,
        "ow_hi": ow_hi,
        "act": act_params(op.act),
    }
    return KernelInstance(
        kind="conv2d_depthwise",
        params=params,
        inputs=_operands(op, ctx, packed),
        outputs=[("y", ctx.result(op.y))],
        flops=s.flops,
    )


@lowers(graph.ConvOp)
def lower_conv(op: graph.ConvOp, ctx: LoweringContext) -> KernelInstance:
    """graph.conv -> conv2d / conv2d_1x1 / conv2d_depthwise (see choose_kind), or
    conv2d_winograd where the schedule says `vec = w`."""
    s = conv_shape(op)
    w = ctx.const(op.w)
    if w is None:
        raise CodegenError("graph.conv: weights must be constant (a graph.weight)")
    kind = choose_kind(s)
    if kind == "conv2d_depthwise":
        return _depthwise_kernel(op, ctx, s, w)
    if schedule_of(op, ConvSchedule).knobs()["vec"] == "w":
        return _winograd_kernel(op, ctx, s, w)
    return _gemm_kernel(op, ctx, s, kind, w)
