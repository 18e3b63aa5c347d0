"""Every dense op case of the CPU tests (tests/kernels/test_dense_ops.py) on OpenCL.

The same ONNX graphs, inputs and references (onnxruntime, or the numpy
spec where onnxruntime refuses a model), compiled through the graph pipeline
and `generate_opencl`, run on the OpenCL device. rtol 1e-4 / atol 1e-5.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grimc.emit.opencl.codegen import generate_opencl
from grimc.frontend import import_onnx
from grimc.pipeline import GRAPH_PIPELINE, PipelineRunner
from tests.kernels.test_dense_ops import CASES, assert_matches, reference
from tests.opencl.clmodel import run_on_device


@pytest.mark.parametrize("name", sorted(CASES))
def test_dense_op_matches_reference(name: str, tmp_path: Path) -> None:
    case = CASES[name]()
    feeds = case.feeds()
    module = import_onnx(case.model())
    PipelineRunner().run(module, list(GRAPH_PIPELINE))
    gen = generate_opencl(module)
    if not gen.kernels:  # reshape-only graphs: nothing to run on the device
        pytest.fail(f"{name}: no kernels")
    got = run_on_device(gen, [feeds[d.name] for d in gen.inputs], tmp_path)
    assert_matches(got, reference(case, feeds))
