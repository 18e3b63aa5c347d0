"""`grimc inspect`: which layers of a model are BCR-sparse, and what that saves.

    grimc inspect model.onnx                 per-layer table + totals
    grimc inspect model.onnx --json          the same as JSON
    grimc inspect model.onnx --threshold 0.3 --blocks 8x16,4x16

Runs the frontend, the graph passes and bcr-detect (the same decisions a
sparse compile makes) and reports, for every prunable weight (conv, gemm,
matmul, RNN W and R): its shape, the detected block (or "dense"), the
fraction of nonzeros, the kernel chosen, the bytes dense vs as compiled
(BCRC for bcr, dense otherwise) and, for dense ones, why.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from grimc.errors import GrimcError

if TYPE_CHECKING:  # the compiler is imported only when the command runs
    from grimc.transforms.bcr_detect import BcrDetect, MatrixReport


def build_parser() -> argparse.ArgumentParser:
    from grimc.cli import add_frontend_options

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
        "--min-weights", type=int, default=2048, help="smaller weights stay dense (default 2048)"
    )
    detect.add_argument(
        "--depthwise", action="store_true", help="consider depthwise convs too"
    )
    return parser


def _block_text(report: MatrixReport) -> str:
    if report.kernel == "dense" or report.block is None:
        return "dense"
    return f"{report.block[0]}x{report.block[1]}"


def layer_record(report: MatrixReport) -> dict[str, Any]:
    """One layer as plain data (the JSON form)."""
    return {
        "layer": report.layer,
        "op": report.op,
        "shape": list(report.shape),
        "matrix": list(report.view),
        "groups": report.groups,
        "block": None if _block_text(report) == "dense" else list(report.block or ()),
        "density": round(report.density, 6),
        "stored_density": round(report.stored / report.size, 6) if report.size else 0.0,
        "kernel": report.kernel,
        "dense_bytes": report.dense_bytes,
        "compact_bytes": report.compact_bytes,
        "rows_permuted": report.permuted,
        "note": report.note,
    }


def totals(reports: Sequence[MatrixReport]) -> dict[str, Any]:
    dense = sum(r.dense_bytes for r in reports)
    compact = sum(r.compact_bytes for r in reports)
    return {
        "layers": len(reports),
        "bcr_layers": sum(r.kernel == "bcr" for r in reports),
        "dense_bytes": dense,
        "compact_bytes": compact,
        "ratio": round(dense / compact, 4) if compact else 1.0,
    }


def write_table(reports: Sequence[MatrixReport], out: TextIO) -> None:
    header = ("layer", "op", "shape", "block", "density", "kernel", "dense B", "compact B", "note")
    rows = [
        (
            r.layer,
            r.op,
            "x".join(str(d) for d in r.shape),
            _block_text(r),
            f"{r.density:.3f}",
            r.kernel,
            str(r.dense_bytes),
            str(r.compact_bytes),
            r.note,
        )
        for r in reports
    ]
    tot = totals(reports)
    rows.append(
        (
            "total",
            "",
            "",
            "",
            "",
            f"{tot['bcr_layers']}/{tot['layers']} bcr",
            str(tot["dense_bytes"]),
            str(tot["compact_bytes"]),
            f"{tot['ratio']:.2f}x smaller" if tot["compact_bytes"] else "",
        )
    )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    numeric = {4, 6, 7}

    def line(row: Sequence[str]) -> str:
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    out.write(line(header) + "\n")
    for row in rows[:-1]:
        out.write(line(row) + "\n")
    out.write(line(["-" * w for w in widths]) + "\n")
    out.write(line(rows[-1]) + "\n")


def inspect(path: str, shape_options: Sequence[str], detect_pass: BcrDetect) -> list[MatrixReport]:
    """Import `path`, run the graph passes and bcr-detect; return its decisions."""
    from grimc.cli import load_module
    from grimc.pipeline import GRAPH_PIPELINE, PipelineRunner
    from grimc.transforms.bcr_detect import detect

    options = detect_pass.options()
    module = load_module(path, shape_options)
    PipelineRunner().run(module, list(GRAPH_PIPELINE))
    return detect(module, options)


def inspect_main(argv: Sequence[str]) -> int:
    """Print which layers are BCR-sparse, with densities and bytes."""
    from grimc.transforms.bcr_detect import DEFAULT_BLOCKS, BcrDetect

    args = build_parser().parse_args(argv)
    if args.min_weights < 0:
        raise GrimcError(f"--min-weights {args.min_weights}: must be >= 0")
    detect_pass = BcrDetect(
        threshold=args.threshold,
        blocks=args.blocks or DEFAULT_BLOCKS,
        min_fill=args.min_fill,
        min_weights=args.min_weights,
        depthwise=args.depthwise,
    )
    reports = inspect(args.model, args.input_shape, detect_pass)
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
