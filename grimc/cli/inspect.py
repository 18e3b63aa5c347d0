"""`grimc inspect`: which layers of a model are BCR-sparse, and what that saves.

    grimc inspect model.onnx                 per-layer table + totals
    grimc inspect model.onnx --json          the same as JSON
    grimc inspect model.onnx --threshold 0.3 --blocks 8x16,4x16
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from grimc.cli.common import add_frontend_options, parse
from grimc.errors import GrimcError
from grimc.layers import MIN_SPARSE_WEIGHTS
from grimc.options import parse_shape_options, parse_value_options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grimc inspect",
        description="Per-layer BCR sparsity report: detected block, density, kernel, bytes.",
    )
    add_frontend_options(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    detect = parser.add_argument_group("bcr-detect options")
    detect.add_argument(
        "--threshold", type=float, default=0.5, help="most density that runs sparse (default 0.5)"
    )
    detect.add_argument(
        "--blocks",
        metavar="RxC,...",
        help="candidate block shapes (default: bcr-detect's, 8x16,4x16,8x8,16x32,16x16,4x4)",
    )
    detect.add_argument(
        "--min-fill",
        type=float,
        default=0.8,
        help="least nonzeros / stored values for the zeros to count as BCR (default 0.8)",
    )
    detect.add_argument(
        "--min-weights", type=int, default=MIN_SPARSE_WEIGHTS,
        help=f"smaller weights stay dense (default {MIN_SPARSE_WEIGHTS})",
    )
    detect.add_argument(
        "--depthwise", action="store_true", help="consider depthwise convs too"
    )
    return parser


def main(argv: Sequence[str]) -> int:
    """Print which layers are BCR-sparse, with densities and bytes."""
    from grimc.inspect_model import inspect, layer_record, totals, write_table
    from grimc.transforms.bcr_detect import DEFAULT_BLOCKS, BcrDetect

    args = parse(build_parser(), argv)
    if args.min_weights < 0:
        raise GrimcError(f"--min-weights {args.min_weights}: must be >= 0")
    detect_pass = BcrDetect(
        threshold=args.threshold,
        blocks=args.blocks or DEFAULT_BLOCKS,
        min_fill=args.min_fill,
        min_weights=args.min_weights,
        depthwise=args.depthwise,
    )
    reports = inspect(
        args.model,
        detect_pass,
        parse_shape_options(args.input_shape),
        parse_value_options(args.input_value),
    )
    if args.json:
        data = {
            "model": args.model,
            "layers": [layer_record(r) for r in reports],
            "totals": totals(reports),
        }
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        write_table(reports, sys.stdout)
    return 0
