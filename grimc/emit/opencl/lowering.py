"""The contract of OpenCL lowerings: one op -> `KernelInstance`s for .cl templates.

The same `KernelInstance` / `LoweringContext` as the C targets
(grimc.emit.kernel), so buffers, liveness and the weight blob are planned by
the shared code generator. For OpenCL, `kind` names the template
`templates/opencl/<kind>.cl.j2` and `params` carries, besides what the
template reads, the launch: `defines` (the -D specializations the program
is built with), `global` and `local` (the NDRange; local None lets the driver
pick). `cl_kernel` fills these in one way for every lowering.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xdsl.ir import Operation

from grimc.dialects.sched import SCHEDULE_ATTR, ClLinearSchedule, schedule_of
from grimc.emit.kernel import (
    ActRef,
    CodegenError,
    KernelInstance,
    Lowering,
    Ref,
    register_lowering,
)

CL_LOWERINGS: dict[type[Operation], Lowering] = {}


def cl_lowers(*op_types: type[Operation]) -> Callable[[Lowering], Lowering]:
    """Register an OpenCL lowering for one or more op classes."""
    return register_lowering(CL_LOWERINGS, op_types)


@dataclass(frozen=True)
class ClMapping:
    """How a GEMM / GEMV / conv kernel maps onto the NDRange, from the op's
    `#sched.cl_linear` (chosen by schedule-select): `rows` per work-item, which
    dimension is fastest, and the work-group size (None: the driver picks)."""

    rows: int
    order: str
    local: tuple[int, int, int] | None

    def dims(self, data: Sequence[str]) -> dict[str, int]:
        """NDRange dimension of each index: `data` names the data indices in
        order (e.g. ("p", "n")); "g" (register groups) goes first or second."""
        names = ["g", *data] if self.order == "rows" else [data[0], "g", *data[1:]]
        return {name: i for i, name in enumerate(names)}

    def local_for(self, ndims: int) -> list[int] | None:
        """The work-group size of an `ndims`-D launch (lx, ly, lz cut to it)."""
        if self.local is None:
            return None
        if any(v != 1 for v in self.local[ndims:]):
            raise CodegenError(
                f"#sched.cl_linear: work-group size {self.local} for a {ndims}-D kernel "
                f"(set the sizes past dimension {ndims} to 1)"
            )
        return list(self.local[:ndims])


def linear_mapping(op: Operation, key: str = SCHEDULE_ATTR) -> ClMapping:
    """The ClMapping of `op`'s `#sched.cl_linear` under attribute `key`."""
    sched = schedule_of(op, ClLinearSchedule, key)
    return ClMapping(sched.rows.data, sched.order.data, sched.local)


def cl_kernel(
    kind: str,
    defines: Mapping[str, int],
    global_size: Sequence[int],
    inputs: list[tuple[str, Ref]],
    outputs: list[tuple[str, ActRef]],
    local: Sequence[int] | None = None,
    flops: int = 0,
    **params: Any,
) -> KernelInstance:
    """A kernel launch; `global_size` is rounded up to a multiple of `local`
    (kernels bound-check their indices)."""
    if local is not None:
        if len(local) != len(global_size):
            raise CodegenError(
                f"{kind}: local size {tuple(local)} has {len(local)} dims, the kernel "
                f"{len(global_size)}"
            )
        global_size = [math.ceil(g / loc) * loc for g, loc in zip(global_size, local, strict=True)]
    return KernelInstance(
        kind=kind,
        params={
            **params,
            "defines": {k: int(v) for k, v in defines.items()},
            "global": [int(g) for g in global_size],
            "local": None if local is None else [int(x) for x in local],
        },
        inputs=inputs,
        outputs=outputs,
        flops=flops,
    )


def build_options(kernel: KernelInstance, half: bool, native_half: bool) -> str:
    """The program build options of one kernel: its -D specializations and
    the precision (GRIMC_HALF: half storage; GRIMC_FP16: half arithmetic)."""
    defs = [f"-D{k}={v}" for k, v in kernel.params["defines"].items()]
    defs += ["-DGRIMC_HALF=1"] if half else []
    defs += ["-DGRIMC_FP16=1"] if native_half else []
    return " ".join(defs)
