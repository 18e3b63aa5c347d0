"""Which weights of an ONNX model are prunable, how each maps to GEMM matrices, and
which stay dense by default."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import onnx
from onnx import helper

from grimc.layers import layer_names, matrix_name

RNN_OPS = ("GRU", "LSTM", "RNN")
FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE)


class PrunableLayer(Protocol):
    """What patterns and the dense rules look at: an ONNX `Layer` or a torch weight."""

    @property
    def name(self) -> str: ...

    @property
    def weight(self) -> str: ...

    @property
    def matrix(self) -> tuple[int, int]: ...

    @property
    def depthwise(self) -> bool: ...

    @property
    def weights(self) -> int: ...



@dataclass(frozen=True)
class Layer:
    """A prunable weight: where it is and how it maps to GEMM matrices (G, M, K)."""

    name: str
    op: str
    weight: str
    index: int
    """Position in graph.initializer."""
    layout: str
    """"conv", "w" (matrix as stored: Gemm transB=1, RNN W/R) or "b" (W = B^T)."""
    shape: tuple[int, ...]
    """The initializer's shape."""
    groups: int
    matrix: tuple[int, int]
    """(M, K) of one group."""
    depthwise: bool = False

    @property
    def weights(self) -> int:
        return self.groups * self.matrix[0] * self.matrix[1]

    def gemm_view(self, array: np.ndarray) -> np.ndarray:
        """The initializer as G stacked (M, K) matrices (a view where possible)."""
        if self.layout == "b":
            return array.T[None]
        return array.reshape(self.groups, *self.matrix)

    def from_gemm_view(self, mats: np.ndarray) -> np.ndarray:
        if self.layout == "b":
            return np.ascontiguousarray(mats[0].T)
        return mats.reshape(self.shape)


def _attr(node: onnx.NodeProto, name: str, default: int) -> int:
    for attr in node.attribute:
        if attr.name == name:
            return int(helper.get_attribute_value(attr))
    return default


def _layer_views(node: onnx.NodeProto, dims: Mapping[str, tuple[int, ...]]) -> Iterator[tuple]:
    """(input slot, matrix part ("" or recurrent "W"/"R"), layout, groups, matrix, depthwise)
    of each prunable weight."""
    op = node.op_type
    inputs = list(node.input)

    def const(slot: int) -> tuple[int, ...] | None:
        return dims.get(inputs[slot]) if len(inputs) > slot and inputs[slot] else None

    if op == "Conv" and (shape := const(1)) and len(shape) >= 3:
        groups = _attr(node, "group", 1)
        if groups >= 1 and shape[0] % groups == 0:
            k = math.prod(shape[1:])
            yield 1, "", "conv", groups, (shape[0] // groups, k), groups > 1 and shape[1] == 1
    elif op in ("Gemm", "MatMul") and (shape := const(1)) and len(shape) == 2:
        if op == "Gemm" and _attr(node, "transB", 0):
            yield 1, "", "w", 1, (shape[0], shape[1]), False
        else:
            yield 1, "", "b", 1, (shape[1], shape[0]), False
    elif op in RNN_OPS:
        for slot, part in ((1, "W"), (2, "R")):
            if (shape := const(slot)) and len(shape) == 3:
                yield slot, part, "w", shape[0], (shape[1], shape[2]), False


def find_layers(model: onnx.ModelProto) -> list[Layer]:
    """Prunable float weights in graph order (main graph; subgraphs are left alone)."""
    graph = model.graph
    index = {t.name: i for i, t in enumerate(graph.initializer) if t.data_type in FLOAT_TYPES}
    dims = {name: tuple(int(d) for d in graph.initializer[i].dims) for name, i in index.items()}
    layers: list[Layer] = []
    seen_weights: set[str] = set()
    for node, node_name in zip(graph.node, layer_names(graph), strict=True):
        for slot, part, layout, groups, matrix, depthwise in _layer_views(node, dims):
            weight = node.input[slot]
            if weight in seen_weights or min(matrix) < 1:
                continue
            seen_weights.add(weight)
            name = matrix_name(node_name, part) if part else node_name
            layers.append(
                Layer(name, node.op_type, weight, index[weight], layout, dims[weight], groups,
                      matrix, depthwise)
            )
    return layers


def matches(layer: PrunableLayer, pattern: str) -> bool:
    """`pattern` (an fnmatch glob) names the layer or its weight."""
    return fnmatch.fnmatchcase(layer.name, pattern) or fnmatch.fnmatchcase(layer.weight, pattern)


def dense_rule(layer: PrunableLayer, min_weights: int, min_k: int) -> str | None:
    """Why the default rules keep `layer` dense, or None."""
    if layer.depthwise:
        return "depthwise"
    if layer.matrix[1] < min_k:
        return f"K {layer.matrix[1]} < {min_k}"
    if layer.weights < min_weights:
        return f"{layer.weights} < {min_weights} weights"
    return None

