"""The contract between the code generator and per-op kernel lowerings.

A *lowering* turns one IR op into a `KernelInstance`: the name of a Jinja
template, the plain-Python parameters the template needs (shapes, attributes,
schedule), and the kernel's pointer arguments in order. Lowerings live in
`grimc/emit/kernels/<family>.py` and register themselves with `@lowers(OpClass)`.
They may preprocess constant weights (transpose, pack into panels, BCR-pack)
at compile time and put the result in the weight blob with `ctx.blob(...)`.

Templates live in `templates/<family>/<kind>.c.j2` and render exactly one C
function named `k.fn` whose signature comes from the `signature(k)` macro in
`templates/common/macros.j2`:

    static void k7(const float *restrict x, const float *restrict w,
                   float *restrict y, grimc_pool *pool)

(inputs first, then outputs, names from `KernelInstance.inputs/outputs`; an
absent optional input is left out, and `k.has("b")` tells the template).
Target variants (`avx/`, `neon/`) `{% extends "c/<kind>.c.j2" %}` and override
blocks; the generic C version is the fallback for every target.

Temporary memory comes from the arena: `ctx.scratch(nbytes)` gives a buffer
live only during this op's kernels, passed like an output (a lowering that
returns several kernels passes it from one to the next). A kernel may embed
another `KernelInstance` as a value of its params (e.g. the input-projection
GEMM of an RNN); the code generator names it `<fn>_<key>` and the template
renders it with `{% include %}` and calls it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from xdsl.ir import Operation, SSAValue

from grimc.dialects.graph import ActivationAttr, WeightOp
from grimc.emit.blob import Deferred, Entry
from grimc.errors import GrimcError


@dataclass(frozen=True)
class ActRef:
    """An activation buffer (arena slot, graph input or alias of either)."""

    buffer: int
    ctype: ClassVar[str] = "float"


@dataclass(frozen=True)
class BlobRef:
    """A constant tensor in the weight blob; `ctype` is its C element type."""

    index: int
    ctype: str = "float"


Ref = ActRef | BlobRef


@dataclass
class KernelInstance:
    """One kernel call: template + parameters + pointer arguments."""

    kind: str
    params: dict[str, Any]
    inputs: list[tuple[str, Ref]]
    outputs: list[tuple[str, ActRef]]
    flops: int = 0
    fn: str = ""
    source_op: str = ""
    label: str = ""
    """The op's weight key (a sanitized identifier) or "": names the layer in profiles."""
    guards: list[tuple[Ref, bool]] = field(default_factory=list)
    """Run only if each one-element tensor is non-zero (True) or zero (False):
    the kernel belongs to one branch of a run-time If (`grimc.emit.branches`)."""

    def has(self, name: str) -> bool:
        return any(n == name for n, _ in self.inputs)

    @property
    def arg_names(self) -> list[str]:
        return [n for n, _ in self.inputs] + [n for n, _ in self.outputs]


@dataclass(frozen=True)
class Alias:
    """The op's result is its operand reinterpreted (reshape, flatten): no code."""

    source: SSAValue


BLOB_CTYPES: dict[Any, str] = {np.float32: "float", np.int32: "int32_t"}
"""Element types a blob may hold, and their C names in kernel signatures."""


class CodegenError(GrimcError):
    """The IR holds something the code generator cannot emit."""


@dataclass
class LoweringContext:
    """What a lowering may ask of the code generator."""

    target: Any  # grimc.target.Target
    threads: int
    store: Any  # grimc.weights.WeightStore
    refs: dict[SSAValue, Ref]
    new_buffer: Callable[[SSAValue], ActRef]
    sparse_format: str = "bcr"
    """Kernels for sparse weights: "bcr" (register-blocked) or "csr" (baseline)."""
    new_scratch: Callable[[int], ActRef] | None = None
    blobs: list[Entry] = field(default_factory=list)
    blob_names: list[str] = field(default_factory=list)
    _blob_by_key: dict[str, BlobRef] = field(default_factory=dict)

    def const(self, value: SSAValue | None) -> np.ndarray | None:
        """The array behind `value` if it is a weight, else None."""
        if value is None or not isinstance(value.owner, WeightOp):
            return None
        return np.asarray(self.store[value.owner.key.data], dtype=np.float32)

    def blob(self, array: np.ndarray | Deferred, hint: str, dtype: Any = np.float32) -> BlobRef:
        """Put a compile-time array in the weight blob (C order).

        `dtype` is np.float32 (weights) or np.int32 (indices, offsets); an
        int32 blob reaches the kernel as a `const int32_t *` argument. A
        `Deferred` entry (float32) is computed only when the blob is written.
        """
        kind = np.dtype(dtype).type
        if kind not in BLOB_CTYPES or (isinstance(array, Deferred) and kind != Deferred.dtype):
            raise CodegenError(f"blob '{hint}': unsupported dtype {np.dtype(dtype).name}")
        entry = array if isinstance(array, Deferred) else np.ascontiguousarray(array, dtype=kind)
        self.blobs.append(entry)
        self.blob_names.append(hint)
        return BlobRef(len(self.blobs) - 1, BLOB_CTYPES[kind])

    def operand(self, value: SSAValue) -> Ref:
        """A pointer to `value`: its activation buffer or its weight in the blob."""
        if value in self.refs:
            return self.refs[value]
        if isinstance(value.owner, WeightOp):
            key = value.owner.key.data
            if key not in self._blob_by_key:
                self._blob_by_key[key] = self.blob(self.store[key], key)
            return self._blob_by_key[key]
        raise CodegenError(f"value {value.name_hint or '?'} has no buffer")

    def result(self, value: SSAValue) -> ActRef:
        """A fresh arena buffer for an op result."""
        ref = self.new_buffer(value)
        self.refs[value] = ref
        return ref

    def scratch(self, nbytes: int) -> ActRef:
        """A private arena buffer live only during this kernel (pass it as an output)."""
        if self.new_scratch is None:
            raise CodegenError("this code generator gives kernels no scratch memory")
        return self.new_scratch(nbytes)


Lowering = Callable[[Operation, LoweringContext], "KernelInstance | list[KernelInstance] | Alias"]
"""A lowering returns one kernel, a list run in order (e.g. an input re-layout
then the kernel reading it, sharing a scratch buffer), or an alias."""
LOWERINGS: dict[type[Operation], Lowering] = {}


def register_lowering(
    table: dict[type[Operation], Lowering], op_types: tuple[type[Operation], ...]
) -> Callable[[Lowering], Lowering]:
    """A decorator entering a lowering into `table` (one per target family) for `op_types`."""

    def register(fn: Lowering) -> Lowering:
        for op_type in op_types:
            table[op_type] = fn
        return fn

    return register


def lowers(*op_types: type[Operation]) -> Callable[[Lowering], Lowering]:
    """Register a lowering for one or more op classes."""
    return register_lowering(LOWERINGS, op_types)


def act_params(act: ActivationAttr | None) -> dict[str, Any] | None:
    """A fused activation as plain data for templates (`k.params.act`)."""
    if act is None:
        return None
    return {"kind": act.kind.data, "params": list(act.values)}


def shape(value: SSAValue) -> tuple[int, ...]:
    return tuple(value.type.get_shape())  # type: ignore[attr-defined]


def numel(value: SSAValue) -> int:
    return int(np.prod(shape(value), dtype=np.int64))
