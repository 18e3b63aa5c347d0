"""`grimc`: compile an ONNX model; inspect the IR on the way.

    grimc model.onnx -o out.c                  C source + header + weight blob
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
from grimc.errors import GrimcError, cannot_write

EMIT_KINDS = ("ir", "c", "obj", "so", "exe")
SUFFIX_TO_EMIT = {".mlir": "ir", ".c": "c", ".o": "obj", ".so": "so"}


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
        help="output file; its suffix picks --emit when not given (.c, .o, .so, .mlir; "
        "anything else: exe). Without -o the IR goes to stdout",
    )
    parser.add_argument(
        "--emit",
        choices=EMIT_KINDS,
        help="ir: optimized xDSL IR (weights beside it as <output>.npz); c: <out>.c + <out>.h "
        "+ <out>.weights.bin; obj/so: compiled with clang (+ .h and weights); exe: a "
        "command-line harness (WEIGHTS THREADS REPEAT IN_DIR OUT_DIR)",
    )
    add_build_options(parser)
    add_ir_options(parser)
    return parser


def add_build_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target",
        default="host",
        help="host (x86-64-v3, AVX2; default), host-avx512 (x86-64-v4), aarch64 (NEON; runs "
        "here under qemu-aarch64), generic (portable C); clang triples such as "
        "aarch64-linux-gnu are accepted",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="worker threads the kernels are split for (default 1)"
    )
    parser.add_argument(
        "--sparse-format",
        choices=["bcr", "csr", "dense"],
        default="bcr",
        help="kernels for layers whose zeros form BCR structure: bcr (register-blocked "
        "sparse kernels; default), csr (the CSR baseline) or dense (ignore sparsity)",
    )
    parser.add_argument(
        "-O",
        dest="opt_level",
        default="3",
        choices=["0", "1", "2", "3", "s"],
        help="clang optimization level for obj/so/exe (default 3)",
    )


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
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent or Path("."), prefix=f".{path.name}.")
    except OSError as exc:
        raise cannot_write(path, exc) from None
    try:
        with os.fdopen(fd, mode) as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; outputs get normal permissions
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise cannot_write(path, exc) from None
        raise


def emit_kind(args: argparse.Namespace) -> str:
    if args.emit is not None:
        return args.emit
    if args.output is None:
        return "ir"
    return SUFFIX_TO_EMIT.get(args.output.suffix, "exe")


def optimized_module(args: argparse.Namespace):
    """Import the model and run the pipeline with the requested instrumentation."""
    from grimc.driver import optimize
    from grimc.pipeline import parse_pass_list

    module = load_module(args.model, args.input_shape)
    passes = parse_pass_list(args.passes) if args.passes is not None else None
    return optimize(
        module, passes, instrumentation_from_args(args), args.target, args.threads,
        args.sparse_format,
    )


def compile_main(argv: Sequence[str]) -> int:
    from grimc.pipeline import render_ir

    args = build_compile_parser().parse_args(argv)
    kind = emit_kind(args)
    if args.output is not None and not args.output.parent.exists():
        raise GrimcError(f"{args.output}: output directory does not exist")
    if args.output is not None and args.output.is_dir():
        raise GrimcError(f"{args.output}: is a directory; -o names the output file")
    if kind != "ir" and args.output is None:
        raise GrimcError(f"--emit={kind} needs an output file: add -o FILE")
    if args.threads < 1:
        raise GrimcError(f"--threads {args.threads}: must be at least 1")
    module = optimized_module(args)
    if kind == "ir":
        if args.output is None:
            sys.stdout.write(render_ir(module, args.print_op_generic))
            return 0
        from grimc.weights import save_beside

        npz = args.output.with_name(args.output.name + ".npz")
        save_beside(module, npz)
        try:
            write_atomically(args.output, render_ir(module, args.print_op_generic))
        except GrimcError:
            npz.unlink(missing_ok=True)
            raise
        return 0
    from grimc.artifacts import write_artifacts

    written = write_artifacts(
        module, args.output, kind, args.target, args.threads, args.opt_level, args.sparse_format
    )
    for path in written:
        print(path, file=sys.stderr)
    return 0


def run_main(argv: Sequence[str]) -> int:
    """Compile, build and run a model on given inputs (or seeded random ones)."""
    import numpy as np

    parser = argparse.ArgumentParser(prog="grimc run", description=run_main.__doc__)
    add_frontend_options(parser)
    add_build_options(parser)
    parser.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=FILE.npy",
        help="input tensor from a .npy file (repeatable); missing inputs get seeded "
        "random normal data",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for random inputs")
    parser.add_argument(
        "-o", "--output-dir", type=Path, help="save outputs as DIR/<name>.npy"
    )
    parser.add_argument(
        "--check", action="store_true", help="compare the outputs with onnxruntime"
    )
    args = parser.parse_args(argv)
    from grimc.artifacts import run_compiled

    given = dict(parse_input_option(s) for s in args.input)
    result = run_compiled(args, given, repeat=1)
    for desc, out in zip(result.gen.outputs, result.outputs, strict=True):
        print(f"{desc.name}: shape {list(out.shape)} min {out.min():.6g} max {out.max():.6g} "
              f"mean {out.mean():.6g}")
        if args.output_dir is not None:
            args.output_dir.mkdir(parents=True, exist_ok=True)
            np.save(args.output_dir / f"{desc.name}.npy", out)
    if args.check:
        print(result.check_report())
        return 0 if result.matches else 1
    return 0


def bench_main(argv: Sequence[str]) -> int:
    """Median latency of a compiled model over repeated runs, after warm-up."""
    parser = argparse.ArgumentParser(prog="grimc bench", description=bench_main.__doc__)
    add_frontend_options(parser)
    add_build_options(parser)
    parser.add_argument("--repeat", type=int, default=20, help="timed runs (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed for random inputs")
    parser.add_argument(
        "--profile", action="store_true",
        help="time every kernel (-DGRIMC_PROFILE) and print a per-layer table",
    )
    args = parser.parse_args(argv)
    from grimc.artifacts import run_compiled

    result = run_compiled(args, {}, repeat=max(1, args.repeat))
    stats = result.stats
    gflops = stats.flops / (stats.median_ms * 1e6) if stats.median_ms > 0 else 0.0
    print(
        f"{args.model}: target {args.target}, {stats.threads} thread(s), median "
        f"{stats.median_ms:.3f} ms over {stats.repeat} runs, {gflops:.1f} GFLOP/s, "
        f"peak arena {stats.arena_bytes} bytes"
    )
    if args.profile:
        from grimc.runner import format_profile, stats_profile

        print(format_profile(stats_profile(result.gen, stats)))
    return 0


def parse_input_option(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise GrimcError(f"--input {text!r}: expected NAME=FILE.npy")
    return name, Path(path)


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
    "run": run_main,
    "bench": bench_main,
    "prune": lambda argv: __import__("grimc.prune").prune.prune_main(argv),  # lazy: numpy, onnx
    "inspect": lambda argv: __import__("grimc.inspect_model").inspect_model.inspect_main(argv),
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
