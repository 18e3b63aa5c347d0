"""The guards that keep a CI run from passing without an OpenCL device."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from grimc.driver import compile_model
from tests.opencl.clenv import require
from tests.opencl.clmodel import run_on_device


def test_missing_tool_fails_in_ci_even_when_skips_are_allowed(monkeypatch) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("GRIMC_ALLOW_SKIP", "1")
    with pytest.raises(pytest.fail.Exception, match="pocl-opencl-icd"):
        require(False, "an OpenCL device", "pocl-opencl-icd")


def test_missing_tool_skips_only_when_allowed_outside_ci(monkeypatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("GRIMC_ALLOW_SKIP", "1")
    with pytest.raises(pytest.skip.Exception):
        require(False, "an OpenCL device", "pocl-opencl-icd")
    monkeypatch.delenv("GRIMC_ALLOW_SKIP")
    with pytest.raises(pytest.fail.Exception):
        require(False, "an OpenCL device", "pocl-opencl-icd")


def test_a_model_without_kernels_cannot_pass_as_a_device_run(tmp_path: Path) -> None:
    """A graph that lowers to no kernel (a reshape) proves nothing about the device."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 2])
    shape = helper.make_tensor("s", TensorProto.INT64, [2], [3, 2])
    node = helper.make_node("Reshape", ["x", "s"], ["y"])
    model = helper.make_model(helper.make_graph([node], "g", [x], [y], [shape]))
    onnx.checker.check_model(model)
    gen = compile_model(model, target="opencl")
    assert not gen.kernels
    with pytest.raises(AssertionError, match="no kernels"):
        run_on_device(gen, [], tmp_path)
