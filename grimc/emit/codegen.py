"""IR -> one C translation unit + header + weight blob.

Walks `func.func @main` in order, lowers each op to a `KernelInstance` (see
`grimc.emit.kernel`), assigns every activation an arena buffer with a live
interval, and renders `templates/model.c.j2`. The arena offsets are planned at
model creation by the runtime's greedy-by-size planner (`grimc_arena_plan`),
so the generated code carries only sizes and live intervals.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import jinja2
import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.ir import Operation, SSAValue

from grimc.dialects.graph import (
    DTYPE_ATTR,
    EXACT_INT,
    INDEX_DTYPES,
    NAME_ATTR,
    GatherElementsOp,
    GatherOp,
    WeightOp,
)
from grimc.dialects.sched import module_target_or
from grimc.emit import kernels as kernels_pkg
from grimc.emit.blob import Entry, entry_specs, stream_blob, write_blob
from grimc.emit.branches import Guard, branch_guards
from grimc.emit.kernel import (
    LOWERINGS,
    ActRef,
    Alias,
    BlobRef,
    CodegenError,
    KernelInstance,
    Lowering,
    LoweringContext,
    Ref,
    numel,
    shape,
)
from grimc.layers import layer_of
from grimc.limits import (
    ELEMENT_BYTES,
    MAX_ARENA_BYTES,
    MAX_TENSOR_BYTES,
    check_bytes,
    check_threads,
)
from grimc.names import quote_for_message
from grimc.target import Target
from grimc.weights import store_for

TEMPLATES = Path(str(resources.files("grimc.templates")))
RUNTIME_C = Path(str(resources.files("grimc.runtime_c")))
RUNTIME_FILES = (
    "include/grimc_rt.h",
    "include/grimc_math.h",
    "include/grimc_simd.h",
    "src/arena.c",
    "src/pool.c",
    "src/timing.c",
    "src/blob.c",
)
_LOCAL_INCLUDE = re.compile(r'^\s*#\s*include\s+"grimc_\w+\.h"\s*$', re.MULTILINE)
_STATUS_ENUM = re.compile(r"enum \{\s*GRIMC_OK\b.*?\};", re.DOTALL)
TIMING_FILES = ("include/grimc_rt.h", "src/timing.c")
"""What the exe harness inlines: its clock and median."""


def status_codes() -> str:
    """grimc_rt.h's status enum under a guard, so that the inlined runtime and any
    number of generated headers can share its one definition in one program."""
    match = _STATUS_ENUM.search((RUNTIME_C / "include/grimc_rt.h").read_text())
    if match is None:
        raise CodegenError("runtime_c/include/grimc_rt.h has no GRIMC_OK status enum")
    return f"#ifndef GRIMC_STATUS_CODES\n#define GRIMC_STATUS_CODES\n{match.group(0)}\n#endif"


def runtime_source(files: tuple[str, ...] = RUNTIME_FILES) -> str:
    """runtime_c headers and sources as one text with internal linkage, for a
    self-contained TU that links beside other generated models."""
    parts = ["#define GRIMC_RT_API static"]
    for name in files:
        text = _LOCAL_INCLUDE.sub("", (RUNTIME_C / name).read_text())
        text = _STATUS_ENUM.sub(lambda _: status_codes(), text)
        parts.append(f"/* ---- runtime_c/{name} ---- */\n" + text)
    return "\n".join(parts)


API_NAMES = (
    "create", "run", "destroy", "num_inputs", "num_outputs", "input", "output",
    "arena_bytes", "flops", "tensor_desc", "kernel_desc", "num_kernels", "kernel",
    "profile", "reset_profile", "strerror",
)
"""The `<prefix>_<name>` identifiers of a generated model (type: `<prefix>`)."""

C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto "
    "if inline int long register restrict return short signed sizeof static struct switch "
    "typedef union unsigned void volatile while alignas alignof bool false nullptr "
    "static_assert thread_local true typeof typeof_unqual constexpr main".split()
)
LIBC_NAMES = frozenset(
    "abort abs acos asin atan atan2 atof atoi atol bsearch calloc ceil clock cos cosh div "
    "errno exit exp exp2 expf fabs fclose feof ferror fflush fgetc fgets floor fma fmax "
    "fmin fmod fopen fprintf fputs fread free frexp fscanf fseek ftell fwrite getc getchar "
    "getenv index isnan isinf labs ldexp log log10 log2 logf lround malloc memchr memcmp "
    "memcpy memmove memset modf nan perror pow printf putc putchar puts qsort rand realloc "
    "remove rename rewind round scanf signal sin sinh snprintf sprintf sqrt sqrtf srand "
    "sscanf stderr stdin stdout strcat strchr strcmp strcpy strerror strlen strncmp strncpy "
    "strstr strtod strtol system tan tanh tanhf time tmpfile trunc ungetc pthread sched sem "
    "timer clock_gettime sleep usleep read write open close tm timespec timeval sched_param "
    "itimerspec sigaction stat".split()
)
"""C library names a model TU can see that its runtime and templates may not spell
out; a prefix equal to one (or forming `pthread_create`...) gets renamed."""

_IDENT = re.compile(r"\b[A-Za-z_]\w*\b")
_CALLED = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_NOISE = re.compile(
    r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}|/\*.*?\*/|//[^\n]*|\"(?:\\.|[^\"\\\n])*\"",
    re.DOTALL,
)
_SHARED_NAME = re.compile(r"^(?:grimc_|GRIMC_|gv_|GV_)|_t$|^[A-Z][A-Z0-9_]*$")
_KERNEL_NAME = re.compile(r"^k\d+(?:_|$)")
_HEADER_PARAMS = frozenset({"weights_path", "nthreads"})
"""Parameters that precede a use of the model type in one prototype of model.h.j2."""


@functools.cache
def reserved_identifiers() -> frozenset[str]:
    """Names a generated model or harness TU declares besides its prefix's own.

    model.c.j2 and harness.c.j2 spell only names like these (their locals end
    in `_`, which a sanitized prefix never does); from the runtime and kernel
    templates, whose locals may be any word, the names that reach file scope:
    runtime namespaces, called functions, `*_t` types and macros."""
    own = "".join((TEMPLATES / n).read_text() for n in ("model.c.j2", "harness.c.j2"))
    shared = runtime_source() + "".join(
        f.read_text() for f in sorted(TEMPLATES.rglob("*.j2"))
    )
    shared = _NOISE.sub(" ", shared)
    names = {w for w in _IDENT.findall(shared) if _SHARED_NAME.search(w)}
    names |= set(_CALLED.findall(shared))
    return frozenset(
        set(_IDENT.findall(_NOISE.sub(" ", own))) | names | C_KEYWORDS | LIBC_NAMES
        | _HEADER_PARAMS
    )


def c_prefix(name: str) -> str:
    """`name` (a sanitized identifier) made safe as the prefix of a generated model:
    neither it, `<name>_<api>` nor its header guard may be a name the TU already
    uses, so `_` is appended until none is (`int` -> `int_`, `free` -> `free_`);
    kernel names (`k0_conv2d`) get `model_` in front."""
    reserved = reserved_identifiers()
    prefix = f"model_{name}" if _KERNEL_NAME.match(name) else name  # kernels own k<N>_*
    while (
        prefix in reserved
        or f"{prefix.upper()}_H" in reserved
        or any(f"{prefix}_{api}" in reserved for api in API_NAMES)
    ):
        prefix += "_"
    return prefix


@dataclass
class Buffer:
    """An arena buffer: bytes and the kernel indices where it is live."""

    nbytes: int
    first: int
    last: int




@dataclass
class TensorDesc:
    name: str
    shape: tuple[int, ...]
    ref: Ref
    dtype: str = "float32"
    """What the caller passes: "float32", or an integer type of INDEX_DTYPES."""
    bounds: tuple[int, int] | None = None
    """For an integer or bool input, the half-open range [lo, hi) every value must
    lie in (`<prefix>_run` returns GRIMC_E_RANGE otherwise)."""
    indices: bool = False
    """The input is read as gather indices (its bounds are an axis's)."""

    @property
    def elem_bytes(self) -> int:
        return INDEX_DTYPES.get(self.dtype, ELEMENT_BYTES)


@dataclass
class GeneratedModel:
    """Everything `grimc -o out.c` writes, plus metadata for runners."""

    source: str
    header: str
    harness: str
    blob_arrays: list[Entry]
    """The blob's entries; `write_blob` streams them to a file."""
    prefix: str
    inputs: list[TensorDesc]
    outputs: list[TensorDesc]
    kernels: list[KernelInstance]
    buffers: list[Buffer] = field(default_factory=list)
    target: str = ""
    """The name of the Target the C was generated for (`grimc.target`)."""

    @property
    def flops(self) -> int:
        return sum(k.flops for k in self.kernels)

    @property
    def blob(self) -> bytes:
        """The weight blob in memory (small models; files use `write_blob`)."""
        return write_blob(self.blob_arrays)

    def write_blob(self, path: Path) -> None:
        """Write the weight blob to `path` without building it in memory."""
        with open(path, "wb") as f:
            stream_blob(self.blob_arrays, f)


def _load_lowerings() -> None:
    """Import every module under grimc/emit/kernels so their @lowers run."""
    for info in pkgutil.iter_modules(kernels_pkg.__path__):
        importlib.import_module(f"{kernels_pkg.__name__}.{info.name}")


@functools.cache
def _jinja_env() -> jinja2.Environment:
    """The one template environment of this process: each template compiles once
    (compiling them per model was 0.4 s of every build)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(TEMPLATES), str(RUNTIME_C)]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["cfloat"] = c_float
    env.filters["clfloat"] = c_float  # OpenCL C float literals are C literals
    env.filters["ref"] = ref_expr
    env.filters["prod"] = lambda dims: int(np.prod(dims, dtype=np.int64))
    return env


def c_float(value: float) -> str:
    """A C float literal that round-trips float32 exactly."""
    v = np.float32(value)
    if np.isnan(v) or np.isinf(v):
        raise CodegenError(f"non-finite constant {value} in generated code")
    text = np.format_float_scientific(v, unique=True, trim="-")
    return f"{text}f"


class Generator:
    """Lowers one module for one target; see `generate`."""

    lowerings: ClassVar[Mapping[type[Operation], Lowering]] = LOWERINGS
    """The op -> kernel table (a subclass gives its target family's)."""

    def __init__(
        self,
        module: ModuleOp,
        target: Target,
        threads: int,
        prefix: str,
        sparse_format: str = "bcr",
        release_weights: bool = False,
    ):
        check_threads(threads)
        self.release_weights = release_weights
        self.module = module
        self.target = target
        self.threads = threads
        self.prefix = c_prefix(prefix)
        self.buffers: list[Buffer] = []
        self.kernels: list[KernelInstance] = []
        self.guards: dict[Operation, list[Guard]] = {}
        self.ctx = LoweringContext(
            target=target,
            threads=threads,
            store=store_for(module),
            refs={},
            new_buffer=self._new_buffer,
            new_scratch=self._new_scratch,
            sparse_format=sparse_format,
        )

    def _new_buffer(self, value: SSAValue, what: str = "") -> ActRef:
        owner = value.owner
        what = what or (f"a result of {owner.name}" if isinstance(owner, Operation) else "an input")
        return self._new_scratch(numel(value) * ELEMENT_BYTES, what)

    def _new_scratch(self, nbytes: int, what: str = "a scratch buffer") -> ActRef:
        check_bytes(nbytes, MAX_TENSOR_BYTES, f"{what} (buffer {len(self.buffers)})")
        self.buffers.append(Buffer(nbytes, len(self.kernels), len(self.kernels)))
        return ActRef(len(self.buffers) - 1)

    def _touch(self, ref: Ref) -> None:
        if isinstance(ref, ActRef):
            buf = self.buffers[ref.buffer]
            buf.last = max(buf.last, len(self.kernels))
            buf.first = min(buf.first, len(self.kernels))

    def main_func(self) -> func.FuncOp:
        for op in self.module.ops:
            if isinstance(op, func.FuncOp) and op.sym_name.data == "main":
                return op
        raise CodegenError("module has no func.func @main")

    def run(self) -> GeneratedModel:
        _load_lowerings()
        fn = self.main_func()
        inputs = self._bind_inputs(fn)
        self.guards = branch_guards(fn)
        pending = _weight_uses(fn) if self.release_weights else {}
        for op in fn.body.block.ops:
            if isinstance(op, WeightOp | func.ReturnOp):
                continue
            self._lower(op)
            self._release_consumed(op, pending)
        ret = fn.body.block.last_op
        assert isinstance(ret, func.ReturnOp)
        outputs = self._bind_outputs(fn, list(ret.arguments))
        return self._render(inputs, outputs)

    def _release_consumed(self, op: Operation, pending: dict[str, int]) -> None:
        """Drop weights from the store once every op using them is lowered: their
        packed forms are in the blob now, and VGG-16's weights are 553 MB."""
        for operand in op.operands:
            if pending and isinstance(operand.owner, WeightOp):
                key = operand.owner.key.data
                pending[key] -= 1
                if pending[key] == 0:
                    self.ctx.store.release(key)

    def _bind_inputs(self, fn: func.FuncOp) -> list[TensorDesc]:
        descs = []
        for i, arg in enumerate(fn.args):
            name = _io_name(fn, i, "input")
            ref = self._new_buffer(arg, f"input {quote_for_message(name)}")
            self.ctx.refs[arg] = ref
            dtype = _io_attr(fn, i, "input", DTYPE_ATTR) or "float32"
            if dtype == "float32":
                descs.append(TensorDesc(name, shape(arg), ref))
            elif dtype in INDEX_DTYPES:
                descs.append(TensorDesc(name, shape(arg), ref, dtype, input_bounds(arg, dtype),
                                        any(_indexes(use.operation, arg) for use in arg.uses)))
            else:
                raise CodegenError(f"input {quote_for_message(name)} has unknown dtype {dtype!r}")
        return descs

    def _bind_outputs(self, fn: func.FuncOp, values: list[SSAValue]) -> list[TensorDesc]:
        descs = []
        for i, value in enumerate(values):
            ref = self.ctx.operand(value)
            self._touch(ref)
            descs.append(TensorDesc(_io_name(fn, i, "output"), shape(value), ref))
        return descs

    def _lower(self, op) -> None:
        lowering = self.lowerings.get(type(op))
        if lowering is None:
            raise CodegenError(f"no kernel for {op.name} on target {self.target.name}")
        result = lowering(op, self.ctx)
        if isinstance(result, Alias):
            self.ctx.refs[op.results[0]] = self.ctx.operand(result.source)
            return
        for kernel in result if isinstance(result, list) else [result]:
            self._append(kernel, op)

    def _append(self, kernel: KernelInstance, op: Operation) -> None:
        kernel.fn = f"k{len(self.kernels)}_{kernel.kind}"
        kernel.source_op = op.name
        kernel.label = _weight_label(op)
        kernel.guards = [(self.ctx.operand(g.cond), g.taken) for g in self.guards.get(op, ())]
        for key, sub in kernel.params.items():
            if isinstance(sub, KernelInstance):  # rendered inside this kernel's template
                sub.fn, sub.source_op = f"{kernel.fn}_{key}", op.name
        for _, ref in kernel.inputs + kernel.outputs:
            self._touch(ref)
        self.kernels.append(kernel)

    def _render(self, inputs: list[TensorDesc], outputs: list[TensorDesc]) -> GeneratedModel:
        check_bytes(sum(b.nbytes for b in self.buffers), MAX_ARENA_BYTES, "the activation arena")
        env = _jinja_env()
        kernel_sources, calls = self._render_kernels(env)
        common = self._common(inputs, outputs)
        source = env.get_template("model.c.j2").render(
            kernel_sources=kernel_sources,
            run_parts=run_parts(calls),
            distinct_kernels=[c.kernel for c in calls if c.callee == c.kernel.fn],
            runtime=runtime_source(),
            build=build_commands(self.target.name, self.prefix),
            **common,
        )
        return self._model(env, source, common)

    def _model(
        self, env: jinja2.Environment, source: str, common: dict[str, Any]
    ) -> GeneratedModel:
        """The GeneratedModel of a rendered model source: the header and harness
        (the same API on every target) rendered from `common` (`_common`)."""
        inputs, outputs = common["inputs"], common["outputs"]
        return GeneratedModel(
            source=source,
            header=env.get_template("model.h.j2").render(**common),
            harness=env.get_template("harness.c.j2").render(
                timing=runtime_source(TIMING_FILES), **common
            ),
            blob_arrays=self.ctx.blobs,
            prefix=self.prefix,
            inputs=inputs,
            outputs=outputs,
            kernels=self.kernels,
            buffers=self.buffers,
            target=self.target.name,
        )

    def _common(self, inputs: list[TensorDesc], outputs: list[TensorDesc]) -> dict[str, Any]:
        """What the model, header and harness templates of every target read."""
        return dict(
            prefix=self.prefix,
            t=self.target,
            typed=any(d.dtype != "float32" for d in inputs),
            inputs=inputs,
            outputs=outputs,
            kernels=self.kernels,
            buffers=self.buffers,
            blob_count=len(self.ctx.blobs),
            blob_specs=entry_specs(self.ctx.blobs),
            blob_names=self.ctx.blob_names,
            threads=self.threads,
            status_codes=status_codes(),
        )

    def _render_kernels(self, env: jinja2.Environment) -> tuple[list[str], list[Call]]:
        """Each distinct kernel once, and what every kernel call invokes.

        Kernels whose code differs only in their name (a repeated block, a long
        chain of one activation) share the first one's function: clang then
        compiles each distinct kernel once, however often the model repeats it.
        """
        sources: list[str] = []
        first: dict[str, str] = {}
        calls: list[Call] = []
        for k in self.kernels:
            text = self._render_kernel(env, k)
            callee = first.setdefault(text.replace(k.fn, "\0"), k.fn)
            if callee == k.fn:
                sources.append(text)
            calls.append(Call(k, callee))
        return sources, calls

    def _render_kernel(self, env: jinja2.Environment, k: KernelInstance) -> str:
        names = [f"{family}/{k.kind}.c.j2" for family in self.target.families]
        template = env.select_template(names)
        return template.render(k=k, t=self.target, p=k.params)


@dataclass(frozen=True)
class Call:
    """One kernel call of `<prefix>_run`: the kernel and the C function it runs."""

    kernel: KernelInstance
    callee: str


KERNELS_PER_PART = 256
"""Kernel calls per C function of `<prefix>_run` (see `run_parts`)."""


def run_parts(calls: list[Call]) -> list[list[tuple[int, Call]]]:
    """The kernel calls, numbered, cut into parts of at most KERNELS_PER_PART.

    clang inlines each single-use kernel into its caller; with one caller for
    ten thousand kernels its optimization time grows much faster than the code.
    A model with more kernels than one part runs them from several non-inlined
    functions, so build time stays linear in the model size.
    """
    numbered = list(enumerate(calls))
    return [numbered[i : i + KERNELS_PER_PART] for i in range(0, len(numbered), KERNELS_PER_PART)]


def _weight_uses(fn: func.FuncOp) -> dict[str, int]:
    """Per weight key, how many operands use it (the return counts, so a weight
    that is a model output is never released)."""
    uses: dict[str, int] = {}
    for op in fn.body.block.ops:
        if isinstance(op, WeightOp):
            uses[op.key.data] = uses.get(op.key.data, 0) + sum(1 for _ in op.result.uses)
    return uses


@dataclass(frozen=True)
class BuildCommands:
    """How a user builds generated C by hand, with the flags grimc's own builds use
    (grimc.toolchain): `cflags` of the target, `compile` for <prefix>.c, `link`
    for a program main.c beside it."""

    cflags: str
    compile: str
    link: str


def build_commands(target: str, prefix: str) -> BuildCommands:
    from grimc import toolchain

    spec = toolchain.resolve_target(target)
    try:
        cc = toolchain.find_clang().name
    except toolchain.ToolchainError:  # emitting C needs no compiler; name the usual one
        cc = toolchain.CLANG_NAMES[0]
    flags = toolchain.compile_flags(spec)
    link = [cc, *flags, "main.c", f"{prefix}.o", "-o", "main", *toolchain.link_flags(spec)]
    return BuildCommands(
        cflags=shlex.join(spec.cflags) or "no -march or --target flag",
        compile=shlex.join([cc, *flags, "-c", f"{prefix}.c"]),
        link=shlex.join(link),
    )


def _weight_label(op: Operation) -> str:
    """The op's layer (`grimc.layers.layer_of`), else the key of its (first) weight;
    "" if it has neither.

    Both are sanitized identifiers (keys are verified on graph.weight and bcr
    ops), so they are safe inside C string literals."""
    if layer := layer_of(op):
        return layer
    for prop in ("weights", "w_weights"):  # bcr.conv2d / bcr.matmul, bcr recurrent ops
        key = op.properties.get(prop)
        if isinstance(key, StringAttr):
            return key.data
    for operand in op.operands:
        if isinstance(operand.owner, WeightOp):
            return operand.owner.key.data
    return ""


def _io_attr(fn: func.FuncOp, index: int, kind: str, key: str) -> str | None:
    attrs = fn.arg_attrs if kind == "input" else fn.res_attrs
    if attrs is not None:
        entry = attrs.data[index].data.get(key)
        if isinstance(entry, StringAttr):
            return entry.data
    return None


def _io_name(fn: func.FuncOp, index: int, kind: str) -> str:
    return _io_attr(fn, index, kind, NAME_ATTR) or f"{kind}{index}"


def _indexes(op: Operation, arg: SSAValue) -> bool:
    return isinstance(op, GatherOp | GatherElementsOp) and op.indices is arg


def input_bounds(arg: SSAValue, dtype: str) -> tuple[int, int]:
    """[lo, hi) of a non-float input: a bool's 0 and 1; an integer's values exact in
    float32 and, where they index `graph.gather`s (or gather_elements) on axes of n
    elements, valid there: [-n, n). (What else may read them, the frontend decides.)"""
    if dtype == "bool":
        return 0, 2
    lo, hi = -EXACT_INT, EXACT_INT
    for use in arg.uses:
        op = use.operation
        if _indexes(op, arg):
            assert isinstance(op, GatherOp | GatherElementsOp)
            n = shape(op.x)[op.axis.value.data]
            lo, hi = max(lo, -n), min(hi, n)
    return lo, hi


def generate(
    module: ModuleOp,
    target: str | Target | None = None,
    threads: int = 1,
    prefix: str = "grimc_model",
    sparse_format: str = "bcr",
    release_weights: bool = False,
) -> GeneratedModel:
    """Lower a (graph- or bcr-dialect) module to C for its `#sched.target`.

    `target` (a name or Target) is attached to a module that records none
    (None: the default, native); one that records another target is an error.
    Every scheduled op must carry its schedule (the schedule-select pass, which
    `grimc.driver.generate_model` runs for ops a pipeline left unscheduled).

    `sparse_format` picks the kernels of BCR-sparse ops: "bcr" (register-blocked)
    or "csr" (the baseline); see `LoweringContext.sparse_format`.
    `release_weights` empties the module's weight store as weights are packed
    into the blob (for callers that generate once and drop the module), so
    the store and the blob are not both in memory.
    """
    resolved = module_target_or(module, target)
    return Generator(module, resolved, threads, prefix, sparse_format, release_weights).run()


def ref_expr(ref: Ref) -> str:
    """The C expression of a kernel pointer argument inside model.c."""
    if isinstance(ref, BlobRef):
        if ref.ctype != "float":
            return f"(const {ref.ctype} *)m_->w[{ref.index}]"
        return f"m_->w[{ref.index}]"
    return f"m_->buf[{ref.buffer}]"
