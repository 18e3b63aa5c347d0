"""One compiled model object called from several Python threads at once.

The model has one activation arena, so unserialized calls overwrite each
other's intermediates; HostModel serializes calls on one object with a lock
(see docs/hardening.md). Every concurrent result must equal, bit for bit, the
single-threaded result for the same input.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from grimc.driver import build_model

SHAPE = (1, 8, 24, 24)


def conv_chain() -> onnx.ModelProto:
    rng = np.random.default_rng(3)
    inits, nodes, prev = [], [], "x"
    for i in range(3):
        w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32) * 0.3
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("Conv", [prev, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Tanh", [f"c{i}"], [f"t{i}"]))
        prev = f"t{i}"
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, SHAPE)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_concurrent_runs_on_one_model_match_serial_runs(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(4)]
    with build_model(conv_chain(), tmp_path, target="host", threads=1) as model:
        expected = [model.run([x])[0] for x in inputs]
        wrong: list[tuple[int, int]] = []
        barrier = threading.Barrier(4)

        def worker(t: int) -> None:
            barrier.wait()
            for k in range(60):
                i = (t + k) % len(inputs)
                (y,) = model.run([inputs[i]])
                if not np.array_equal(y, expected[i]):
                    wrong.append((t, k))

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    assert not wrong, f"{len(wrong)} of 240 concurrent runs gave wrong results"
