"""The `sched` dialect: the target a module is compiled for and the schedule of each kernel.

Only attributes, in the spirit of MLIR's DLTI:

- `#sched.target<name = "host-avx512", isa = "avx512", ...>` on the
  builtin.module (key `sched.target`): the `grimc.target.Target` the module is
  compiled for, resolved once from `--target`. Passes and lowerings read it
  from here, so a dumped IR replays with the same target. The name fixes the
  ISA, triple and vector width (what the templates and clang flags follow);
  the cost-model fields (registers, caches, cores) may be edited.
- Kernel schedules (`KnobsAttr` subclasses, e.g. `#sched.gemm<...>`) on ops
  (key `sched`): every knob of one kernel, chosen by the `schedule-select`
  pass and only read by the lowerings. They can be edited by hand and replayed.

Both print as `key = value` records; unknown or repeated keys, missing ones
and out-of-range values are parse or verify errors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import ClassVar, TypeVar

from xdsl.dialects.builtin import IntAttr, ModuleOp, StringAttr
from xdsl.ir import Attribute, Dialect, Operation, ParametrizedAttribute
from xdsl.irdl import irdl_attr_definition, param_def
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

from grimc.dialects.graph import require
from grimc.errors import GrimcError
from grimc.target import TARGETS, Target, TargetError, resolve_target

TARGET_ATTR = "sched.target"
"""Key of the module attribute holding the `#sched.target`."""

SCHEDULE_ATTR = "sched"
"""Key of the op attribute holding the op's kernel schedule."""

PROJECTION_ATTR = "sched.proj"
"""Key of the schedule of a recurrent op's input projection (a nested kernel)."""

PHASE_ATTR = "sched.phase"
"""Key of the schedule of a strided BCR conv's phase split (a kernel before its own)."""

# --------------------------------------------------------------------------
# key = value records (also used by #bcr.encoding and #bcr.schedule)

Record = dict[str, object]
FieldParser = Callable[[AttrParser], object]
AttrT = TypeVar("AttrT", bound=Attribute)
KnobsAttrT = TypeVar("KnobsAttrT", bound="KnobsAttr")


def parse_record(
    parser: AttrParser,
    delimiter: AttrParser.Delimiter,
    flags: Sequence[str],
    fields: dict[str, FieldParser],
) -> Record:
    """Parse `delimited(entry, ...)`, each entry a bare flag or `name = value`.

    Entries may come in any order, at most once each; flags present are True.
    """
    record: Record = {}

    def entry() -> None:
        at = parser.pos
        key = parser.parse_identifier("field name")
        if key in record:
            parser.raise_error(f"field '{key}' given twice", at, parser.pos)
        if key in flags:
            record[key] = True
        elif key in fields:
            parser.parse_punctuation("=")
            record[key] = fields[key](parser)
        else:
            known = ", ".join([*flags, *fields])
            parser.raise_error(f"unknown field '{key}' (expected one of {known})", at, parser.pos)

    parser.parse_comma_separated_list(delimiter, entry)
    return record


def parse_int(parser: AttrParser) -> int:
    return parser.parse_integer(allow_boolean=False)


def parse_word(parser: AttrParser) -> str:
    return parser.parse_identifier("a word")


def build_attr(parser: AttrParser, start: int, make: Callable[[], AttrT]) -> AttrT:
    """Build a parsed attribute, so that a verifier error points at its text."""
    try:
        return make()
    except VerifyException as exc:
        parser.raise_error(str(exc), start, parser.pos)


# --------------------------------------------------------------------------
# the target


@irdl_attr_definition
class TargetAttr(ParametrizedAttribute):
    """The compile target of a module (see `grimc.target.Target`)."""

    name = "sched.target"

    target: StringAttr = param_def(StringAttr)
    isa: StringAttr = param_def(StringAttr)
    triple: StringAttr = param_def(StringAttr)
    vector_width: IntAttr = param_def(IntAttr)
    registers: IntAttr = param_def(IntAttr)
    l1: IntAttr = param_def(IntAttr)
    l2: IntAttr = param_def(IntAttr)
    cores: IntAttr = param_def(IntAttr)

    COUNTS: ClassVar[tuple[str, ...]] = ("vector_width", "registers", "l1", "l2", "cores")
    WORDS: ClassVar[tuple[str, ...]] = ("isa", "triple")

    def __init__(
        self, *, target: str, isa: str, triple: str, vector_width: int, registers: int,
        l1: int, l2: int, cores: int,
    ):  # fmt: skip
        super().__init__(
            StringAttr(target), StringAttr(isa), StringAttr(triple), IntAttr(vector_width),
            IntAttr(registers), IntAttr(l1), IntAttr(l2), IntAttr(cores),
        )  # fmt: skip

    def verify(self) -> None:
        named = TARGETS.get(self.target.data)
        require(
            named is not None,
            f"sched.target: unknown target '{self.target.data}' (expected one of "
            f"{', '.join(TARGETS)})",
        )
        assert named is not None
        for key, want in (
            ("isa", named.isa), ("triple", named.triple), ("vector_width", named.vector_width),
        ):  # fmt: skip
            have = getattr(self, key).data
            require(have == want, f"sched.target: {named.name} has {key} {want!r}, not {have!r}")
        require(self.registers.data >= 4, "sched.target: registers must be >= 4")
        for cache in ("l1", "l2"):
            require(getattr(self, cache).data >= 1024, f"sched.target: {cache} must be >= 1024 bytes")
        require(self.cores.data >= 0, "sched.target: cores must be >= 0")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        start = parser.pos
        fields: dict[str, FieldParser] = {"name": lambda p: p.parse_str_literal("a target name")}
        fields.update(dict.fromkeys(cls.WORDS, lambda p: p.parse_str_literal("a string")))
        fields.update(dict.fromkeys(cls.COUNTS, parse_int))
        record = parse_record(parser, parser.Delimiter.ANGLE, (), fields)
        name = record.pop("name", None)
        if not isinstance(name, str) or name not in TARGETS:
            parser.raise_error(
                f"sched.target: needs name = one of {', '.join(TARGETS)}", start, parser.pos
            )
        base = cls.of(TARGETS[name])  # fields left out keep the named target's values
        values = {key: getattr(base, key).data for key in (*cls.WORDS, *cls.COUNTS)}
        values.update(record)
        return build_attr(parser, start, lambda: cls(target=name, **values)).parameters  # type: ignore[arg-type]

    def print_parameters(self, printer: Printer) -> None:
        words = [f'{key} = "{getattr(self, key).data}"' for key in self.WORDS]
        counts = [f"{key} = {getattr(self, key).data}" for key in self.COUNTS]
        printer.print_string(f'<name = "{self.target.data}", {", ".join([*words, *counts])}>')

    @classmethod
    def of(cls, target: Target) -> TargetAttr:
        """The attribute of a `grimc.target.Target`."""
        return cls(
            target=target.name, isa=target.isa, triple=target.triple,
            vector_width=target.vector_width, registers=target.registers,
            l1=target.l1_bytes, l2=target.l2_bytes, cores=target.cores,
        )  # fmt: skip


def module_target(module: ModuleOp) -> TargetAttr | None:
    """The module's `#sched.target`, or None."""
    attr = module.attributes.get(TARGET_ATTR)
    if attr is not None and not isinstance(attr, TargetAttr):
        raise VerifyException(f"module attribute {TARGET_ATTR} must be a #sched.target")
    return attr


# --------------------------------------------------------------------------
# the module's target


def attach_target(module: ModuleOp, target: str | Target | None = None) -> Target:
    """Resolve `target` and record it on `module` as `#sched.target`; returns it."""
    resolved = resolve_target(target)
    module.attributes[TARGET_ATTR] = TargetAttr.of(resolved)
    return resolved


def target_of(module: ModuleOp) -> Target | None:
    """The Target recorded on `module` (edited cost-model fields kept), or None."""
    attr = module_target(module)
    if attr is None:
        return None
    return replace(
        TARGETS[attr.target.data],
        registers=attr.registers.data,
        l1_bytes=attr.l1.data,
        l2_bytes=attr.l2.data,
        cores=attr.cores.data,
    )


def module_target_or(module: ModuleOp, target: str | Target | None) -> Target:
    """The module's target; `target` (resolved, and attached) when it records none.

    A module recorded for one target cannot be compiled for another: its
    schedules were chosen for the recorded one.
    """
    recorded = target_of(module)
    if recorded is None:
        return attach_target(module, target)
    if target is not None and resolve_target(target).name != recorded.name:
        raise TargetError(
            f"the module was compiled for target {recorded.name}, not {resolve_target(target).name}"
        )
    return recorded


# --------------------------------------------------------------------------
# kernel schedules

Knob = int | str | bool

PARAMETER_TYPES = ("IntAttr", "StringAttr")
"""How a knob's parameter is annotated (integers and flags; words)."""


class KnobsAttr(ParametrizedAttribute):
    """The knobs of one kernel: integers with a minimum, words from a fixed set, flags.

    A subclass declares its parameters (IntAttr for integers and flags, StringAttr
    for words), shared ones in mixins listed before it (their fields come first,
    as xDSL orders them); `FIELDS` is derived from the declarations, in that
    order. `MINIMUM` (default 1), `WORDS` and `FLAGS` say what each accepts.
    Printed as `<a = 1, w = word, flag>`, a flag only when set; parsing needs
    every integer and word, in any order. Field names are those of the kernel's
    template parameters, so a lowering passes `knobs()` straight to its template.
    """

    FIELDS: ClassVar[tuple[str, ...]] = ()
    FLAGS: ClassVar[tuple[str, ...]] = ()
    WORDS: ClassVar[dict[str, tuple[str, ...]]] = {}
    MINIMUM: ClassVar[dict[str, int]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.FIELDS = tuple(
            dict.fromkeys(
                field
                for klass in reversed(cls.__mro__)
                for field, hint in vars(klass).get("__annotations__", {}).items()
                if str(hint) in PARAMETER_TYPES
            )
        )

    def __init__(self, **knobs: Knob):
        unknown = sorted(set(knobs) - set(self.FIELDS))
        missing = [f for f in self.FIELDS if f not in knobs and f not in self.FLAGS]
        if unknown or missing:
            raise VerifyException(
                f"{self.name}: "
                + "; ".join(
                    [*([f"unknown knob(s) {', '.join(unknown)}"] if unknown else []),
                     *([f"missing {', '.join(missing)}"] if missing else [])]
                )
                + f" (knobs: {', '.join(self.FIELDS)})"
            )  # fmt: skip
        super().__init__(
            *(
                StringAttr(str(knobs[f])) if f in self.WORDS else IntAttr(int(knobs.get(f, 0)))
                for f in self.FIELDS
            )
        )

    def knobs(self) -> dict[str, Knob]:
        """Every knob by name: flags as bool, words as str, integers as int."""
        out: dict[str, Knob] = {}
        for f in self.FIELDS:
            value = getattr(self, f).data
            out[f] = bool(value) if f in self.FLAGS else value
        return out

    def replace(self, **changes: Knob) -> KnobsAttr:
        """A copy with some knobs changed (e.g. by a tuner or a test)."""
        return type(self)(**{**self.knobs(), **changes})

    def verify(self) -> None:
        for f in self.FIELDS:
            value = getattr(self, f).data
            if f in self.FLAGS:
                require(value in (0, 1), f"{self.name}: {f} is a flag (0 or 1)")
            elif f in self.WORDS:
                words = self.WORDS[f]
                require(value in words, f"{self.name}: {f} must be one of {', '.join(words)}")
            else:
                low = self.MINIMUM.get(f, 1)
                require(value >= low, f"{self.name}: {f} = {value} must be >= {low}")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        start = parser.pos
        fields: dict[str, FieldParser] = {
            f: parse_word if f in cls.WORDS else parse_int for f in cls.FIELDS if f not in cls.FLAGS
        }
        record = parse_record(parser, parser.Delimiter.ANGLE, cls.FLAGS, fields)
        return build_attr(parser, start, lambda: cls(**record)).parameters  # type: ignore[arg-type]

    def print_parameters(self, printer: Printer) -> None:
        parts = []
        for f, value in self.knobs().items():
            if f in self.FLAGS:
                parts += [f] if value else []
            else:
                parts.append(f"{f} = {value}")
        printer.print_string(f"<{', '.join(parts)}>")


CL_WIDTHS = (1, 2, 4, 8, 16)
"""OpenCL vector widths a work-item's weight loads may have (float3 loads like float4)."""


@dataclass(frozen=True, init=False)  # a dataclass base: `rows` joins equality and hashing
class GroupRows:
    """The first knob of the sparse and OpenCL linear kernels: `rows` output rows per
    register group (a work-item's weight vector on OpenCL), sharing every input load."""

    rows: IntAttr = param_def(IntAttr)


class ClGroupRows(GroupRows):
    """`rows` of an OpenCL kernel: the width of a `float{rows}` weight load."""

    name: ClassVar[str]

    def verify(self) -> None:
        super().verify()  # type: ignore[misc]
        require(
            self.rows.data in CL_WIDTHS,
            f"{self.name}: rows must be one of {', '.join(map(str, CL_WIDTHS))}",
        )


@irdl_attr_definition
class SpmmSchedule(GroupRows, KnobsAttr):
    """`bcr_spmm`, the register-blocked sparse kernel of bcr.conv2d and (many batch rows)
    bcr.matmul: `rows` output rows per register group x `nv` vectors of pixels (batch
    rows) per tile, `unroll` list entries per step, `rle` (each input vector loaded once
    per entry; off: every row reloads it), `pf` entries prefetched ahead (0: off),
    loop `order` (stripe: each group over all tiles; spatial: blocks of `tblock` tiles
    over all groups), `threads` tasks split over register `groups`, pixel `tiles` or
    batch `chunks`. A matmul runs stripe order, tblock 1."""

    name = "sched.spmm"
    nv: IntAttr = param_def(IntAttr)
    unroll: IntAttr = param_def(IntAttr)
    order: StringAttr = param_def(StringAttr)
    tblock: IntAttr = param_def(IntAttr)
    pf: IntAttr = param_def(IntAttr)
    rle: IntAttr = param_def(IntAttr)
    threads: IntAttr = param_def(IntAttr)
    split: StringAttr = param_def(StringAttr)

    FLAGS = ("rle",)
    WORDS = {"order": ("stripe", "spatial"), "split": ("groups", "tiles", "chunks")}
    MINIMUM = {"pf": 0}


@irdl_attr_definition
class GemvSchedule(GroupRows, KnobsAttr):
    """`bcr_gemv` (bcr.matmul with few batch rows): `rows` per register group,
    `nb_tile` batch rows sharing each weight load, `sets` of accumulators (independent
    FMA chains), `gather` inputs gathered per pass (a multiple of the vector width),
    `rle`, and `threads` tasks over the register groups."""

    name = "sched.gemv"
    nb_tile: IntAttr = param_def(IntAttr)
    sets: IntAttr = param_def(IntAttr)
    gather: IntAttr = param_def(IntAttr)
    rle: IntAttr = param_def(IntAttr)
    threads: IntAttr = param_def(IntAttr)

    FLAGS = ("rle",)


@irdl_attr_definition
class CsrSchedule(KnobsAttr):
    """The CSR baseline kernels: `nv` pixel vectors per tile (csr_conv; 1 for
    csr_matmul) and `threads` tasks over the output rows."""

    name = "sched.csr"
    nv: IntAttr = param_def(IntAttr)
    threads: IntAttr = param_def(IntAttr)


@irdl_attr_definition
class GemmSchedule(KnobsAttr):
    """The dense `gemm` kernel (graph.gemm, graph.matmul, an RNN's input projection):
    register tile `mr` rows x `nv` vectors of columns, `ku` independent accumulator sets
    over K, the K chunk `kc`, `mcb` row blocks per L2 block of A, and `ntasks` tasks
    over batches (`b`), column panels (`n`) or row blocks (`m`)."""

    name = "sched.gemm"
    mr: IntAttr = param_def(IntAttr)
    nv: IntAttr = param_def(IntAttr)
    ku: IntAttr = param_def(IntAttr)
    kc: IntAttr = param_def(IntAttr)
    mcb: IntAttr = param_def(IntAttr)
    split: StringAttr = param_def(StringAttr)
    ntasks: IntAttr = param_def(IntAttr)

    WORDS = {"split": ("n", "m", "b")}


@irdl_attr_definition
class ConvSchedule(KnobsAttr):
    """The dense `conv2d` / `conv2d_1x1` kernels: vectorized over pixels (`vec = p`:
    `mr` channels x `nv` pixel vectors) or output channels (`vec = c`: `mr` pixels x
    `nv` channel vectors); `vec = w`: `conv2d_winograd` (3x3, stride 1: F(2x2, 3x3),
    `mr` channels x `nv` vectors of 2x2 tiles, `kc` input channels, `tb` tiles per
    block). Reduction chunk `kc`, `tb` pixels per packed block,
    `order` (`cob`: channel blocks outside pixel tiles; `tile`), prefetch distances
    (`pf` input channels in the pack, `pfa` weight and `pfb` packed rows in the
    micro-kernel; 0: off), `ntasks` tasks over images (`n`), groups (`g`), pixel
    ranges (`p`) or channel blocks (`c`)."""

    name = "sched.conv"
    vec: StringAttr = param_def(StringAttr)
    mr: IntAttr = param_def(IntAttr)
    nv: IntAttr = param_def(IntAttr)
    kc: IntAttr = param_def(IntAttr)
    tb: IntAttr = param_def(IntAttr)
    order: StringAttr = param_def(StringAttr)
    split: StringAttr = param_def(StringAttr)
    ntasks: IntAttr = param_def(IntAttr)
    pf: IntAttr = param_def(IntAttr)
    pfa: IntAttr = param_def(IntAttr)
    pfb: IntAttr = param_def(IntAttr)

    WORDS = {"vec": ("p", "c", "w"), "order": ("cob", "tile"), "split": ("n", "g", "p", "c")}
    MINIMUM = {"pf": 0, "pfa": 0, "pfb": 0}


@irdl_attr_definition
class DepthwiseSchedule(KnobsAttr):
    """The dense `conv2d_depthwise` kernel: `dv` pixel vectors per step (independent
    FMA chains), `ntasks` tasks over (image, channel) planes."""

    name = "sched.depthwise"
    dv: IntAttr = param_def(IntAttr)
    ntasks: IntAttr = param_def(IntAttr)


@irdl_attr_definition
class CellSchedule(KnobsAttr):
    """The dense recurrence (`rnn_cell`): `nvg` vectors per gate per hidden chunk, `bb`
    batch rows per register block, `ntasks` tasks per direction per step."""

    name = "sched.cell"
    nvg: IntAttr = param_def(IntAttr)
    bb: IntAttr = param_def(IntAttr)
    ntasks: IntAttr = param_def(IntAttr)


@irdl_attr_definition
class SparseCellSchedule(KnobsAttr):
    """The sparse recurrence (`bcr_recurrent`): `q` columns per vector (p = vw / q rows
    per register group; 0: the CSR baseline), `bb` batch rows per register block,
    `sets` of accumulators, `ntasks` tasks per direction per step."""

    name = "sched.sparse_cell"
    q: IntAttr = param_def(IntAttr)
    bb: IntAttr = param_def(IntAttr)
    sets: IntAttr = param_def(IntAttr)
    ntasks: IntAttr = param_def(IntAttr)

    MINIMUM = {"q": 0}


@irdl_attr_definition
class SplitSchedule(KnobsAttr):
    """A memory-bound sweep split over threads: the element-wise kernels (`activation`,
    `eltwise`), pooling, the normalizations and a strided BCR conv's phase split (key
    `sched.phase`). `threads` tasks over `over`: `elems` (a flat array cut into chunks
    that start on multiples of `align` floats), or whole `rows` or `planes` per task
    (`align` = 1)."""

    name = "sched.split"
    threads: IntAttr = param_def(IntAttr)
    over: StringAttr = param_def(StringAttr)
    align: IntAttr = param_def(IntAttr)

    WORDS = {"over": ("elems", "rows", "planes")}

    def verify(self) -> None:
        super().verify()
        align = self.align.data
        require(align & (align - 1) == 0, f"{self.name}: align = {align} must be a power of two")
        require(
            self.over.data == "elems" or align == 1,
            f"{self.name}: align applies to over = elems (whole {self.over.data}: align = 1)",
        )


@irdl_attr_definition
class ClLinearSchedule(ClGroupRows, KnobsAttr):
    """The OpenCL `linear` and `conv` kernels (BCR and dense GEMM, GEMV and
    convolution; a recurrent op's input projection). A work-item runs one
    register group of `rows` output rows (its weights are one `float{rows}`
    load per list entry) at one batch row or output pixel. `order` maps work-items
    to the NDRange: `data` (batch rows / pixels vary fastest: coalesced loads
    and stores) or `rows` (register groups fastest). `lx`, `ly`, `lz`: the
    work-group size per NDRange dimension, all 0 to let the driver pick."""

    name = "sched.cl_linear"
    order: StringAttr = param_def(StringAttr)
    lx: IntAttr = param_def(IntAttr)
    ly: IntAttr = param_def(IntAttr)
    lz: IntAttr = param_def(IntAttr)

    WORDS = {"order": ("data", "rows")}
    MINIMUM = {"lx": 0, "ly": 0, "lz": 0}

    def verify(self) -> None:
        super().verify()
        local = (self.lx.data, self.ly.data, self.lz.data)
        require(
            all(v == 0 for v in local) or all(v >= 1 for v in local),
            f"{self.name}: lx, ly, lz are all 0 (the driver picks) or all >= 1",
        )

    @property
    def local(self) -> tuple[int, int, int] | None:
        """The work-group size, or None when the driver picks."""
        local = (self.lx.data, self.ly.data, self.lz.data)
        return None if local == (0, 0, 0) else local


@irdl_attr_definition
class ClCellSchedule(ClGroupRows, KnobsAttr):
    """The OpenCL recurrence (`recurrent`): one work-group of `local` work-items
    per direction steps through time, multiplying h by R in register groups of
    `rows` rows (vector loads of `rows` weights)."""

    name = "sched.cl_cell"
    rows: IntAttr = param_def(IntAttr)
    local: IntAttr = param_def(IntAttr)


    def verify(self) -> None:
        super().verify()
        require(
            self.rows.data in CL_WIDTHS,
            f"{self.name}: rows must be one of {', '.join(map(str, CL_WIDTHS))}",
        )


SCHEDULES: tuple[type[KnobsAttr], ...] = (
    SpmmSchedule,
    GemvSchedule,
    CsrSchedule,
    GemmSchedule,
    ConvSchedule,
    DepthwiseSchedule,
    CellSchedule,
    SparseCellSchedule,
    SplitSchedule,
    ClLinearSchedule,
    ClCellSchedule,
)


def schedule_of(op: Operation, kind: type[KnobsAttrT], key: str = SCHEDULE_ATTR) -> KnobsAttrT:
    """The op's schedule (attribute `key`), which must be a `kind`: what a lowering reads.

    The `schedule-select` pass writes it; a missing or mistyped one (a hand edit
    gone wrong) is one error naming the op.
    """
    attr = op.attributes.get(key)
    if not isinstance(attr, kind):
        have = "none" if attr is None else str(attr)
        raise GrimcError(f"{op.name}: attribute {key} must be a #{kind.name}<...>, got {have}")
    return attr


def split_of(op: Operation, over: str, key: str = SCHEDULE_ATTR) -> SplitSchedule:
    """The op's `#sched.split` (attribute `key`), which must split `over` what the
    op's kernel splits (elems, rows or planes)."""
    split = schedule_of(op, SplitSchedule, key)
    if split.over.data != over:
        raise GrimcError(f"{op.name}: #{split.name} over = {split.over.data}: its kernel splits {over}")
    return split


SCHED = Dialect("sched", [], [TargetAttr, *SCHEDULES])
