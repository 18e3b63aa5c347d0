"""Constant folding at import time with ONNX's reference evaluator.

Any deterministic ai.onnx node whose inputs are all constants is evaluated
here (Constant, ConstantOfShape, and the Shape/Gather/Unsqueeze/Concat/Cast
chains that exporters emit to compute Reshape targets). Its outputs become
constants, so they never reach the IR unless a compute op uses them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import helper
from onnx.reference import ReferenceEvaluator

from grimc.frontend.load import sparse_to_dense

NONDETERMINISTIC = frozenset(
    {
        "RandomNormal",
        "RandomNormalLike",
        "RandomUniform",
        "RandomUniformLike",
        "Multinomial",
        "Bernoulli",
    }
)


def foldable(node: onnx.NodeProto) -> bool:
    """Whether `node` may be evaluated once its inputs are known constants."""
    return (
        node.domain in ("", "ai.onnx")
        and node.op_type not in NONDETERMINISTIC
        and not any(
            a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
            for a in node.attribute
        )
    )


def evaluate(
    node: onnx.NodeProto, inputs: Sequence[np.ndarray | None], opset: int
) -> list[np.ndarray] | None:
    """Outputs of `node` on constant `inputs` (None for absent optional inputs).

    Returns None when the result is not a list of tensors (sequence ops);
    raises whatever the evaluator raises on invalid nodes.
    """
    sparse = [a.sparse_tensor for a in node.attribute if a.name == "sparse_value"]
    if node.op_type == "Constant" and sparse:
        return [sparse_to_dense(sparse[0])]
    feeds = {name: value for name, value in zip(node.input, inputs, strict=True) if name}
    graph = helper.make_graph(
        [node],
        "fold",
        [
            helper.make_tensor_value_info(
                name, helper.np_dtype_to_tensor_dtype(value.dtype), value.shape
            )
            for name, value in feeds.items()
        ],
        [helper.make_value_info(name, onnx.TypeProto()) for name in node.output if name],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    results = ReferenceEvaluator(model).run(None, feeds)
    if not all(isinstance(r, np.ndarray | np.generic) for r in results):
        return None
    outputs = iter(np.asarray(r) for r in results)
    return [next(outputs) if name else None for name in node.output]
