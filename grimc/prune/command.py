"""`grimc prune` argument parsing (moves to the CLI package once it exists)."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from grimc.prune.model import prune_model, serialize
from grimc.prune.rules import (
    DEFAULT_KEYS,
    MIN_K,
    MIN_WEIGHTS,
    PruneError,
    PruneWarning,
    label_text,
    validate_options,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grimc prune",
        description="Prune a dense ONNX model into BCR (block-based column-row) sparsity by "
        "weight magnitude; print a per-layer report and write the pruned model.",
        epilog="--rate R splits into column pruning first (up to one column per block), then "
        "row pruning; see docs/pruning.md for the exact rule and the config file format.",
    )
    parser.add_argument("model", help="dense ONNX model (.onnx)")
    parser.add_argument("-o", "--output", type=Path,
                        help="pruned model to write (atomically); without it only the report")
    parser.add_argument("--block", metavar="RxC", help="block rows x cols (default 8x16)")
    parser.add_argument("--rate", metavar="R",
                        help="compression = 1/density, e.g. 8 keeps 1/8 (default 8)")
    parser.add_argument("--col-rate", metavar="P",
                        help="fraction of block-columns pruned, in [0, 1) (instead of --rate)")
    parser.add_argument("--row-rate", metavar="P",
                        help="fraction of block-rows pruned, in [0, 1) (instead of --rate)")
    parser.add_argument("--row-share", metavar="S",
                        help="share of log(rate) given to row pruning, in [0, 1] (default 0: "
                        "columns first)")
    parser.add_argument("--unbalanced", action="store_true",
                        help="one global magnitude threshold per layer instead of the same "
                        "count in every block")
    parser.add_argument("--config", metavar="FILE.toml",
                        help="per-layer settings: pattern -> block/rate/col_rate/row_rate/dense")
    parser.add_argument("--include", action="append", default=[], metavar="PATTERN",
                        help="prune matching layers even if the default rules keep them dense")
    parser.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                        help="keep matching layers dense (wins over everything)")
    parser.add_argument("--min-weights", metavar="N",
                        help=f"layers with fewer weights stay dense (default {MIN_WEIGHTS})")
    parser.add_argument("--min-k", metavar="N",
                        help=f"layers with a shorter GEMM reduction K stay dense (default {MIN_K})")
    return parser


def _cli_options(args: argparse.Namespace) -> dict:
    """Explicit CLI options, validated with the flag names in messages."""
    flags = {"block": "--block", "rate": "--rate", "col_rate": "--col-rate",
             "row_rate": "--row-rate", "row_share": "--row-share",
             "min_weights": "--min-weights", "min_k": "--min-k"}
    options: dict[str, object] = {}
    for key, flag in flags.items():
        value = getattr(args, key)
        if value is not None:
            options.update(validate_options({key: value}, flag, DEFAULT_KEYS))
    if "rate" in options and ({"col_rate", "row_rate"} & options.keys()):
        raise PruneError("--rate: give either --rate or --col-rate/--row-rate, not both")
    if args.unbalanced:
        options["balanced"] = False
    return options


def prune_main(argv: Sequence[str]) -> int:
    """`grimc prune`: see build_parser()."""
    from grimc.cli import write_atomically

    args = build_parser().parse_args(argv)
    if args.output is not None and not args.output.parent.exists():
        raise PruneError(f"{label_text(str(args.output))}: output directory does not exist")
    options = _cli_options(args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PruneWarning)
        result = prune_model(args.model, config=args.config, include=args.include,
                             exclude=args.exclude, label=args.model, **options)
    for note in result.warnings:
        print(f"grimc: warning: {note}", file=sys.stderr)
    print(result.table())
    if args.output is not None:
        write_atomically(args.output, serialize(result.model))
    return 0
