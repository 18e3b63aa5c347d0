"""Several HostModel builds into one folder in one process: each must run the
code it was built from (ctypes hands back a library already loaded from a path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from grimc.artifacts import onnxruntime_reference
from grimc.driver import compile_model
from grimc.runner import HostModel, RunError

RTOL, ATOL = 1e-4, 1e-5


def fc_model(seed: int, n_in: int, n_out: int) -> onnx.ModelProto:
    """x[1, n_in] @ W^T + b, then Relu; seeded weights."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((n_out, n_in)).astype(np.float32)
    b = rng.standard_normal(n_out).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "w", "b"], ["g"], transB=1),
            helper.make_node("Relu", ["g"], ["y"]),
        ],
        f"fc{seed}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n_out])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def reference(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    return onnxruntime_reference(model.SerializeToString(), [x])[0]


def test_repeated_builds_into_one_folder(tmp_path: Path) -> None:
    x16 = np.random.default_rng(0).standard_normal((1, 16)).astype(np.float32)
    first, second = fc_model(1, 16, 8), fc_model(2, 16, 12)
    with HostModel.build(compile_model(first), tmp_path) as m1:
        np.testing.assert_allclose(m1.run([x16])[0], reference(first, x16), rtol=RTOL, atol=ATOL)
        with pytest.raises(RunError, match="without profiling"):
            m1.profile()
        # Same folder, same prefix, profiling on: the timers must be there.
        with HostModel.build(compile_model(first), tmp_path, profile=True) as m2:
            m2.run([x16])
            assert [p.calls for p in m2.profile()] == [1] * len(m2.gen.kernels)
        # A different model into the same folder, while the first is still loaded.
        with HostModel.build(compile_model(second), tmp_path) as m3:
            y3 = m3.run([x16])[0]
            assert y3.shape == (1, 12)
            np.testing.assert_allclose(y3, reference(second, x16), rtol=RTOL, atol=ATOL)
        # The first one still runs its own code.
        np.testing.assert_allclose(m1.run([x16])[0], reference(first, x16), rtol=RTOL, atol=ATOL)
