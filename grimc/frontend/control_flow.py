"""If, inlined at import.

A condition that is a constant (an initializer, a folded subgraph, or a
control input specialized with `--input-value`) selects one branch; its nodes
are converted in place of the If, reading the enclosing scope's tensors, and
its outputs become the If's. With a condition known only at run time both
branches are converted and every output is `graph.where(cond, then, else)`,
straight-line code for the passes; the code generator runs only the taken
branch's kernels (`grimc.emit.branches`). Outputs whose
shapes differ between the branches cannot be selected so; that is refused,
naming the run-time inputs to fix with `--input-value`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import onnx
from xdsl.ir import SSAValue

from grimc.dialects.graph import WhereOp, shape_of
from grimc.frontend.context import NodeContext, Value, to_float32
from grimc.frontend.load import cli_name, initializers
from grimc.names import quote_for_message

ConvertNode = Callable[[onnx.NodeProto, int], None]
"""Converts one node of a branch into the current scope (the importer's)."""


def subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    """The graphs held by `node`'s attributes (If branches, Loop/Scan bodies)."""
    found: list[onnx.GraphProto] = []
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            found.append(attr.g)
        elif attr.type == onnx.AttributeProto.GRAPHS:
            found.extend(attr.graphs)
    return found


def reads(node: onnx.NodeProto) -> set[str]:
    """Every tensor `node` reads from its scope: its inputs and the names its
    subgraphs take from enclosing scopes (which are not listed as inputs)."""
    names = {name for name in node.input if name}
    for graph in subgraphs(node):
        names |= _outer_reads(graph)
    return names


def _outer_reads(graph: onnx.GraphProto) -> set[str]:
    defined = {vi.name for vi in graph.input} | {t.name for t in graph.initializer}
    defined |= {s.values.name for s in graph.sparse_initializer}
    outer: set[str] = set()
    for node in graph.node:
        outer |= reads(node) - defined
        defined.update(node.output)
    return outer | {o.name for o in graph.output if o.name not in defined}


def live_nodes(nodes: Sequence[onnx.NodeProto], outputs: Iterable[str]) -> set[int]:
    """Indices of nodes that contribute to `outputs`; dead ones are skipped."""
    needed = set(outputs)
    live: set[int] = set()
    for index in reversed(range(len(nodes))):
        node = nodes[index]
        if needed.intersection(node.output):
            live.add(index)
            needed |= reads(node)
    return live


def inline_if(ctx: NodeContext, convert: ConvertNode) -> list[Value]:
    """The outputs of an If: with a constant condition its chosen branch,
    converted node by node (`convert`) in a scope that sees the enclosing one;
    with a run-time condition both branches, selected by `graph.where`."""
    cond = ctx.input(0)
    size = cond.size if isinstance(cond, np.ndarray) else math.prod(shape_of(cond))
    if size != 1:
        raise ctx.fail(f"condition has {size} elements; If needs a single one")
    if isinstance(cond, np.ndarray):
        return _branch(ctx, convert, "then_branch" if bool(cond.reshape(-1)[0]) else "else_branch")
    then = _branch(ctx, convert, "then_branch")
    otherwise = _branch(ctx, convert, "else_branch")
    return [
        _select(ctx, cond, name, a, b)
        for name, a, b in zip(ctx.node.output, then, otherwise, strict=True)
    ]


def _branch(ctx: NodeContext, convert: ConvertNode, which: str) -> list[Value]:
    """The outputs of branch `which`, its nodes converted in place."""
    state = ctx.state
    branch = ctx.attr(which)
    if len(branch.output) != len(ctx.node.output):
        raise ctx.fail(f"{which} has {len(branch.output)} outputs, the node {len(ctx.node.output)}")
    own = initializers(onnx.ModelProto(graph=branch), state.label)
    with state.branch_scope(f"{ctx.where} {which}: ", own):
        state.used |= {name for node in branch.node for name in reads(node)}
        state.used |= {o.name for o in branch.output}
        live = live_nodes(branch.node, [o.name for o in branch.output])
        for index, node in enumerate(branch.node):
            if index in live:
                convert(node, index)
        missing = [o.name for o in branch.output if o.name not in state.env]
        if missing:
            raise ctx.fail(f"{which} output {quote_for_message(missing[0])} is never produced")
        return [state.env[o.name] for o in branch.output]


def _select(ctx: NodeContext, cond: SSAValue, name: str, then: Value, otherwise: Value) -> Value:
    """where(cond, then, otherwise) for one output of an If decided at run time."""
    shapes = [
        tuple(v.shape) if isinstance(v, np.ndarray) else shape_of(v) for v in (then, otherwise)
    ]
    if shapes[0] != shapes[1]:
        raise ctx.fail(
            f"output {quote_for_message(name)} has shape {list(shapes[0])} in then_branch and "
            f"{list(shapes[1])} in else_branch, so the run-time condition "
            f"{quote_for_message(ctx.node.input[0])} cannot select one{_specialize_hint(ctx)}"
        )
    operands = []
    for value, which in ((then, "then"), (otherwise, "else")):
        if isinstance(value, np.ndarray):
            try:
                value = ctx.state.weight(
                    f"{name}_{which}", to_float32(value, f"output {quote_for_message(name)}")
                )
            except ValueError as exc:
                raise ctx.fail(str(exc)) from None
        operands.append(value)
    flag = ctx.reshape(cond, (1,) * len(shapes[0]))
    return ctx.emit(WhereOp(flag, operands[0], operands[1])).y


def _specialize_hint(ctx: NodeContext) -> str:
    """Which inputs the condition depends on, to be fixed with --input-value."""
    inputs = ctx.state.runtime_inputs_of(ctx.node.input[0])
    if not inputs:
        return "; fix the inputs it depends on with --input-value NAME=VALUE"
    fixes = " or ".join(f"--input-value {cli_name(name)}=VALUE" for name in inputs)
    return (
        f"; it depends on run-time input {', '.join(map(quote_for_message, inputs))}: "
        f"fix its value at compile time with {fixes}"
    )
