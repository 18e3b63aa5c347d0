"""The element-wise math, comparison and logic op cases of the CPU tests
(tests/kernels/test_unary_ops.py) on OpenCL, against the same references.

Exp, Log, Sqrt, Neg, Abs, Reciprocal, Erf, Gelu, SiLU (standalone and fused
into a conv or GEMM epilogue), Pow, Sub, Div, Max, Min, the comparisons, And,
Or, Not and Where: the same ONNX graphs, inputs and onnxruntime references,
generated for --target opencl and run on the OpenCL device. rtol 1e-4 / atol 1e-5.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from grimc.dialects.graph import ActivationAttr
from grimc.emit.codegen import TEMPLATES, c_float
from tests.kernels.test_unary_ops import CASES
from tests.opencl.clenv import tiered
from tests.opencl.clmodel import check_case

FAST = (
    "silu_conv", "matmul_gelu_epilogue", "neg_abs", "pow_negative_base_integral",
    "max_variadic_bcast", "where_not_and_or",
)  # fmt: skip
"""Fused activations of the new kinds, a standalone chain, Pow's sign rule, variadic
broadcasting and the boolean ops in the fast tier; every case in the slow tier."""


@pytest.mark.parametrize("name", tiered(sorted(CASES), FAST))
def test_matches_onnxruntime_on_opencl(name: str, tmp_path: Path) -> None:
    check_case(CASES[name](), tmp_path)


@pytest.mark.parametrize("kind", sorted(ActivationAttr.ARITY))
def test_every_activation_kind_renders(kind: str) -> None:
    """A fused activation the OpenCL `act` macro did not know rendered as nothing
    (`ST(y, i, )`: the program failed to build on the device)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)))
    env.filters["clfloat"] = c_float
    macros = env.get_template("opencl/macros.cl.j2").module
    act = {"kind": kind, "params": [0.5] * ActivationAttr.ARITY[kind]}
    text = str(macros.act(act, "v_in"))  # type: ignore[attr-defined]
    assert "v_in" in text and text != "(v_in)", text
