"""A small BCR-sparse model built in code, shared by the blob tamper tests and the fuzzer.

Conv 3x3 (a BCR conv kernel with masks), Relu, then a BCR Gemm over the
flattened features: the weight blob holds every kind of index array the BCR
kernels read (column offsets, segment and group bounds, output rows, masks).
"""

from __future__ import annotations

import struct

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from grimc.emit.blob import CHECKSUM_AT, checksum
from grimc.prune import prune_model

INPUT_SHAPE = (2, 16, 6, 6)


def bcr_model(seed: int = 0) -> onnx.ModelProto:
    """The pruned (BCR) model; deterministic for a seed."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    fc = rng.standard_normal((10, 16 * 6 * 6)).astype(np.float32)
    fb = rng.standard_normal(10).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Flatten", ["r"], ["f"]),
        helper.make_node("Gemm", ["f", "fc", "fb"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "blob_tamper",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, INPUT_SHAPE)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, (2, 10))],
        [numpy_helper.from_array(a, n) for a, n in ((w, "w"), (b, "b"), (fc, "fc"), (fb, "fb"))],
    )
    dense = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return prune_model(dense, block="8x16", rate=4, min_weights=0, min_k=1).model


def reseal(blob: bytearray) -> None:
    """Rewrite the checksum after an edit: what a deliberate attacker would do."""
    struct.pack_into("<Q", blob, CHECKSUM_AT, checksum(blob))
