"""Model names are untrusted: they reach the IR only sanitized, and
diagnostics print them escaped on one bounded line."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from xdsl.dialects.builtin import StringAttr
from xdsl.parser import Parser

from grimc.dialects.graph import IDENTIFIER, NAME_ATTR
from grimc.frontend import FrontendError, import_onnx
from grimc.universe import make_context
from tests.frontend.helpers import main, model, node, rand, weights

HOSTILE = [
    '"; system("rm -rf /"); //',
    "line\nbreak\r\n",
    "权重/🙂\u202e",
    "x" * 10_000,
    "0123",
    "int",
    "a.b",
    "a_b",
    "",
]


def hostile_model() -> tuple[object, list[str]]:
    """Conv -> Relu with every tensor and node named from HOSTILE."""
    x, w, b, mid, y, y2 = HOSTILE[0], HOSTILE[1], HOSTILE[2], HOSTILE[3], HOSTILE[6], HOSTILE[7]
    nodes = [
        helper.make_node("Conv", [x, w, b], [mid], name=HOSTILE[4]),
        helper.make_node("Relu", [mid], [y], name=HOSTILE[5]),
        helper.make_node("Sigmoid", [mid], [y2], name=HOSTILE[3]),
    ]
    inits = {w: rand(2, 3, 1, 1), b: rand(2), HOSTILE[5]: rand(2)}
    return model(nodes, {x: [1, 3, 4, 4]}, [y, y2], inits), [x, w, b, mid, y, y2]


def test_hostile_names_import_with_sanitized_keys() -> None:
    onnx_model, used = hostile_model()
    module = import_onnx(onnx_model, name=HOSTILE[0])
    keys = list(weights(module))
    assert len(keys) == 2 and all(IDENTIFIER.match(k) for k in keys)
    fn = main(module)
    io_names = [d.data[NAME_ATTR].data for d in (*fn.arg_attrs.data, *fn.res_attrs.data)]
    assert all(IDENTIFIER.match(n) for n in io_names)
    assert len(set(io_names)) == len(io_names) == 3  # 'a.b' and 'a_b' stay distinct
    text = str(module)
    for raw in used:
        if not IDENTIFIER.match(raw):
            assert raw not in text
    assert "system(" not in text and "\u202e" not in text
    assert max(len(line) for line in text.splitlines()) < 400


def test_hostile_ir_round_trips_through_the_parser() -> None:
    onnx_model, _ = hostile_model()
    module = import_onnx(onnx_model)
    reparsed = Parser(make_context(), str(module)).parse_module()
    reparsed.verify()
    assert str(reparsed) == str(module)


def test_module_name_is_sanitized() -> None:
    onnx_model, _ = hostile_model()
    module = import_onnx(onnx_model, name='evil"} @x {')
    assert isinstance(module.sym_name, StringAttr) and IDENTIFIER.match(module.sym_name.data)


@pytest.mark.parametrize("name", HOSTILE[:4], ids=["injection", "newlines", "unicode", "long"])
def test_hostile_names_in_diagnostics_stay_on_one_bounded_line(name: str) -> None:
    bad = helper.make_node(name or "X", ["x"], ["y"], name=name)
    with pytest.raises(FrontendError) as info:
        import_onnx(model([bad], {"x": [2]}, ["y"]), name=name)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message and "\u202e" not in message
    assert "unsupported operator" in message
    assert len(message) < 1000


def test_hostile_input_and_dim_names_in_dynamic_shape_error() -> None:
    name = HOSTILE[0]
    with pytest.raises(FrontendError) as info:
        import_onnx(model([node("Relu", [name], ["y"])], {name: ["N\nM", 3]}, ["y"]))
    assert str(info.value) == (
        """model: input '"; system("rm -rf /"); //' has a dynamic shape (['N\\\\nM', 3]); """
        """give a static one with --input-shape '"; system("rm -rf /"); //'=1x3"""
    )


def test_hostile_weight_name_in_nan_error() -> None:
    w = np.full(3, np.nan, np.float32)
    name = "w\n" + "y" * 500
    with pytest.raises(FrontendError) as info:
        import_onnx(model([node("Add", ["x", name], ["y"])], {"x": [3]}, ["y"], {name: w}))
    assert "\n" not in str(info.value) and len(str(info.value)) < 300
