"""graph dialect: every op round-trips (custom and generic form) and verifies."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

from grimc.dialects.graph import Graph
from grimc.universe import make_context
from tests.conftest import REPO

ROUNDTRIP = REPO / "tests" / "filecheck" / "cli" / "roundtrip_graph.mlir"


def parse(text: str):
    module = Parser(make_context(), text).parse_module()
    module.verify()
    return module


def render(module, generic: bool = False) -> str:
    out = StringIO()
    Printer(stream=out, print_generic_format=generic).print_op(module)
    return out.getvalue()


@pytest.mark.parametrize("generic", [False, True])
def test_every_op_round_trips_structurally(generic: bool) -> None:
    original = parse(ROUNDTRIP.read_text())
    again = parse(render(original, generic))
    assert original.is_structurally_equivalent(again)
    assert render(again) == render(original)


def test_round_trip_file_covers_every_op() -> None:
    text = ROUNDTRIP.read_text()
    used = set(re.findall(r"\bgraph\.([a-z_]+)\b", text))
    assert {op.name.split(".", 1)[1] for op in Graph.operations} <= used


BAD = {
    "conv channels": (
        "graph.conv %x, %w2 {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, "
        "dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x3x8x8xf32>, "
        "tensor<4x2x3x3xf32> -> tensor<1x4x6x6xf32>",
        "input channels",
    ),
    "conv spatial": (
        "graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, "
        "dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x3x8x8xf32>, "
        "tensor<4x3x3x3xf32> -> tensor<1x4x8x8xf32>",
        "spatial dim",
    ),
    "pool pads length": (
        "graph.max_pool %x {kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>, "
        "pads = array<i64: 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = 0 : i64} : "
        "tensor<1x3x8x8xf32> -> tensor<1x3x4x4xf32>",
        "pads needs 4",
    ),
    "gemm inner": (
        "graph.gemm %a, %b {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = 0 : i64, "
        "trans_b = 0 : i64} : tensor<2x3xf32>, tensor<4x5xf32> -> tensor<2x5xf32>",
        "inner dimensions",
    ),
    "transpose perm": (
        "graph.transpose %a {perm = array<i64: 0, 0>} : tensor<2x3xf32> -> tensor<2x2xf32>",
        "not a permutation",
    ),
    "reshape numel": ("graph.reshape %a : tensor<2x3xf32> -> tensor<7xf32>", "element count"),
    "softmax axis": ("graph.softmax %a {axis = 2 : i64} : tensor<2x3xf32> -> tensor<2x3xf32>", "axis"),
    "clip bounds": (
        "graph.clip %a {min = 2.0 : f32, max = 1.0 : f32} : tensor<2x3xf32> -> tensor<2x3xf32>",
        "min > max",
    ),
    "weight key": ('graph.weight "bad key;" : tensor<2xf32>', "sanitized identifier"),
    "add broadcast": (
        "graph.add %a, %b : tensor<2x3xf32>, tensor<4x5xf32> -> tensor<2x3xf32>",
        "do not broadcast",
    ),
    "gru weights": (
        'graph.gru %s, %b, %b {hidden_size = 2 : i64, direction = "forward", '
        "linear_before_reset = 0 : i64} : tensor<5x1x3xf32>, tensor<4x5xf32>, tensor<4x5xf32> "
        "-> tensor<5x1x1x2xf32>, tensor<1x1x2xf32>",
        "W must be",
    ),
    "i32 tensor": ("graph.relu %i : tensor<2xi32> -> tensor<2xi32>", "f32"),
    "unknown activation": (
        "graph.add %a, %a {act = #graph.act<softsign>} : tensor<2x3xf32>, tensor<2x3xf32> "
        "-> tensor<2x3xf32>",
        "unknown activation",
    ),
    "slice outside": (
        "graph.slice %a {starts = array<i64: 0, 2>, steps = array<i64: 1, 1>} : tensor<2x3xf32> "
        "-> tensor<2x2xf32>",
        "axis 1 reads outside the input",
    ),
    "reflect pad too wide": (
        'graph.pad %a {pads = array<i64: 2, 0, 0, 0>, mode = "reflect", value = 0.0 : f32} '
        ": tensor<2x3xf32> -> tensor<4x3xf32>",
        "reflect pads must be smaller",
    ),
    "pad shape": (
        'graph.pad %a {pads = array<i64: 1, 0, 0, 0>, mode = "edge", value = 0.0 : f32} '
        ": tensor<2x3xf32> -> tensor<2x3xf32>",
        "result must be [3, 3]",
    ),
    "expand": ("graph.expand %a : tensor<2x3xf32> -> tensor<4x3xf32>", "broadcast"),
    "resize mode": (
        'graph.resize %a {mode = "cubic", coordinate_mode = "half_pixel", nearest_mode = "floor", '
        "scales = [1.0 : f32, 2.0 : f32]} : tensor<2x3xf32> -> tensor<2x6xf32>",
        "mode must be nearest or linear",
    ),
    "where shape": (
        "graph.where %a, %a, %b : tensor<2x3xf32>, tensor<2x3xf32>, tensor<4x5xf32> -> tensor<2x3xf32>",
        "do not broadcast",
    ),
    "reduce axes": (
        'graph.reduce %a {kind = "sum", axes = array<i64: 1, 0>, keepdims = 1 : i64} '
        ": tensor<2x3xf32> -> tensor<1x1xf32>",
        "axes must be sorted",
    ),
    "gather i32 indices": (
        "graph.gather %a, %i {axis = 2 : i64} : tensor<2x3xf32>, tensor<2xi32> -> tensor<2x2xf32>",
        "f32",
    ),
    "gather shape": (
        "graph.gather %a, %a {axis = 1 : i64} : tensor<2x3xf32>, tensor<2x3xf32> -> tensor<2x3xf32>",
        "result shape must be [2, 2, 3]",
    ),
    "gather rank": (
        "graph.gather %a, %b {axis = 2 : i64} : tensor<2x3xf32>, tensor<4x5xf32> -> tensor<2x3xf32>",
        "axis must be in [0, 2)",
    ),
    "gelu approximate": (
        'graph.gelu %a {approximate = "fast"} : tensor<2x3xf32> -> tensor<2x3xf32>',
        "approximate must be",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_verifier_rejects(case: str) -> None:
    body, message = BAD[case]
    text = (
        "func.func @f(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>, %a: tensor<2x3xf32>, "
        "%b: tensor<4x5xf32>, %s: tensor<5x1x3xf32>, %i: tensor<2xi32>, "
        "%w2: tensor<4x2x3x3xf32>) {\n"
        f"  {'%r, %r2' if 'graph.gru' in body else '%r'} = {body}\n  func.return\n}}"
    )
    with pytest.raises(VerifyException, match=re.escape(message)):
        parse(text)
