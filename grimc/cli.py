"""`grimc`: compile an ONNX model; inspect the IR on the way.

    grimc model.onnx --emit=ir                 print the optimized IR
    grimc model.onnx --print-ir-after-all      dump IR after every pass (stderr)
    grimc <subcommand> ...                     see `grimc --help`

Every user error is one line on stderr and exit code 2; no output file is left
behind. Set GRIMC_DEBUG=1 to get Python tracebacks for internal errors.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from grimc import __version__
from grimc.errors import GrimcError

EMIT_KINDS = ("ir",)


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


def add_frontend_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="ONNX model file (.onnx) or grimc IR (.mlir)")
    parser.add_argument(
        "--input-shape",
        action="append",
        default=[],
        metavar="NAME=SHAPE",
        help="fix a dynamic or symbolic input shape, e.g. input=1x3x224x224 (repeatable)",
    )


def add_ir_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("IR inspection (MLIR flag names; dumps go to stderr)")
    group.add_argument(
        "--print-ir-after-all", action="store_true", help="print the IR after every pass"
    )
    group.add_argument(
        "--print-ir-before-all", action="store_true", help="print the IR before every pass"
    )
    group.add_argument(
        "--print-ir-before",
        action="append",
        default=[],
        metavar="PASS",
        help="print the IR before PASS (repeatable, or comma-separated)",
    )
    group.add_argument(
        "--print-ir-after",
        action="append",
        default=[],
        metavar="PASS",
        help="print the IR after PASS (repeatable, or comma-separated)",
    )
    group.add_argument(
        "--ir-dump-dir",
        type=Path,
        metavar="DIR",
        help="write the IR before the pipeline and after each pass to DIR/NN_*.mlir, "
        "with the weight store as DIR/weights.npz so dumps can be replayed with grimc-opt",
    )
    group.add_argument(
        "--print-op-generic", action="store_true", help="print IR in MLIR's generic op form"
    )
    group.add_argument(
        "--time-passes", action="store_true", help="report the wall time of each pass (stderr)"
    )
    group.add_argument(
        "--passes",
        metavar="P1,P2",
        help="run exactly these passes instead of the default pipeline "
        "(see `grimc passes` for the list)",
    )


def build_compile_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grimc",
        description="Compile an ONNX model with BCR (block-based column-row) sparse "
        "weights into fast C, NEON, AVX or OpenCL code.",
        epilog="Subcommands: " + ", ".join(sorted(SUBCOMMANDS)) + " (grimc SUBCOMMAND --help).",
    )
    parser.add_argument("--version", action="version", version=f"grimc {__version__}")
    add_frontend_options(parser)
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        help="output file (default: stdout for --emit=ir); for --emit=ir the weight store "
        "is written beside it as <output>.npz",
    )
    parser.add_argument(
        "--emit",
        choices=EMIT_KINDS,
        default="ir",
        help="what to produce: ir = the optimized xDSL IR (default: %(default)s)",
    )
    add_ir_options(parser)
    return parser


def instrumentation_from_args(args: argparse.Namespace):
    from grimc.pipeline import Instrumentation, parse_pass_list

    def names(values: Sequence[str]) -> frozenset[str]:
        return frozenset(n for v in values for n in parse_pass_list(v))

    return Instrumentation(
        print_before=names(args.print_ir_before),
        print_after=names(args.print_ir_after),
        print_after_all=args.print_ir_after_all,
        print_before_all=args.print_ir_before_all,
        dump_dir=args.ir_dump_dir,
        generic=args.print_op_generic,
        time_passes=args.time_passes,
    )


def load_module(path: str, shape_options: Sequence[str]):
    """Import an ONNX file (or parse a .mlir file) into a graph-dialect module."""
    from grimc.frontend import import_onnx

    shapes = dict(parse_shape_option(s) for s in shape_options)
    if path.endswith(".mlir"):
        from grimc.opt import parse_mlir_file

        return parse_mlir_file(Path(path))
    return import_onnx(path, input_shapes=shapes or None)


def write_atomically(path: Path, data: str | bytes) -> None:
    """Write via a temp file in the same directory, so failures leave nothing."""
    path = Path(path)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent or Path("."), prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, mode) as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def compile_main(argv: Sequence[str]) -> int:
    from grimc.pipeline import GRAPH_PIPELINE, PipelineRunner, parse_pass_list, render_ir

    args = build_compile_parser().parse_args(argv)
    if args.output is not None and not args.output.parent.exists():
        raise GrimcError(f"{args.output}: output directory does not exist")
    module = load_module(args.model, args.input_shape)
    passes = parse_pass_list(args.passes) if args.passes is not None else list(GRAPH_PIPELINE)
    PipelineRunner(instrumentation_from_args(args)).run(module, passes)
    if args.output is None:
        sys.stdout.write(render_ir(module, args.print_op_generic))
        return 0
    from grimc.weights import save_beside

    weights_path = args.output.with_name(args.output.name + ".npz")
    save_beside(module, weights_path)
    write_atomically(args.output, render_ir(module, args.print_op_generic))
    return 0


def passes_main(argv: Sequence[str]) -> int:
    """List the registered passes, one per line with its first docstring line."""
    from grimc.universe import PASSES

    argparse.ArgumentParser(prog="grimc passes", description=passes_main.__doc__).parse_args(argv)
    for name, loader in PASSES.items():
        doc = (loader().__doc__ or "").strip().splitlines()
        print(f"{name:28s} {doc[0] if doc else ''}")
    return 0


SUBCOMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "passes": passes_main,
}


def dispatch(argv: Sequence[str]) -> int:
    if argv and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]](argv[1:])
    return compile_main(argv)


def run_guarded(func: Callable[[Sequence[str]], int], argv: Sequence[str], prog: str) -> int:
    """Map errors to one line on stderr and an exit code; no tracebacks for users."""
    try:
        return func(argv)
    except GrimcError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug in grimc: say so, in one line unless debugging
        if os.environ.get("GRIMC_DEBUG"):
            traceback.print_exc()
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(
            f"{prog}: internal error: {type(exc).__name__}: {detail} "
            "(this is a grimc bug; rerun with GRIMC_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return 70


def main(argv: Sequence[str] | None = None) -> int:
    return run_guarded(dispatch, list(sys.argv[1:] if argv is None else argv), "grimc")


if __name__ == "__main__":
    sys.exit(main())
