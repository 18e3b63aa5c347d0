"""`grimc-opt`: an xdsl-opt with grimc's dialects and passes, that also reads ONNX.

    grimc-opt model.onnx -p graph-bn-fold,graph-dce
    grimc-opt dump.mlir --weights dump.npz -p graph-constant-fold

It is stock `xDSLOptMain` (all xdsl flags work) plus an `.onnx` frontend,
`--input-shape` for it, and `--weights` to attach a weight store to parsed IR.
Weights that passes add are saved beside `-o FILE` as FILE.npz (on stdout a
warning says when the printed IR names weights no file holds).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.parser import Parser
from xdsl.utils.exceptions import DiagnosticException, ParseError, VerifyException
from xdsl.xdsl_opt_main import xDSLOptMain

from grimc import __version__
from grimc.dialects.graph import WEIGHT_STORE_ATTR
from grimc.errors import GrimcError, run_guarded
from grimc.options import parse_shape_options
from grimc.universe import make_context
from grimc.weights import persist


class IRError(GrimcError):
    """The input IR does not parse or verify (the diagnostic may span lines)."""


def parse_mlir_file(path: Path) -> ModuleOp:
    """Parse and verify a grimc IR file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise GrimcError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        module = Parser(make_context(), text, str(path)).parse_module()
        module.verify()
    except (ParseError, VerifyException, DiagnosticException) as exc:
        raise IRError(f"{path}: {exc}") from None
    return module


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

    def register_all_frontends(self) -> None:
        super().register_all_frontends()
        self.available_frontends["onnx"] = self._parse_onnx

    def _parse_onnx(self, io: IO[bytes]) -> ModuleOp:
        from grimc.frontend import import_onnx

        shapes = parse_shape_options(self.args.input_shape)
        return import_onnx(io.read(), input_shapes=shapes or None, name=self.get_input_name())

    def parse_chunk(
        self, chunk: IO[bytes], file_extension: str, start_offset: int = 0
    ) -> ModuleOp | None:
        if file_extension not in self.available_frontends:
            known = ", ".join(f".{e}" for e in sorted(self.available_frontends))
            raise GrimcError(f"{self.get_input_name()}: unknown input kind; expected {known}")
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
