"""An If whose condition is known only at run time: the generated code holds
both branches' kernels and runs only the taken one (`grimc.emit.branches`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from grimc.artifacts import onnxruntime_reference
from grimc.driver import build_model, compile_model
from grimc.runner import HostModel
from tests.frontend.helpers import model, node, rand

XS = [2, 3]


def _branch(nodes: list[onnx.NodeProto], out: str, name: str) -> onnx.GraphProto:
    info = helper.make_tensor_value_info(out, TensorProto.FLOAT, XS)
    return helper.make_graph(nodes, name, [], [info])


def if_model(nested: bool = False) -> onnx.ModelProto:
    """z = Sigmoid(If(max(x) > 0) then Exp(Relu(x)) + x else -x); with `nested`,
    the else branch is itself If(min(x) > -1) then Tanh(x) else Abs(x) * 2."""
    then = _branch(
        [node("Relu", ["x"], ["t1"]), node("Exp", ["t1"], ["t2"]), node("Add", ["t2", "x"], ["t"])],
        "t",
        "then",
    )
    if nested:
        inner_then = _branch([node("Tanh", ["x"], ["it"])], "it", "inner_then")
        inner_else = _branch(
            [node("Abs", ["x"], ["ia"]), node("Add", ["ia", "ia"], ["ie"])], "ie", "inner_else"
        )
        otherwise = _branch(
            [
                node("ReduceMin", ["x"], ["lo"], keepdims=0),
                node("Greater", ["lo", "minus_one"], ["c2"]),
                node("If", ["c2"], ["e"], then_branch=inner_then, else_branch=inner_else),
            ],
            "e",
            "else",
        )
    else:
        otherwise = _branch([node("Neg", ["x"], ["e"])], "e", "else")
    nodes = [
        node("ReduceMax", ["x"], ["m"], keepdims=0),
        node("Greater", ["m", "zero"], ["c"]),
        node("If", ["c"], ["y"], then_branch=then, else_branch=otherwise),
        node("Sigmoid", ["y"], ["z"]),
    ]
    consts = {"zero": np.array(0.0, np.float32), "minus_one": np.array(-1.0, np.float32)}
    m = model(nodes, {"x": XS}, ["z"], consts)
    for d in XS:
        m.graph.output[0].type.tensor_type.shape.dim.add().dim_value = d
    return m


# x with max > 0 (then), with max <= 0 and min > -1 (else / inner then), and
# with max <= 0 and min <= -1 (else / inner else)
INPUTS = {
    "then": np.abs(rand(*XS)) + 0.1,
    "else_then": -np.abs(rand(*XS, seed=1)) * 0.1 - 0.01,
    "else_else": -np.abs(rand(*XS, seed=2)) - 1.5,
}


def _expected(m: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    return onnxruntime_reference(m.SerializeToString(), [x])[0]


def _guards(nested: bool) -> dict[str, list[list[bool]]]:
    """Per kernel op name, the guard sides of its kernels (in order)."""
    gen = compile_model(if_model(nested), prefix="net")
    found: dict[str, list[list[bool]]] = {}
    for k in gen.kernels:
        found.setdefault(k.source_op, []).append([taken for _, taken in k.guards])
    return found


def test_branch_kernels_are_guarded() -> None:
    guards = _guards(nested=False)
    # the condition, the select and what follows it always run
    assert guards["graph.reduce"] == [[]] and guards["graph.where"] == [[]]
    assert guards["graph.less"] == [[]]  # Greater is Less with swapped operands
    assert guards["graph.neg"] == [[False]]  # the else branch
    assert [True] in guards["graph.add"]  # the then branch's Add
    assert all(g in ([True], []) for g in guards["graph.exp"] + guards.get("graph.relu", []))
    source = compile_model(if_model(), prefix="net").source
    assert source.count("[0] != 0.0f) GRIMC_TIMED(") >= 2
    assert source.count("[0] == 0.0f) GRIMC_TIMED(") == 1


def test_nested_branches_have_both_guards() -> None:
    guards = _guards(nested=True)
    assert guards["graph.tanh"] == [[False, True]]  # outer else, inner then
    assert guards["graph.abs"] == [[False, False]]
    assert guards["graph.reduce"][1] == [False]  # the inner condition: outer else only


@pytest.mark.parametrize(("nested", "target"), [(False, "host"), (True, "host"), (True, "aarch64")])
def test_runtime_if_matches_onnxruntime(nested: bool, target: str, tmp_path: Path) -> None:
    m = if_model(nested)
    with build_model(m, tmp_path, target=target) as compiled:
        for case, x in INPUTS.items():
            x = x.astype(np.float32)
            (got,) = compiled.run([x])
            np.testing.assert_allclose(got, _expected(m, x), rtol=1e-4, atol=1e-5, err_msg=case)


def test_only_the_taken_branch_runs(tmp_path: Path) -> None:
    """Profiled, the kernels of the branch not taken accumulate no time at all:
    they were never called (the others' times are not looked at)."""
    gen = compile_model(if_model(nested=True), prefix="net")
    sides = [[taken for _, taken in k.guards] for k in gen.kernels]
    with HostModel.build(gen, tmp_path, profile=True) as compiled:
        for case, x in INPUTS.items():
            compiled.reset_profile()
            compiled.run([x.astype(np.float32)])
            taken = {"then": [True], "else_then": [False, True], "else_else": [False, False]}[case]
            profile = compiled.profile()
            for side, kernel in zip(sides, profile, strict=True):
                runs = side == taken[: len(side)]
                if not runs:
                    assert kernel.ms == 0.0, (case, kernel.name, side)
            skipped = sum(side != taken[: len(side)] for side in sides)
            assert skipped >= 1, case
