"""The geometry of one Conv node, shared by the dense (test_conv.py) and sparse
(bcrcases.py) conv cases, so both compute output sizes the same way."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConvGeometry:
    """One Conv node: NCHW input, square-or-not kernel, ONNX pads [t, l, b, r], and
    what the graph passes fuse into it (Add of a second input, an activation)."""

    n: int = 1
    cin: int = 8
    h: int = 10
    w: int = 10
    cout: int = 8
    kh: int = 3
    kw: int = 3
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (1, 1, 1, 1)
    dil: tuple[int, int] = (1, 1)
    group: int = 1
    bias: bool = True
    residual: bool = False
    act: str | None = None  # None, "relu", "clip", or an op the suite maps to its activation

    @property
    def out_hw(self) -> tuple[int, int]:
        (sh, sw), (dh, dw), (pt, pl, pb, pr) = self.stride, self.dil, self.pads
        oh = (self.h + pt + pb - dh * (self.kh - 1) - 1) // sh + 1
        ow = (self.w + pl + pr - dw * (self.kw - 1) - 1) // sw + 1
        return oh, ow

    @property
    def out_shape(self) -> list[int]:
        return [self.n, self.cout, *self.out_hw]
