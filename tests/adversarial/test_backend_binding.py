"""The ONNX backend binds inputs by name and checks them exactly; so do the runners.

Concat(a, b) of two inputs of one shape tells a swapped binding from a right one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import grimc.backend as backend
from grimc.driver import compile_model
from grimc.runner import ExeModel, HostModel, RunError

SHAPE = (2, 3, 4)


def concat_model() -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Concat", ["a", "b"], ["y"], axis=0)],
        "concat",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, SHAPE) for n in ("a", "b")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, (4, 3, 4))],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def rep():
    r = backend.prepare(concat_model(), target="host")
    yield r
    r.close()


@pytest.fixture(scope="module")
def ab() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return tuple(rng.standard_normal(SHAPE).astype(np.float32) for _ in range(2))  # type: ignore[return-value]


def test_dict_binds_by_name_not_order(rep, ab) -> None:
    a, b = ab
    (y,) = rep.run({"b": b, "a": a})
    np.testing.assert_array_equal(y, np.concatenate([a, b]))
    (y,) = rep.run([a, b])
    np.testing.assert_array_equal(y, np.concatenate([a, b]))


@pytest.mark.parametrize(
    ("feeds", "message"),
    [
        (lambda a, b: {"a": a, "c": b}, "unknown input 'c'"),
        (lambda a, b: {"a": a, "b": b, "extra": b}, "unknown input 'extra'"),
        (lambda a, b: {"a": a}, "missing input 'b'"),
        (lambda a, b: [a], "expected 2 inputs"),
        (lambda a, b: {"a": a, "b": b.ravel()}, "input 'b': expected shape [2, 3, 4], got [24]"),
        (lambda a, b: {"a": a.reshape(2, 4, 3), "b": b}, "input 'a': expected shape"),
        (lambda a, b: {"a": a, "b": b.astype(np.float64)}, "input 'b': expected dtype float32"),
        (lambda a, b: [a, b.tolist()], "input 'b': expected a numpy array"),
    ],
    ids=["unknown", "extra", "missing", "short-list", "flat", "transposed", "float64", "list"],
)
def test_bad_feeds_are_one_clear_error(rep, ab, feeds, message: str) -> None:
    with pytest.raises(RunError) as err:
        rep.run(feeds(*ab))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("runner", ["host", "exe"])
def test_runners_check_shape_and_dtype(runner: str, ab, tmp_path: Path) -> None:
    a, b = ab
    gen = compile_model(concat_model(), target="host")
    build = HostModel.build if runner == "host" else ExeModel.build
    model = build(gen, tmp_path, target="host")
    with model:
        np.testing.assert_array_equal(model.run([a, b])[0], np.concatenate([a, b]))
        for bad, message in [
            ([a, b.reshape(4, 3, 2)], "expected shape [2, 3, 4], got [4, 3, 2]"),
            ([a.ravel(), b], "expected shape"),
            ([a, b.astype(np.float16)], "expected dtype float32, got float16"),
        ]:
            with pytest.raises(RunError, match=r"input '\w+': ") as err:
                model.run(bad)
            assert message in str(err.value)
