"""`grimc run`: compile, build and run a model on given inputs (or seeded random ones)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from grimc.cli.common import add_build_options, add_frontend_options, compile_options, parse
from grimc.options import parse_input_option


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grimc run",
        description="Compile, build and run a model on given inputs (or seeded random ones).",
    )
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
    parser.add_argument("-o", "--output-dir", type=Path, help="save outputs as DIR/<name>.npy")
    parser.add_argument(
        "--check", action="store_true", help="compare the outputs with onnxruntime"
    )
    return parser


def main(argv: Sequence[str]) -> int:
    import numpy as np

    from grimc.artifacts import run_compiled

    args = parse(build_parser(), argv)
    given = dict(parse_input_option(s) for s in args.input)
    result = run_compiled(
        args.model, compile_options(args), given, seed=args.seed, repeat=1, check=args.check
    )
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
