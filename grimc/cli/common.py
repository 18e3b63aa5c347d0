"""Options shared by the subcommands, and their translation to CompileOptions."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from grimc.errors import GrimcError
from grimc.options import (
    OPT_LEVELS,
    PRECISIONS,
    SPARSE_FORMATS,
    CompileOptions,
    add_input_value_option,
    parse_shape_options,
    parse_value_options,
)
from grimc.progress import set_quiet

SUBCOMMANDS = ("bench", "inspect", "ops", "passes", "prune", "run", "tune")
"""`grimc NAME` runs grimc.cli.NAME.main (imported only then); anything else compiles."""

TARGET_HELP = (
    "native (default: the running CPU's target, detected), host (x86-64-v3, AVX2), "
    "host-avx512 (x86-64-v4), aarch64 (NEON; runs here under qemu-aarch64), generic "
    "(portable C), opencl (OpenCL kernels on the device GRIMC_OPENCL_DEVICE names; link "
    "-lOpenCL); clang triples such as aarch64-linux-gnu are accepted"
)


def add_frontend_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="ONNX model file (.onnx) or grimc IR (.mlir)")
    add_quiet_option(parser)
    parser.add_argument(
        "--input-shape",
        action="append",
        default=[],
        metavar="NAME=SHAPE",
        help="fix a dynamic or symbolic input shape, e.g. input=1x3x224x224 (repeatable)",
    )
    add_input_value_option(parser)


def add_quiet_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-q", "--quiet", action="store_true",
        help="no progress output (shown on a terminal only; a bar with tqdm installed)",
    )


def parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """Parse `argv`; -q/--quiet silences grimc.progress for the whole command."""
    args = parser.parse_args(argv)
    set_quiet(args.quiet)
    return args


def add_build_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", default=None, help=TARGET_HELP)
    parser.add_argument(
        "--threads", type=int, default=1, help="worker threads the kernels are split for (default 1)"
    )
    parser.add_argument(
        "--sparse-format",
        choices=SPARSE_FORMATS,
        default="bcr",
        help="kernels for layers whose zeros form BCR structure: bcr (register-blocked "
        "sparse kernels; default), csr (the CSR baseline) or dense (ignore sparsity)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="opencl only: fp16-storage keeps weights and activations as half, computes in "
        "float; fp16 also computes the inner products in half (devices with cl_khr_fp16)",
    )
    parser.add_argument(
        "--device", metavar="SPEC", default=None,
        help="the remote device the model runs on: ssh://[user@]host[:port][/dir] or "
        "cmd:RUNNER (docs/devices.md); run, bench and tune run there, and its tuning "
        "records are used. Default: this machine (aarch64 under qemu)",
    )
    parser.add_argument(
        "-O",
        dest="opt_level",
        default="3",
        choices=OPT_LEVELS,
        help="clang optimization level for obj/so/exe (default 3)",
    )


def add_tuning_db_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--tuning-db", metavar="FILE",
        help="use the measured schedules of this tuning database (grimc tune; default: "
        "$XDG_CACHE_HOME/grimc/tuning.sqlite when it exists)",
    )
    group.add_argument(
        "--no-tuning-db", action="store_true",
        help="ignore the tuning database: every schedule from the cost model",
    )


def compile_options(args: argparse.Namespace, **fields: object) -> CompileOptions:
    """The CompileOptions of parsed frontend + build options (validated once, here)."""
    return CompileOptions(
        target=args.target,
        threads=args.threads,
        sparse_format=args.sparse_format,
        input_shapes=parse_shape_options(args.input_shape),
        input_values=parse_value_options(args.input_value),
        opt_level=args.opt_level,
        precision=args.precision,
        tuning_db=getattr(args, "tuning_db", None),
        use_tuning_db=not getattr(args, "no_tuning_db", False),
        device=args.device,
        **fields,  # type: ignore[arg-type]
    )


def output_dir_must_exist(output: Path | None) -> None:
    """`-o` must name a file in an existing directory (a directory named by -o
    would receive the artifact under its temporary name)."""
    if output is not None and not output.parent.exists():
        raise GrimcError(f"{output}: output directory does not exist")
    if output is not None and output.is_dir():
        raise GrimcError(f"{output}: is a directory; -o names the output file")
