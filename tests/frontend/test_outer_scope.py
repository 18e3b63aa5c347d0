"""If branches that read tensors of the enclosing graph (regression).

`onnx.checker.check_model` accepts such models, but grimc's per-node schema
check ran without the outer scope and refused them as "Nodes in a graph must
be topologically sorted", hiding the real diagnosis.
"""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from grimc.frontend import FrontendError, import_onnx


def if_reading_outer_scope(valid: bool = True) -> onnx.ModelProto:
    """y = If(c) then Relu(x) else Neg(x): both branches read the outer `x`."""
    source = "x" if valid else "undefined_tensor"
    out = helper.make_tensor_value_info("b", TensorProto.FLOAT, [2, 3])
    then_g = helper.make_graph([helper.make_node("Relu", [source], ["b"])], "then", [], [out])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["b"])], "else", [], [out])
    graph = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_outer_scope_reads_pass_the_node_check() -> None:
    """It imports (the bool `c` a run-time condition), both branches reading `x`."""
    model = if_reading_outer_scope()
    onnx.checker.check_model(model)  # valid ONNX
    text = str(import_onnx(model))
    assert "graph.relu" in text and "graph.neg" in text and 'graph.dtype = "bool"' in text


def test_a_really_undefined_branch_input_is_still_invalid() -> None:
    with pytest.raises(FrontendError, match=r"invalid (node|model)"):
        import_onnx(if_reading_outer_scope(valid=False))
