"""The data-movement, reduction and layer-norm cases of the CPU tests
(tests/kernels/test_data_movement.py) on OpenCL, against the same references.

Slice, Split, Pad (constant, reflect, edge), Expand, Resize (nearest and
linear, every coordinate mode the cases use), DepthToSpace, ReduceMax/Min/
Sum/Mean, GlobalMaxPool and LayerNormalization: the same ONNX graphs, inputs
and onnxruntime references, generated for --target opencl and run on the
OpenCL device. rtol 1e-4 / atol 1e-5.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kernels.test_data_movement import CASES, LAYER_NORM_CASES, REDUCE_CASES
from tests.opencl.clenv import tiered
from tests.opencl.clmodel import check_case

ALL = {**CASES, **REDUCE_CASES, **{f"layer_norm_{k}": v for k, v in LAYER_NORM_CASES.items()}}

FAST = (
    "slice_steps_negative", "pad_reflect", "resize_linear_frac_align_corners",
    "reduce_mean_two_axes", "layer_norm_last_axis_bias",
)  # fmt: skip
"""One case per kernel (gather, linear resize, reduce, layer norm) in the fast
tier, each with a feature that needs the tables (negative steps, mirroring,
fractional scales, non-contiguous reduced axes); every case in the slow tier."""


@pytest.mark.parametrize("name", tiered(sorted(ALL), FAST))
def test_matches_onnxruntime_on_opencl(name: str, tmp_path: Path) -> None:
    check_case(ALL[name](), tmp_path)


@pytest.mark.parametrize("name", tiered(sorted(FAST), ["slice_steps_negative"]))
def test_half_storage_on_opencl(name: str, tmp_path: Path) -> None:
    """fp16 storage (tables stay int32, weights and activations half)."""
    check_case(ALL[name](), tmp_path, precision="fp16-storage")
