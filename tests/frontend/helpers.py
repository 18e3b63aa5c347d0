"""Tiny ONNX models built with onnx.helper, and queries on the imported IR."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation

from grimc.dialects.graph import shape_of
from grimc.frontend import import_onnx
from grimc.weights import WeightStore, store_for

Dims = Sequence[int | str | None] | None


def model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Mapping[str, Dims],
    outputs: Sequence[str],
    initializers: Mapping[str, np.ndarray] | None = None,
    opset: int = 17,
    elem_type: int = TensorProto.FLOAT,
    ir_version: int | None = None,
) -> onnx.ModelProto:
    """A model whose inputs are float tensors of the given dims (outputs untyped)."""
    graph = helper.make_graph(
        list(nodes),
        "test",
        [helper.make_tensor_value_info(n, elem_type, dims) for n, dims in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in (initializers or {}).items()],
    )
    result = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    if ir_version is not None:
        result.ir_version = ir_version
    return result


def node(
    op_type: str, inputs: Sequence[str], outputs: Sequence[str], **attrs: Any
) -> onnx.NodeProto:
    return helper.make_node(op_type, list(inputs), list(outputs), **attrs)


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def single(
    op_type: str,
    inputs: Mapping[str, Dims],
    initializers: Mapping[str, np.ndarray] | None = None,
    opset: int = 17,
    n_outputs: int = 1,
    **attrs: Any,
) -> ModuleOp:
    """Import a one-node model; node inputs are `inputs` then `initializers`."""
    names = [*inputs, *(initializers or {})]
    outputs = [f"y{i}" for i in range(n_outputs)]
    return import_onnx(
        model([node(op_type, names, outputs, **attrs)], inputs, outputs, initializers, opset)
    )


def main(module: ModuleOp) -> func.FuncOp:
    (fn,) = [op for op in module.ops if isinstance(op, func.FuncOp)]
    return fn


def ops(module: ModuleOp, name: str) -> list[Operation]:
    return [op for op in module.walk() if op.name == name]


def the(module: ModuleOp, name: str) -> Operation:
    """The only op called `name`."""
    found = ops(module, name)
    assert len(found) == 1, f"expected one {name}, found {len(found)}:\n{module}"
    return found[0]


def op_names(module: ModuleOp) -> list[str]:
    """Names of the ops in @main, without weights and the return."""
    return [
        op.name for op in main(module).body.ops if op.name not in ("graph.weight", "func.return")
    ]


def result_shapes(module: ModuleOp) -> list[tuple[int, ...]]:
    return [shape_of(v) for v in main(module).body.block.last_op.operands]


def arg_shapes(module: ModuleOp) -> list[tuple[int, ...]]:
    return [shape_of(a) for a in main(module).args]


def prop(op: Operation, name: str) -> Any:
    """A property as a plain Python value (ints, floats, tuples, strings)."""
    attr = op.properties[name]
    if hasattr(attr, "get_values"):
        return tuple(attr.get_values())
    value = getattr(attr, "value", None)
    if value is not None:
        return value.data
    return attr.data


def weights(module: ModuleOp) -> WeightStore:
    return store_for(module)


def weight_of(module: ModuleOp, value: Any) -> np.ndarray:
    """The array behind a `graph.weight` result."""
    op = value.owner
    assert op.name == "graph.weight", op.name
    return weights(module)[op.key.data]
