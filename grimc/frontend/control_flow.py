"""If with a compile-time condition, inlined at import.

A condition that is a constant (an initializer, a folded subgraph, or a
control input specialized with `--input-value`) selects one branch; its nodes
are converted in place of the If, reading the enclosing scope's tensors, and
its outputs become the If's. grimc generates straight-line code, so an If
whose condition is known only at run time is refused, naming the run-time
inputs it depends on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import onnx

from grimc.frontend.context import NodeContext, Value
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
    """The outputs of an If whose condition is a constant: its chosen branch,
    converted node by node (`convert`) in a scope that sees the enclosing one."""
    state = ctx.state
    cond = ctx.input(0)
    if not isinstance(cond, np.ndarray):
        raise ctx.fail(_runtime_condition(ctx))
    if cond.size != 1:
        raise ctx.fail(f"condition has {cond.size} elements; If needs a single one")
    chosen = "then_branch" if bool(cond.reshape(-1)[0]) else "else_branch"
    branch = ctx.attr(chosen)
    if len(branch.output) != len(ctx.node.output):
        raise ctx.fail(
            f"branch {quote_for_message(branch.name)} has {len(branch.output)} outputs, "
            f"the node {len(ctx.node.output)}"
        )
    outer, scope = state.env, state.scope
    state.env = {**outer, **initializers(onnx.ModelProto(graph=branch), state.label)}
    state.scope = f"{ctx.where} {chosen}: "
    try:
        state.used |= {name for node in branch.node for name in reads(node)}
        state.used |= {o.name for o in branch.output}
        live = live_nodes(branch.node, [o.name for o in branch.output])
        for index, node in enumerate(branch.node):
            if index in live:
                convert(node, index)
        missing = [o.name for o in branch.output if o.name not in state.env]
        if missing:
            raise ctx.fail(f"branch output {quote_for_message(missing[0])} is never produced")
        return [state.env[o.name] for o in branch.output]
    finally:
        state.env, state.scope = outer, scope


def _runtime_condition(ctx: NodeContext) -> str:
    """Why a run-time condition is refused, and which inputs to specialize."""
    inputs = ctx.state.runtime_inputs_of(ctx.node.input[0])
    if inputs:
        fixes = " or ".join(f"--input-value {cli_name(name)}=VALUE" for name in inputs)
        hint = f"; it depends on run-time input {', '.join(map(quote_for_message, inputs))}: "
        hint += f"fix its value at compile time with {fixes}"
    else:
        hint = "; fix the inputs it depends on with --input-value NAME=VALUE"
    return (
        f"condition {quote_for_message(ctx.node.input[0])} is known only at run time and "
        f"grimc compiles one branch{hint}"
    )
