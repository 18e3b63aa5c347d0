"""`grimc-opt`: an xdsl-opt with grimc's dialects and passes, that also reads ONNX.

    grimc-opt model.onnx -p graph-bn-fold,graph-dce
    grimc-opt dump.mlir --weights dump.npz -p graph-constant-fold

It is stock `xDSLOptMain` (all xdsl flags work) plus an `.onnx` frontend,
`--input-shape` and `--input-value` for it (as grimc reads them), and
`--weights` to attach a weight store to parsed IR.
Weights that passes add are saved beside `-o FILE` as FILE.npz (on stdout a
warning says when the printed IR names weights no file holds).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import numpy as np
from xdsl.dialects.builtin import ModuleOp, StringAttr, TensorType, f32
from xdsl.parser import Parser
from xdsl.utils.exceptions import DiagnosticException, ParseError, VerifyException
from xdsl.xdsl_opt_main import xDSLOptMain

from grimc import __version__
from grimc.dialects.graph import WEIGHT_STORE_ATTR, WeightOp
from grimc.errors import GrimcError, run_guarded
from grimc.limits import shape_problem
from grimc.names import quote_for_message
from grimc.options import (
    IR_HAS_NO_INPUT_VALUES,
    add_input_value_option,
    parse_shape_options,
    parse_value_options,
    value_map,
)
from grimc.universe import make_context
from grimc.weights import all_finite, persist, store_for


class IRError(GrimcError):
    """The input IR does not parse or verify, or holds tensors grimc cannot compile."""


def parse_mlir_file(path: Path) -> ModuleOp:
    """Parse and verify a grimc IR file; every error is one line."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise GrimcError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise IRError(f"{path}: not a text file (not UTF-8)") from None
    try:
        module = Parser(make_context(), text, str(path)).parse_module()
        module.verify()
    except (ParseError, VerifyException, DiagnosticException) as exc:
        raise IRError(f"{path}: {_one_line(str(exc), str(path))}") from None
    _check_tensors(module, path)
    _check_weights(module, path)
    return module


def _one_line(diagnostic: str, name: str) -> str:
    """One line from an xDSL diagnostic.

    A located one reads `file:line:col`, the source line, a caret line, the
    message: keep `line:col: message`. Others keep their first line (a verifier
    may append the whole module).
    """
    lines = [line.strip() for line in diagnostic.splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith(name):
        return f"{lines[0].removeprefix(name).lstrip(':')}: {lines[-1]}"
    return lines[0] if lines else "invalid IR"


def _check_weights(module: ModuleOp, path: Path) -> None:
    """Every graph.weight in the store must be a finite float32 array of its type
    (an .npz given beside the IR is not written by grimc's importer). A missing
    one is left to the pass or kernel that reads it, which names it: a dump
    replayed up to that point still gets its dump folder."""
    weights = [op for op in module.walk() if isinstance(op, WeightOp)]
    if not weights:
        return
    store = store_for(module)
    for op in weights:
        key = op.key.data
        if key not in store:
            continue
        array = store[key]
        what = f"{path}: weight {quote_for_message(key)}"
        if array.dtype != np.float32:
            raise IRError(f"{what} has dtype {array.dtype}; the IR needs float32")
        if array.shape != tuple(op.result.type.get_shape()):
            raise IRError(
                f"{what} has shape {list(array.shape)}; the IR declares "
                f"{list(op.result.type.get_shape())}"
            )
        if not all_finite(array):
            raise IRError(f"{what} has non-finite values (NaN or Inf)")


def _check_tensors(module: ModuleOp, path: Path) -> None:
    """Values must be static float32 tensors within `grimc.limits` (IR files skip
    the importer, which guarantees this for ONNX models)."""
    for op in module.walk():
        values = [*op.results, *(a for r in op.regions for b in r.blocks for a in b.args)]
        for value in values:
            kind = value.type
            if not isinstance(kind, TensorType):
                continue
            what = f"{path}: {op.name} has a {kind}"
            if kind.element_type != f32:
                raise IRError(f"{what}; grimc computes in float32 only")
            shape = kind.get_shape()
            if any(d < 0 for d in shape):
                raise IRError(f"{what}; grimc needs static shapes")
            problem = shape_problem(shape)
            if problem is not None:
                raise IRError(f"{what}: {problem}")


class GrimcOptMain(xDSLOptMain):
    version_format = f"grimc-opt {__version__} (xdsl {{xdsl_version}})"

    def register_all_arguments(self, arg_parser: argparse.ArgumentParser) -> None:
        super().register_all_arguments(arg_parser)
        arg_parser.add_argument(
            "--weights",
            type=Path,
            metavar="FILE.npz",
            help="weight store for the input IR (overrides its graph.weight_store attribute)",
        )
        arg_parser.add_argument(
            "--input-shape",
            action="append",
            default=[],
            metavar="NAME=SHAPE",
            help="fix a dynamic ONNX input shape, e.g. input=1x3x224x224",
        )
        add_input_value_option(arg_parser)

    def register_all_frontends(self) -> None:
        super().register_all_frontends()
        self.available_frontends["onnx"] = self._parse_onnx

    def _parse_onnx(self, io: IO[bytes]) -> ModuleOp:
        from grimc.frontend import import_onnx

        shapes = parse_shape_options(self.args.input_shape)
        values = value_map(parse_value_options(self.args.input_value))
        return import_onnx(
            io.read(), input_shapes=shapes or None, input_values=values, name=self.get_input_name()
        )

    def parse_chunk(
        self, chunk: IO[bytes], file_extension: str, start_offset: int = 0
    ) -> ModuleOp | None:
        if file_extension not in self.available_frontends:
            known = ", ".join(f".{e}" for e in sorted(self.available_frontends))
            raise GrimcError(f"{self.get_input_name()}: unknown input kind; expected {known}")
        if file_extension != "onnx" and self.args.input_value:
            raise GrimcError(IR_HAS_NO_INPUT_VALUES)
        module = super().parse_chunk(chunk, file_extension, start_offset)
        if module is not None and self.args.weights is not None:
            if not self.args.weights.is_file():
                raise GrimcError(f"{self.args.weights}: weight store not found")
            module.attributes[WEIGHT_STORE_ATTR] = StringAttr(str(self.args.weights))
        return module


    def output_resulting_program(self, prog: ModuleOp) -> str:
        # Weights that passes added must reach whoever reads this output.
        out = self.args.output_file
        warning = persist(prog, Path(out + ".npz") if out else None)
        if warning:
            print(f"grimc-opt: warning: {warning}", file=sys.stderr)
        return super().output_resulting_program(prog)


def _run(argv: Sequence[str]) -> int:
    try:
        GrimcOptMain(description="grimc modular optimizer driver", args=argv).run()
    except FileNotFoundError as exc:
        raise GrimcError(f"{exc.filename}: no such file") from None
    except (ParseError, VerifyException, DiagnosticException) as exc:
        raise IRError(str(exc).rstrip()) from None
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_guarded(_run, list(sys.argv[1:] if argv is None else argv), "grimc-opt")


if __name__ == "__main__":
    sys.exit(main())
