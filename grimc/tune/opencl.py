"""Measuring OpenCL candidates: the CPU measurer with OpenCL models and device time.

The tasks are the OpenCL kernels' schedules (`#sched.cl_linear`: weight
vector width, NDRange order, work-group size; `#sched.cl_cell`: vector width,
work-items per direction), searched as every other kind (grimc.tune.space).
A candidate is its one-op module generated for OpenCL at the compile's
precision and built as a host library with profiling; its outputs are checked
against the default's as on the CPU, and a sample is the kernels' own device
time from OpenCL profiling events (what `grimc bench --profile` reports), so
host overhead and other processes' CPU time do not count. Rounds, medians,
the noise floor and acceptance are the shared ones (grimc.tune.search).

Records are keyed by the device the runtime selects ("<platform> |
<device>", grimc.opencl_device): every candidate must report running there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from grimc.dialects.sched import KnobsAttr
from grimc.emit.codegen import GeneratedModel
from grimc.emit.opencl.codegen import device_name, generate_opencl
from grimc.errors import GrimcError
from grimc.opencl_device import selected_device
from grimc.runner import HostModel
from grimc.target import Target
from grimc.tune.measure import Measurer, Outcome
from grimc.tune.tasks import Task, task_module


class ClMeasurer(Measurer):
    """Measures OpenCL candidate schedules on the device the runtime selects."""

    def __init__(
        self, module: ModuleOp, target: Target, threads: int, workdir: Path,
        *args: Any, precision: str = "fp32", **kwargs: Any,
    ):  # fmt: skip
        super().__init__(module, target, threads, workdir, *args, **kwargs)
        self.precision = precision
        self.device_name = selected_device()
        """'<platform> | <device>': where every candidate must run."""

    def _generate(self, task: Task, attr: KnobsAttr) -> GeneratedModel:
        module = task_module(self.module, task.op, {task.key: attr})
        return generate_opencl(module, self.target, "grimc_task", self.precision)

    def _first_run(
        self, outcome: Outcome, model: HostModel, inputs: list[np.ndarray]
    ) -> list[np.ndarray] | None:
        outputs = super()._first_run(outcome, model, inputs)
        ran_on = device_name(model)
        if ran_on != self.device_name:
            raise GrimcError(
                f"an OpenCL candidate ran on '{ran_on}', not on '{self.device_name}' "
                "that its records are keyed by"
            )
        return outputs

    def _sample(self, model: HostModel, inputs: list[np.ndarray], runs: int) -> float:
        """Milliseconds per run: the kernels' device time from profiling events."""
        model.reset_profile()
        for _ in range(runs):
            model.run(inputs)
        return sum(p.ms for p in model.profile())
