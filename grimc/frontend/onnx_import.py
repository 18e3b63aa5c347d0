"""ONNX -> `graph` dialect.

`import_onnx` returns a verified module holding `func.func @main`, whose
arguments are the model's real inputs (initializers listed as inputs, as old
exporters do, are weights) and whose results are the graph outputs in order.
Every ONNX tensor name is kept only as a sanitized `graph.name` attribute.

Weights go to a `WeightStore` attached to the module, as float32: float16,
float64 and bfloat16 initializers are converted; any other dtype reaching a
compute op, and non-finite values, are errors. Nodes whose inputs are all
constants are folded (see `grimc.frontend.fold`); Squeeze/Unsqueeze/Reshape of
activations become `graph.reshape`; Identity and Dropout disappear.

`input_values` specializes control inputs (a sample rate, a flag): they become
constants before shape inference and folding, so an If on them selects its
branch at import (`grimc.frontend.control_flow`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import onnx
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, ModuleOp, StringAttr
from xdsl.ir import Block, Region, SSAValue
from xdsl.utils.exceptions import VerifyException

from grimc.dialects.graph import DTYPE_ATTR, NAME_ATTR, shape_of, tensor

# Importing the op modules registers their converters.
from grimc.frontend import (  # noqa: F401
    conv,
    data_movement,
    elementwise,
    linalg,
    math_ops,
    reduce,
    rnn,
    shapes,
)
from grimc.frontend.context import (
    CONVERTERS,
    INLINED,
    FrontendError,
    ImportState,
    NodeContext,
    Value,
    first_line,
    supported_ops,
)
from grimc.frontend.control_flow import inline_if, live_nodes, reads
from grimc.frontend.fold import evaluate, foldable
from grimc.frontend.load import (
    Source,
    ai_onnx_opset,
    check_graph,
    check_nodes,
    fix_input_shapes,
    index_dtype,
    infer_shapes,
    initializers,
    load_for_import,
    non_float_input,
    normalize_opset,
    skeleton,
    specialize_inputs,
)
from grimc.layers import imported_layer_names, tag_layer
from grimc.limits import ELEMENT_BYTES, MAX_FOLDED_BYTES, MAX_FOLDED_TOTAL_BYTES, shape_problem
from grimc.names import NameTable, quote_for_message, sanitize
from grimc.weights import WeightStore, attach

__all__ = ["FrontendError", "import_onnx"]


def import_onnx(
    source: Source,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    *,
    input_values: Mapping[str, np.ndarray] | None = None,
    name: str = "model",
) -> ModuleOp:
    """Import an ONNX model (path, serialized bytes or ModelProto).

    `input_shapes` fixes dynamic input dims, keyed by the original ONNX input
    names; `input_values` gives inputs compile-time values (they are then no
    inputs of the module). `name` labels diagnostics for in-memory models and
    names the module. Raises FrontendError (one line) for anything grimc
    cannot import.
    """
    original, label, stored = load_for_import(source, name)
    source_opset = ai_onnx_opset(original, label)
    check_graph(original, label)
    check_nodes(original, label)
    specialized = skeleton(original)
    specialize_inputs(specialized, input_values, label, {vi.name for vi in original.graph.input})
    model, opset = normalize_opset(specialized, source_opset)
    # The large initializers come from the original; the small ones from the
    # converted skeleton, where version adapters may have added or changed some.
    weights = {**initializers(original, label, stored), **initializers(model, label)}
    graph = model.graph
    real_inputs = [vi for vi in graph.input if vi.name not in weights]
    input_dims = fix_input_shapes(model, real_inputs, input_shapes, label)
    inference = infer_shapes(model, label)

    live = live_nodes(graph.node, [o.name for o in graph.output])
    used = {name for i in live for name in reads(graph.node[i])} | {o.name for o in graph.output}
    block = Block(arg_types=[tensor(dims) for dims in input_dims])
    state = ImportState(label, opset, source_opset, block, WeightStore(), inference.shapes, used)
    state.outputs = {o.name for o in graph.output}
    state.runtime_inputs = [vi.name for vi in real_inputs]
    state.dependencies = {out: reads(node) for node in graph.node for out in node.output}
    state.env.update(weights)
    state.env.update({vi.name: arg for vi, arg in zip(real_inputs, block.args, strict=True)})
    state.index_inputs = {
        vi.name: non_float_input(vi, label) for vi in real_inputs if index_dtype(vi) is not None
    }
    layers = imported_layer_names(original.graph, graph)
    for index, node in enumerate(graph.node):
        if index in live:
            last = block.last_op
            _convert(state, node, index)
            tag_layer(block, last, layers[index])
    results = [_graph_output(state, o.name) for o in graph.output]
    if inference.error is not None:
        raise FrontendError(inference.error)
    block.add_op(func.ReturnOp(*results))
    return _module(state, real_inputs, [o.name for o in graph.output], name)


def _module(
    state: ImportState, inputs: Sequence[onnx.ValueInfoProto], outputs: Sequence[str], name: str
) -> ModuleOp:
    """Wrap the converted block into `func.func @main` in a verified module."""
    block = state.block
    names = NameTable()
    main = func.FuncOp(
        "main",
        ([a.type for a in block.args], [r.type for r in block.last_op.operands]),
        Region(block),
        arg_attrs=_name_attrs(names, [vi.name for vi in inputs], [index_dtype(vi) for vi in inputs]),
        res_attrs=_name_attrs(names, outputs),
    )
    module = ModuleOp([main], sym_name=StringAttr(sanitize(name, "model")))
    attach(module, state.store)
    try:
        module.verify()
    except VerifyException as exc:
        raise state.fail(f"imported IR does not verify: {first_line(exc)}") from None
    return module


def _convert(state: ImportState, node: onnx.NodeProto, index: int) -> None:
    ctx = NodeContext(state, node, index)
    missing = [name for name in node.input if name and name not in state.env]
    if missing:
        raise ctx.fail(f"input {quote_for_message(missing[0])} is not defined before use")
    _check_index_inputs(state, node)
    try:
        outputs = _fold(ctx) or _lower(ctx)
    except FrontendError:
        raise
    except VerifyException as exc:
        raise ctx.fail(first_line(exc)) from None
    except Exception as exc:  # noqa: BLE001 - a hostile model must not cause a traceback
        raise ctx.fail(f"cannot convert ({type(exc).__name__}: {first_line(exc)})") from None
    for name, value in zip(node.output, outputs, strict=False):
        if name and value is not None:
            _check_size(ctx, name, value)
            _check_inferred(ctx, name, value)
            state.env[name] = value


TYPED_READERS: dict[str, tuple[int, ...] | None] = {
    "Gather": (1,), "GatherElements": (1,), "Cast": (0,), "Where": (0,), "If": (0,),
    "Equal": None, "Less": None, "Greater": None, "LessOrEqual": None, "GreaterOrEqual": None,
    "Not": None, "And": None, "Or": None, "Xor": None,
}
"""What may read an int64/int32/bool run-time input, and at which input positions
(None: any). Inside the graph such an input is exact float32 (converted on entry), so
only ops whose float result equals the integer one qualify: indices, comparisons,
a cast to float32 and conditions; integer arithmetic (Div truncates) does not."""


def _check_index_inputs(state: ImportState, node: onnx.NodeProto) -> None:
    """A non-float run-time input may only be read as TYPED_READERS allows."""
    positions = TYPED_READERS.get(node.op_type, ()) if node.domain in ("", "ai.onnx") else ()
    for position, name in enumerate(node.input):
        if name in state.index_inputs and not (positions is None or position in positions):
            raise state.index_inputs[name]


def _fold(ctx: NodeContext) -> Sequence[Value | None] | None:
    """Outputs of a node whose inputs are all constants, or None."""
    node = ctx.node
    inputs = [ctx.input(i) if ctx.has_input(i) else None for i in range(ctx.num_inputs)]
    if not foldable(node) or not all(v is None or isinstance(v, np.ndarray) for v in inputs):
        return None
    given = sum(v.nbytes for v in inputs if v is not None)
    budget = ctx.state.fold_budget
    expected = [ctx.state.inferred.get(name) for name in node.output if name]
    known = sum(math.prod(s) * ELEMENT_BYTES for s in expected if s is not None)
    if not budget.allows(known, given):
        return _too_large_to_fold(ctx, known)
    try:
        outputs = evaluate(node, inputs, ctx.state.opset)
    except Exception as exc:  # noqa: BLE001 - the reference evaluator raises anything
        raise ctx.fail(
            f"cannot fold constant node ({type(exc).__name__}: {first_line(exc)})"
        ) from None
    made = sum(v.nbytes for v in outputs or () if v is not None)
    if not budget.allows(made, given):
        return _too_large_to_fold(ctx, made)
    budget.spend(made, given)
    return outputs


def _too_large_to_fold(ctx: NodeContext, nbytes: int) -> None:
    """A node whose constant result is too large to build at compile time runs at
    run time; one without a kernel is refused."""
    if ctx.node.domain in ("", "ai.onnx") and ctx.node.op_type in CONVERTERS:
        return None
    raise ctx.fail(
        f"its constant result of {nbytes} bytes is more than grimc computes at compile time "
        f"({MAX_FOLDED_BYTES >> 20} MiB per constant, {MAX_FOLDED_TOTAL_BYTES >> 20} MiB "
        "in all), and the operator has no run-time kernel"
    )


def _lower(ctx: NodeContext) -> Sequence[Value | None]:
    node = ctx.node
    if node.domain in ("", "ai.onnx") and node.op_type in INLINED:
        return inline_if(ctx, lambda inner, index: _convert(ctx.state, inner, index))
    lower = CONVERTERS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
    if lower is None:
        raise ctx.fail(
            f"unsupported operator; grimc imports {len(supported_ops())} ONNX operators "
            "(`grimc ops` lists them)"
        )
    return lower(ctx)


def _check_size(ctx: NodeContext, name: str, value: Value) -> None:
    """Every tensor must be within grimc's size limits (`grimc.limits`)."""
    problem = shape_problem(shape_of(value) if isinstance(value, SSAValue) else value.shape)
    if problem is not None:
        raise ctx.fail(f"output {quote_for_message(name)}: {problem}")


def _check_inferred(ctx: NodeContext, name: str, value: Value) -> None:
    """Our shapes must agree with ONNX shape inference wherever it knows them."""
    expected = ctx.state.inferred.get(name)
    if expected is None or not isinstance(value, SSAValue):
        return
    if shape_of(value) != expected:
        raise ctx.fail(
            f"output {quote_for_message(name)} has shape {list(shape_of(value))} "
            f"but ONNX infers {list(expected)}"
        )


def _graph_output(state: ImportState, name: str) -> SSAValue:
    if name not in state.env:
        raise state.fail(f"graph output {quote_for_message(name)} is never produced")
    if name in state.index_inputs:
        raise state.index_inputs[name]
    try:
        return state.materialize(name)
    except ValueError as exc:
        raise state.fail(f"graph output: {exc}") from None


def _name_attrs(
    names: NameTable, onnx_names: Sequence[str], dtypes: Sequence[str | None] = ()
) -> ArrayAttr[DictionaryAttr]:
    """Each tensor's unique sanitized name and, for integer inputs, its dtype."""
    entries = []
    for n, dtype in zip(onnx_names, [*dtypes] or [None] * len(onnx_names), strict=True):
        attrs = {NAME_ATTR: StringAttr(names.unique(n))}
        if dtype is not None:
            attrs[DTYPE_ATTR] = StringAttr(dtype)
        entries.append(DictionaryAttr(attrs))
    return ArrayAttr(entries)
