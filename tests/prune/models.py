"""Models the pruning and sensitivity tests share (built in code, seeded)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def mlp(n_in: int = 256, hidden: int = 512, scale: float = 0.1) -> onnx.ModelProto:
    """n_in -> hidden -> 10 (Gemm, Relu, Gemm), batch symbolic, seeded weights times `scale`."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array((rng.standard_normal(s) * scale).astype(np.float32), n)
             for n, s in (("w1", (n_in, hidden)), ("b1", (hidden,)), ("w2", (hidden, 10)),
                          ("b2", (10,)))]
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], name="fc2")]
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
