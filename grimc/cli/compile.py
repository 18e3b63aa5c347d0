"""`grimc MODEL ...`: compile to IR, C, an object, a shared library or a harness."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from grimc import __version__
from grimc.artifacts import EMIT_KINDS, emit_kind_for, prefix_for
from grimc.cli.common import (
    SUBCOMMANDS,
    add_build_options,
    add_frontend_options,
    add_tuning_db_options,
    compile_options,
    output_dir_must_exist,
    parse,
)
from grimc.dialects.sched import target_of
from grimc.errors import GrimcError
from grimc.pipeline import Instrumentation, check_pass_names, parse_pass_list
from grimc.target import Target, resolve_target

if TYPE_CHECKING:
    from xdsl.dialects.builtin import ModuleOp


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grimc",
        description="Compile an ONNX model with BCR (block-based column-row) sparse "
        "weights into fast C, NEON or AVX code.",
        epilog="Subcommands: " + ", ".join(SUBCOMMANDS) + " (grimc SUBCOMMAND --help).",
    )
    parser.add_argument("--version", action="version", version=f"grimc {__version__}")
    add_frontend_options(parser)
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        help="output file; its suffix picks --emit when not given (.c, .o, .so, .mlir; "
        "anything else: exe). Without -o the IR goes to stdout",
    )
    parser.add_argument(
        "--emit",
        choices=EMIT_KINDS,
        help="ir: optimized xDSL IR (weights beside it as <output>.npz); c: <out>.c + <out>.h "
        "+ <out>.weights.bin; obj/so: compiled with clang (+ .h and weights); exe: a "
        "command-line harness, run as `EXE WEIGHTS.bin THREADS REPEAT IN_DIR OUT_DIR`: it "
        "reads IN_DIR/input0.bin, input1.bin, ... (one per model input, in graph order: raw "
        "little-endian float32, C order, no header), runs once to warm up then REPEAT times, "
        "writes OUT_DIR/output0.bin, ... the same way and prints one JSON line of stats "
        "(median_ms, arena_bytes, flops)",
    )
    add_build_options(parser)
    add_tuning_db_options(parser)
    add_ir_options(parser)
    return parser


def instrumentation(args: argparse.Namespace) -> Instrumentation:
    def names(values: Sequence[str], flag: str) -> frozenset[str]:
        found = [n for v in values for n in parse_pass_list(v)]
        check_pass_names(found, flag)
        return frozenset(found)

    return Instrumentation(
        print_before=names(args.print_ir_before, "--print-ir-before"),
        print_after=names(args.print_ir_after, "--print-ir-after"),
        print_after_all=args.print_ir_after_all,
        print_before_all=args.print_ir_before_all,
        dump_dir=args.ir_dump_dir,
        generic=args.print_op_generic,
        time_passes=args.time_passes,
    )


def main(argv: Sequence[str]) -> int:
    from grimc.driver import check_source_options, generate_model, import_model, optimize
    from grimc.fileio import write_atomically
    from grimc.pipeline import render_ir

    args = parse(build_parser(), argv)
    if args.output is not None and str(args.output) == "-":  # stdout, as usual for text
        if args.emit not in (None, "ir"):
            raise GrimcError(f"-o -: only --emit=ir goes to stdout; --emit={args.emit} writes "
                             "files: give -o FILE")
        args.output = None
    kind = args.emit or emit_kind_for(args.output)
    output_dir_must_exist(args.output)
    if kind != "ir" and args.output is None:
        raise GrimcError(f"--emit={kind} needs an output file: add -o FILE")
    options = compile_options(
        args,
        passes=parse_pass_list(args.passes) if args.passes is not None else None,
        **({"prefix": prefix_for(args.output)} if args.output is not None else {}),
    )
    inst = instrumentation(args)
    check_source_options(args.model, options)
    module = optimize(
        import_model(args.model, options.input_shapes, options.input_values), options, inst
    )
    if kind == "ir":
        from grimc.weights import persist

        if args.output is None:
            warning = persist(module)
            if warning and args.model.endswith(".mlir"):  # an ONNX input prints mem: anyway
                print(f"grimc: warning: {warning}", file=sys.stderr)
            sys.stdout.write(render_ir(module, args.print_op_generic))
            return 0
        npz = args.output.with_name(args.output.name + ".npz")
        persist(module, npz)
        try:
            write_atomically(args.output, render_ir(module, args.print_op_generic))
        except GrimcError:
            npz.unlink(missing_ok=True)
            raise
        return 0
    from grimc.artifacts import write_artifacts

    gen = generate_model(module, options, release_weights=True)  # the module is ours alone
    written = write_artifacts(gen, args.output, kind, options)
    print(chosen_target(args.target, module).describe(), file=sys.stderr)
    for path in written:
        print(path, file=sys.stderr)
    return 0


def chosen_target(requested: str | None, module: ModuleOp) -> Target:
    """The module's target, as `--target` named it (so `native` says how it was detected)."""
    recorded, named = target_of(module), resolve_target(requested)
    assert recorded is not None  # optimize() records one
    return named if named.name == recorded.name else recorded
