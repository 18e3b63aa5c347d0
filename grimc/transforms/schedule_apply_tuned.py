"""schedule-apply-tuned: replace cost-model schedules by measured ones from the tuning DB.

Runs after schedule-select (the default pipeline adds it when the database
file exists and the compile uses it). For each scheduled op it looks up the
op's task (`grimc.tunedb.task_signature`) for the module's target, the
thread count and the current version key; a record of the same schedule kind
overwrites the op's schedule. Ops without a current record keep the cost
model's choice, so a stale or empty database changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import VerifyException

from grimc.dialects.sched import SCHEDULES, KnobsAttr, module_target_or
from grimc.opencl_device import NoOpenCLDevice
from grimc.transforms.schedule_select import schedule_keys
from grimc.tunedb import TuningDB, metric_for, target_key, task_signature

KINDS: dict[str, type[KnobsAttr]] = {cls.name: cls for cls in SCHEDULES}


def apply_tuned(
    module: ModuleOp, db: TuningDB, threads: int, device: str | None = None, precision: str = "fp32"
) -> int:
    """Write every current record's schedule on its ops; returns how many changed.

    `device`: the records measured on that remote device (grimc.device spec) instead.
    OpenCL: the records of the device the runtime selects now, at `precision`; with
    no OpenCL device there is none to match (the cost model's schedules stay)."""
    target = module_target_or(module, None)
    if target.family == "opencl" and not db.has_target(target.name):
        return 0  # no OpenCL records: no need to ask the runtime for its device
    try:
        where = target_key(target, metric_for(target, device), device, precision)
    except NoOpenCLDevice:
        return 0
    changed = 0
    for op in list(module.walk()):
        for key in schedule_keys(op):
            current = op.attributes.get(key)
            if not isinstance(current, KnobsAttr):
                continue
            record = db.lookup(task_signature(op, key), where, threads)
            if record is None or record.kind != current.name:
                continue
            try:
                tuned = KINDS[record.kind](**json.loads(record.knobs))
            except (VerifyException, TypeError, ValueError):
                continue  # a record a newer grimc wrote with other knobs: the cost model's stays
            if tuned != current:
                op.attributes[key] = tuned
                changed += 1
    return changed


@dataclass(frozen=True)
class ScheduleApplyTuned(ModulePass):
    """Use the tuning database's measured schedules (default file: grimc.tunedb)."""

    name = "schedule-apply-tuned"

    db: str = ""
    threads: int = 1
    device: str = ""
    """A remote device's spec: use the records measured there."""
    precision: str = "fp32"
    """OpenCL: the records tuned at this precision."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        database = TuningDB(self.db or None)
        try:
            apply_tuned(op, database, self.threads, self.device or None, self.precision)
        finally:
            database.close()
