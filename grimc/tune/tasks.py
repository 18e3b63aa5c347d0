"""Tuning tasks: one per distinct (kernel, shapes, encoding signature, schedule key).

Only schedules with knobs to search are tasks: a `#sched.split` of an
element-wise or pooling sweep has none (its threads stay the compile's).

A task is measured on a one-op module cut from the optimized model: the op
with its real packed weights (the store is shared), its activations as
function inputs and its results as outputs, so only its kernel runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, ModuleOp, StringAttr
from xdsl.ir import Block, Operation, Region, SSAValue

from grimc.dialects.graph import WeightOp
from grimc.dialects.sched import KnobsAttr
from grimc.transforms.schedule_select import schedule_keys
from grimc.tune.space import knob_values
from grimc.tunedb import op_shapes, task_signature


@dataclass
class Task:
    """One schedule to tune: attribute `key` of `op` (the first of `count` alike)."""

    signature: str
    key: str
    op: Operation
    default: KnobsAttr
    layers: list[str]
    """Layer names of every op this task's record serves."""

    @property
    def kind(self) -> str:
        return self.default.name

    @property
    def shapes(self) -> str:
        return json.dumps(op_shapes(self.op))

    @property
    def label(self) -> str:
        first = self.layers[0] if self.layers else self.op.name
        more = f" (+{len(self.layers) - 1})" if len(self.layers) > 1 else ""
        return f"{first}{more} {self.kind}" + (f" [{self.key}]" if self.key != "sched" else "")


def extract_tasks(module: ModuleOp) -> list[Task]:
    """The distinct tasks of an optimized module (every scheduled op has its schedule)."""
    tasks: dict[str, Task] = {}
    for op in module.walk():
        for key in schedule_keys(op):
            attr = op.attributes.get(key)
            if not isinstance(attr, KnobsAttr) or not knob_values(attr):
                continue
            signature = task_signature(op, key)
            layer = op.attributes.get("graph.layer")
            name = layer.data if isinstance(layer, StringAttr) else op.name
            if signature in tasks:
                tasks[signature].layers.append(name)
            else:
                tasks[signature] = Task(signature, key, op, attr, [name])
    return list(tasks.values())


def task_module(module: ModuleOp, op: Operation, schedule: dict[str, KnobsAttr]) -> ModuleOp:
    """A module computing only `op` (with `schedule` set), on the same weight store."""
    inputs: list[SSAValue] = []
    for value in op.operands:
        if not isinstance(value.owner, WeightOp) and value not in inputs:
            inputs.append(value)
    block = Block(arg_types=[v.type for v in inputs])
    mapping: dict[SSAValue, SSAValue] = dict(zip(inputs, block.args, strict=True))
    for value in op.operands:
        if isinstance(value.owner, WeightOp) and value not in mapping:
            weight = value.owner.clone()
            block.add_op(weight)
            mapping[value] = weight.result
    new = op.clone(value_mapper=mapping)
    new.attributes.update(schedule)
    block.add_op(new)
    block.add_op(func.ReturnOp(*new.results))

    def names(prefix: str, n: int) -> ArrayAttr[DictionaryAttr]:
        return ArrayAttr([DictionaryAttr({"graph.name": StringAttr(f"{prefix}{i}")}) for i in range(n)])

    main = func.FuncOp(
        "main",
        ([v.type for v in inputs], [r.type for r in new.results]),
        Region(block),
        arg_attrs=names("in", len(inputs)),
        res_attrs=names("out", len(new.results)),
    )
    out = ModuleOp([main], sym_name=StringAttr("task"))
    out.attributes.update(module.attributes)
    return out
