"""One naming of layers, shared by prune, inspect, the kernel profile and tuning.

A *layer* is an ONNX node that computes with weights (a Conv, a Gemm, an RNN,
...). Its name is the sanitized name of that node (`layer_names`): the same
string `grimc prune` matches patterns against and reports, `grimc inspect`
prints and a profiled run labels kernels with. The frontend tags every op
that computes with a weight with its layer (`graph.layer` attribute, see
`tag_layer`); passes that rebuild ops keep their attributes, so the name
survives BN folding, fusion and the BCR rewrite, while weight *keys* change
(`conv_2_w` -> `conv_2_w_bn` -> `conv_2_w_bn_bcr`).

A recurrent layer has two matrices, W and R: `matrix_name(layer, "W")`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from grimc.names import NameTable, sanitize

if TYPE_CHECKING:
    import onnx
    from xdsl.ir import Block, Operation

LAYER_ATTR = "graph.layer"
"""Op attribute naming the layer (ONNX node) an op computes for."""

MIN_SPARSE_WEIGHTS = 2048
"""Weights with fewer elements stay dense: too small to prune (`grimc prune`) or to
run sparse (`bcr-detect`, `grimc inspect`); the stem convs and tiny heads."""


def layer_names(graph: onnx.GraphProto, weights: Collection[str] | None = None) -> list[str]:
    """The layer name of each node of `graph`, by node index, unique in the graph.

    The sanitized node name; for an unnamed node the sanitized name of its
    first initializer input (its weight), else `<op_type>_<index>`. A name
    already taken gets `_1`, `_2`, ... (`grimc.names.NameTable.fresh`).
    `weights`: the initializer names, when `graph` does not hold them all.
    """
    initializers = set(weights) if weights is not None else {t.name for t in graph.initializer}
    table = NameTable()
    names = []
    for index, node in enumerate(graph.node):
        weight = next((i for i in node.input if i in initializers), "")
        base = node.name or weight or f"{node.op_type.lower()}_{index}"
        names.append(table.fresh(base))
    return names


def imported_layer_names(original: onnx.GraphProto, converted: onnx.GraphProto) -> list[str]:
    """Layer names for the nodes of `converted`, an opset-converted copy of `original`.

    The names `layer_names(original)` gives (what `grimc prune` sees) when the
    node lists correspond one to one; else names computed on `converted`.
    """
    weights = {t.name for t in original.initializer}
    same = [n.op_type for n in original.node] == [n.op_type for n in converted.node]
    return layer_names(original if same else converted, weights)


def matrix_name(layer: str, part: str) -> str:
    """The name of one matrix of a layer with several (recurrent W and R)."""
    return f"{layer}.{part}"


def tag_layer(block: Block, after: Operation | None, layer: str) -> None:
    """Mark the ops of `block` after `after` (all if None) that use a weight as `layer`'s."""
    from xdsl.dialects.builtin import StringAttr

    from grimc.dialects.graph import WeightOp

    op = block.first_op if after is None else after.next_op
    while op is not None:
        if not isinstance(op, WeightOp) and any(isinstance(v.owner, WeightOp) for v in op.operands):
            op.attributes[LAYER_ATTR] = StringAttr(sanitize(layer))
        op = op.next_op


def layer_of(op: Operation) -> str:
    """The layer `op` computes for ("" when it has none); a C-safe identifier."""
    from xdsl.dialects.builtin import StringAttr

    attr = op.attributes.get(LAYER_ATTR)
    return sanitize(attr.data) if isinstance(attr, StringAttr) and attr.data else ""


def layers_by_weight(ops: Sequence[Operation]) -> dict[str, str]:
    """Weight key -> layer of the first op in `ops` that uses it."""
    from grimc.dialects.graph import WeightOp

    found: dict[str, str] = {}
    for op in ops:
        layer = layer_of(op)
        if not layer:
            continue
        for value in op.operands:
            if isinstance(value.owner, WeightOp):
                found.setdefault(value.owner.key.data, layer)
    return found
