"""Which layers of a model are BCR-sparse, and what that saves (`grimc inspect`).

`inspect` runs the frontend, the graph passes and bcr-detect (the same decisions a
sparse compile makes) and reports, for every prunable weight (conv, gemm,
matmul, RNN W and R): its shape, the detected block (or "dense"), the
fraction of nonzeros, the kernel chosen, the bytes dense vs as compiled
(BCRC for bcr, dense otherwise) and, for dense ones, why.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from grimc.layers import layers_by_weight, matrix_name

if TYPE_CHECKING:  # the compiler is imported only when a report is made
    from grimc.driver import ModelSource
    from grimc.transforms.bcr_detect import BcrDetect, MatrixReport


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


def inspect(
    source: ModelSource, detect_pass: BcrDetect, input_shapes: Any = None, input_values: Any = None
) -> list[MatrixReport]:
    """Import `source` (with `input_values` fixed), run the graph passes and
    bcr-detect; return its decisions."""
    from grimc.driver import import_model, optimize
    from grimc.pipeline import GRAPH_PIPELINE
    from grimc.transforms.bcr_detect import detect

    module = optimize(import_model(source, input_shapes, input_values), passes=GRAPH_PIPELINE)
    layers = layers_by_weight(list(module.walk()))
    return [_named(report, layers) for report in detect(module, detect_pass.options())]


def _named(report: MatrixReport, layers: dict[str, str]) -> MatrixReport:
    """The report under its layer's name (bcr-detect names it by weight key)."""
    key, dot, part = report.layer.partition(".")
    if key not in layers:
        return report
    name = matrix_name(layers[key], part) if dot else layers[key]
    return dataclasses.replace(report, layer=name)
