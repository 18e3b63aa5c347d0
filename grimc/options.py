"""What a compilation needs, validated once: `CompileOptions`, and option parsing.

The CLI, the Python API (`grimc.driver`), the ONNX backend and the benches all
describe a compile with one `CompileOptions`; nothing else re-derives pass
lists or kernel choices from loose arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from grimc.errors import GrimcError
from grimc.limits import check_threads
from grimc.names import sanitize

SPARSE_FORMATS = ("bcr", "csr", "dense")
"""bcr: register-blocked sparse kernels; csr: the CSR baseline; dense: ignore sparsity."""

PRECISIONS = ("fp32", "fp16-storage", "fp16")
"""fp32; half storage with float arithmetic; half storage and half inner
products (cl_khr_fp16). Only the OpenCL target stores or computes in half."""

OPT_LEVELS = ("0", "1", "2", "3", "s")
"""clang -O levels for obj/so/exe builds."""

Shapes = tuple[tuple[str, tuple[int, ...]], ...]


Scalar = bool | int | float


@dataclass(frozen=True)
class InputValue:
    """A compile-time value for a graph input (`--input-value NAME=VALUE`).

    Kept as flat Python scalars and a shape so that options stay hashable and
    comparable; the importer checks them against the input's dtype and shape
    (values of a static input shape may be given flat).
    """

    name: str
    values: tuple[Scalar, ...]
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if math.prod(self.shape) != len(self.values):
            raise GrimcError(
                f"input value {self.name}: {len(self.values)} values for shape {list(self.shape)}"
            )

    def array(self) -> np.ndarray:
        """The values as given (bool, int64 or float64; the importer casts)."""
        return np.array(self.values).reshape(self.shape)


InputValues = tuple[InputValue, ...]


@dataclass(frozen=True)
class CompileOptions:
    """One compilation: target, kernels, pipeline and build settings.

    `target` is stored as its canonical name (`grimc.target`: "native" becomes
    the running CPU's target, a clang triple such as aarch64-linux-gnu becomes
    "aarch64"); None means the target a module (an IR file) records, else native. `passes=None` means the default
    pipeline for (target, threads, sparse_format) (`grimc.driver.default_passes`).
    `input_shapes` may be given as a mapping; it is stored as a tuple of pairs.
    `input_values` specializes control inputs (a sample rate, a flag) at
    compile time: a mapping name -> scalar, sequence or numpy array, stored as
    `InputValue`s; those inputs become constants and leave the model's inputs.
    """

    target: str | None = None
    threads: int = 1
    sparse_format: str = "bcr"
    input_shapes: Shapes = ()
    input_values: InputValues = ()
    passes: tuple[str, ...] | None = None
    opt_level: str = "3"
    prefix: str = "grimc_model"
    profile: bool = False
    """Build with per-kernel timing (-DGRIMC_PROFILE)."""
    precision: str = "fp32"
    """One of PRECISIONS; anything but fp32 needs the opencl target (`check_precision`:
    here when `target` is given, else where the driver learns the target)."""
    tuning_db: str | None = None
    """The tuning database to read measured schedules from (None: grimc.tunedb's default file)."""
    use_tuning_db: bool = True
    """Apply the database's schedules (the default pipeline's schedule-apply-tuned)."""
    device: str | None = None
    """The remote device the model runs on (`grimc.device`: ssh://... or cmd:...): its
    tuning records are the ones applied, and run/bench/tune run there. None: this machine."""

    def __post_init__(self) -> None:
        from grimc.target import resolve_target

        def set_(name: str, value: object) -> None:  # frozen: normalize once, here
            object.__setattr__(self, name, value)

        family = None  # of a target given here; else the driver checks its target
        if self.target is not None:
            target = resolve_target(self.target)
            set_("target", target.name)
            family = target.family
        if isinstance(self.threads, bool) or not isinstance(self.threads, int):
            raise GrimcError(f"threads {self.threads!r}: must be an integer")
        check_threads(self.threads)
        if self.sparse_format not in SPARSE_FORMATS:
            raise GrimcError(
                f"sparse format {self.sparse_format!r}: expected one of {', '.join(SPARSE_FORMATS)}"
            )
        check_precision(self.precision, family)
        if str(self.opt_level) not in OPT_LEVELS:
            raise GrimcError(f"-O{self.opt_level}: expected one of {', '.join(OPT_LEVELS)}")
        set_("opt_level", str(self.opt_level))
        set_("input_shapes", _shape_pairs(self.input_shapes))
        set_("input_values", input_value_tuple(self.input_values))
        if self.passes is not None:
            if isinstance(self.passes, str):
                raise GrimcError(f"passes {self.passes!r}: expected a list of pass specs")
            set_("passes", tuple(self.passes))
        set_("prefix", sanitize(self.prefix, "model"))
        if self.tuning_db is not None:
            set_("tuning_db", str(self.tuning_db))
        if self.device is not None:
            from grimc.device import parse_device

            parse_device(self.device)  # one clear line for a malformed spec, before any work

    @classmethod
    def of(cls, options: CompileOptions | None = None, **fields: Any) -> CompileOptions:
        """`options` (default: all defaults) with `fields` replaced."""
        base = options if options is not None else cls()
        if not isinstance(base, CompileOptions):
            raise TypeError(f"expected CompileOptions, got {type(base).__name__}")
        unknown = set(fields) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"unknown compile option(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(base, **fields) if fields else base

    def replace(self, **fields: Any) -> CompileOptions:
        return CompileOptions.of(self, **fields)

    @property
    def shapes(self) -> dict[str, list[int]] | None:
        """`input_shapes` as the frontend takes them (None: as in the model)."""
        return shape_map(self.input_shapes)

    @property
    def values(self) -> dict[str, np.ndarray] | None:
        """`input_values` as the frontend takes them (None: no input is specialized)."""
        return value_map(self.input_values)

    @property
    def kernel_format(self) -> str:
        """The kernels for BCR-sparse ops (dense compiles have none: "bcr" is moot)."""
        return "csr" if self.sparse_format == "csr" else "bcr"


def check_precision(precision: str, target_family: str | None = None) -> None:
    """`precision` is one of PRECISIONS, and fp32 unless the target family (when
    known) is opencl: only the OpenCL kernels store or compute in half."""
    if precision not in PRECISIONS:
        raise GrimcError(f"--precision {precision}: expected one of {', '.join(PRECISIONS)}")
    if precision != "fp32" and target_family not in (None, "opencl"):
        raise GrimcError(f"--precision {precision}: only --target opencl supports it")


def shape_map(shapes: Mapping[str, Sequence[int]] | Sequence[Any] | None) -> dict[str, list[int]] | None:
    """Input shapes (a mapping or name/dims pairs), validated, as the frontend takes them."""
    return {name: list(dims) for name, dims in _shape_pairs(shapes)} or None


def _shape_pairs(shapes: Mapping[str, Sequence[int]] | Sequence[Any] | None) -> Shapes:
    items = shapes.items() if isinstance(shapes, Mapping) else (shapes or ())
    pairs = []
    for name, dims in items:
        dims = tuple(int(d) for d in dims)
        if not dims or min(dims) < 1:
            raise GrimcError(f"input shape {name}={list(dims)}: dims must be positive")
        pairs.append((str(name), dims))
    return tuple(pairs)


def value_map(values: Mapping[str, Any] | Sequence[Any] | None) -> dict[str, np.ndarray] | None:
    """Input values (a mapping, `InputValue`s or name/value pairs), validated, by name."""
    return {v.name: v.array() for v in input_value_tuple(values)} or None


def input_value_tuple(values: Mapping[str, Any] | Sequence[Any] | None) -> InputValues:
    """Validate input values given as a mapping, `InputValue`s or name/value pairs."""
    if isinstance(values, Mapping):
        items = list(values.items())
    else:
        items = [(v.name, v) if isinstance(v, InputValue) else tuple(v) for v in values or ()]
    result: dict[str, InputValue] = {}
    for name, value in items:
        if str(name) in result:
            raise GrimcError(f"--input-value {name}: given more than once")
        checked = value if isinstance(value, InputValue) else _input_value(str(name), value)
        result[str(name)] = checked
    return tuple(result.values())


def _input_value(name: str, value: Any) -> InputValue:
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        array = np.asarray(None)
    if array.dtype.kind not in "biuf" or array.size == 0:
        raise GrimcError(
            f"input value {name}={value!r}: expected a number, a bool or a non-empty array of them"
        )
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise GrimcError(f"input value {name}: values must be finite")
    return InputValue(name, tuple(array.reshape(-1).tolist()), tuple(array.shape))


INPUT_VALUE_HELP = (
    "fix a control input at compile time, e.g. sr=16000 (a scalar, a comma list "
    "or true/false, in the input's declared dtype); it becomes a constant, is no "
    "longer an input, and an If on it keeps only the chosen branch (repeatable)"
)

IR_HAS_NO_INPUT_VALUES = "--input-value applies to ONNX models; an IR module has no such inputs"


def add_input_value_option(parser: argparse.ArgumentParser) -> None:
    """`--input-value NAME=VALUE` (repeatable), read by `parse_value_options`: the
    one definition grimc's subcommands and grimc-opt share."""
    parser.add_argument(
        "--input-value", action="append", default=[], metavar="NAME=VALUE", help=INPUT_VALUE_HELP
    )


def parse_value_option(text: str) -> InputValue:
    """`sr=16000` -> a scalar; `ids=1,2,3` -> a list (shaped like the input at import)."""
    name, sep, body = text.rpartition("=")  # ONNX names may hold "=", values never do
    values = [_scalar(t.strip()) for t in body.split(",")] if sep and name else []
    if not values or None in values:
        raise GrimcError(
            f"--input-value {text!r}: expected NAME=VALUE or NAME=V0,V1,... with numbers "
            "or true/false, e.g. sr=16000"
        )
    shape = () if len(values) == 1 else (len(values),)
    return InputValue(name, tuple(v for v in values if v is not None), shape)


def _scalar(token: str) -> Scalar | None:
    """An int, a finite float or true/false; None when `token` is none of them."""
    if token.lower() in ("true", "false"):
        return token.lower() == "true"
    for kind in (int, float):
        try:
            value = kind(token)
        except ValueError:
            continue
        return value if kind is int or math.isfinite(value) else None
    return None


def parse_value_options(texts: Sequence[str]) -> InputValues:
    """Repeated --input-value options; a name given twice is an error."""
    return input_value_tuple([parse_value_option(t) for t in texts])


def parse_shape_option(text: str) -> tuple[str, list[int]]:
    """`name=1x3x224x224` -> ("name", [1, 3, 224, 224])."""
    name, sep, dims = text.rpartition("=")
    try:
        shape = [int(d) for d in dims.lower().split("x")]
    except ValueError:
        shape = []
    if not sep or not name or not shape or min(shape) < 1:
        raise GrimcError(
            f"--input-shape {text!r}: expected NAME=D0xD1x... with positive dims, "
            "e.g. input=1x3x224x224"
        )
    return name, shape


def parse_shape_options(texts: Sequence[str]) -> dict[str, list[int]]:
    """Repeated --input-shape values as one mapping."""
    return dict(parse_shape_option(t) for t in texts)


def parse_input_option(text: str) -> tuple[str, Path]:
    """`name=file.npy` -> ("name", Path("file.npy"))."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise GrimcError(f"--input {text!r}: expected NAME=FILE.npy")
    return name, Path(path)
