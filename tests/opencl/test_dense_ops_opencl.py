"""Every dense op case of the CPU tests (tests/kernels/test_dense_ops.py) on OpenCL.

The same ONNX graphs, inputs and references (onnxruntime, or the numpy
spec where onnxruntime refuses a model), compiled through the graph pipeline
and generated for --target opencl, run on the OpenCL device. rtol 1e-4 / atol 1e-5.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grimc.driver import compile_model
from grimc.emit.codegen import TEMPLATES as ROOT
from tests.kernels.test_dense_ops import CASES
from tests.opencl.clenv import tiered
from tests.opencl.clmodel import check_case

TEMPLATES = ROOT / "opencl"


FAST = (
    "add_per_channel", "prelu_channel_slope", "batch_norm", "max_pool_3x3_pad",
    "avg_pool_ceil_cip1", "softmax_inner", "concat_axis1_const", "transpose_nchw_nhwc",
    "gemm_residual_relu", "gemm_runtime_b_trans", "lrn",
)  # fmt: skip
"""One case per kernel template and feature (broadcasting, fused epilogues, padding
and ceil mode, transposes, batch broadcasting) in the fast tier; all cases in the
slow tier."""


@pytest.mark.parametrize("name", tiered(sorted(CASES), FAST))
def test_dense_op_matches_reference(name: str, tmp_path: Path) -> None:
    check_case(CASES[name](), tmp_path, sparse_format="dense")


def test_fast_cases_cover_every_dense_op_template() -> None:
    """The fast tier runs every kernel template these ops and the data-movement
    ops lower to (the rest of templates/opencl, conv and recurrent, run in the
    model and cell tests)."""
    from tests.opencl import test_data_movement_opencl as movement

    cases = [CASES[name] for name in FAST] + [movement.ALL[name] for name in movement.FAST]
    kinds = set()
    for case in cases:
        kinds |= {k.kind for k in compile_model(case().model(), target="opencl").kernels}
    templates = {p.name.split(".")[0] for p in TEMPLATES.glob("*.cl.j2")}
    assert kinds == templates - {"macros", "conv", "recurrent"}
