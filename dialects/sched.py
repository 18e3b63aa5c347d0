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
from typing import ClassVar, TypeVar

from xdsl.dialects.builtin import IntAttr, ModuleOp, StringAttr
from xdsl.ir import Attribute, Dialect, ParametrizedAttribute
from xdsl.irdl import irdl_attr_definition, param_def
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

from grimc.dialects.graph import require

TARGET_ATTR = "sched.target"
"""Key of the module attribute holding the `#sched.target`."""

SCHEDULE_ATTR = "sched"
"""Key of the op attribute holding the op's kernel schedule."""

# --------------------------------------------------------------------------
# key = value records (also used by #bcr.encoding and #bcr.schedule)

Record = dict[str, object]
FieldParser = Callable[[AttrParser], object]
AttrT = TypeVar("AttrT", bound=Attribute)


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
        from grimc.target import TARGETS

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
        from grimc.target import TARGETS

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
    def of(cls, target: object) -> TargetAttr:
        """The attribute of a `grimc.target.Target`."""
        from grimc.target import Target

        assert isinstance(target, Target)
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


SCHED = Dialect("sched", [], [TargetAttr])
