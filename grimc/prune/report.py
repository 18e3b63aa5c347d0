"""What `prune_model` did, layer by layer, and the table `grimc prune` prints."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import onnx

from grimc.names import quote_for_message
from grimc.prune.rules import fmt_block


@dataclass(frozen=True)
class LayerReport:
    """One row of the pruning report."""

    name: str
    op: str
    weight: str
    groups: int
    matrix: tuple[int, int]
    """(M, K) of one group."""
    block: tuple[int, int] | None
    """Effective block; None for dense layers."""
    keep: tuple[int, int] | None
    """(rows, cols) each full block keeps (balanced mode), else None."""
    balanced: bool
    dense_reason: str | None
    """Why the layer stayed dense, None if pruned."""
    weights: int
    kept: int
    """Stored values: explicit zeros inside kept sub-blocks included."""
    kept_bytes: int
    dense_bytes: int

    @property
    def pruned(self) -> bool:
        return self.dense_reason is None

    @property
    def density(self) -> float:
        return self.kept / self.weights

    @property
    def compression(self) -> float:
        return self.weights / self.kept if self.kept else math.inf


@dataclass
class PruneResult:
    """The pruned model, one report row per layer, and the warnings issued."""

    model: onnx.ModelProto
    layers: list[LayerReport]
    warnings: list[str] = field(default_factory=list)

    def layer(self, name: str) -> LayerReport:
        return next(r for r in self.layers if r.name == name)

    @property
    def weights(self) -> int:
        return sum(r.weights for r in self.layers)

    @property
    def kept(self) -> int:
        return sum(r.kept for r in self.layers)

    @property
    def density(self) -> float:
        return self.kept / self.weights if self.weights else 1.0

    @property
    def kept_bytes(self) -> int:
        return sum(r.kept_bytes for r in self.layers)

    @property
    def dense_bytes(self) -> int:
        return sum(r.dense_bytes for r in self.layers)

    def table(self) -> str:
        """The per-layer table and the model total, as `grimc prune` prints it."""
        head = ("layer", "op", "gemm", "block", "keep", "density", "compress", "kept bytes", "note")
        rows = [_report_cells(r) for r in self.layers]
        pruned = sum(r.pruned for r in self.layers)
        rows.append((
            "total", "", f"{self.weights:,} w", "", "", f"{self.density:.4f}",
            _ratio(self.weights, self.kept), f"{self.kept_bytes:,}",
            f"{pruned} of {len(self.layers)} layers pruned; {self.dense_bytes:,} bytes dense "
            f"-> {self.kept_bytes:,} ({_ratio(self.dense_bytes, self.kept_bytes)})",
        ))
        widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
        right = {5, 6, 7}

        def line(cells: Sequence[str]) -> str:
            parts = [c.rjust(w) if i in right else c.ljust(w)
                     for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
            return "  ".join(parts).rstrip()

        rule = "-" * len(line(head))
        return "\n".join([line(head), rule, *map(line, rows[:-1]), rule, line(rows[-1])])


def _ratio(num: int, den: int) -> str:
    return f"{num / den:.2f}x" if den else "inf"


def _report_cells(r: LayerReport) -> tuple[str, ...]:
    m, k = r.matrix
    gemm = f"{m}x{k}" if r.groups == 1 else f"{r.groups}*{m}x{k}"
    block = fmt_block(r.block) if r.block else "-"
    keep = fmt_block(r.keep) if r.keep else ("global" if r.pruned else "-")
    note = f"dense: {r.dense_reason}" if r.dense_reason else ""
    return (_display(r.name), r.op, gemm, block, keep, f"{r.density:.4f}",
            _ratio(r.weights, r.kept), f"{r.kept_bytes:,}", note)


def _display(name: str) -> str:
    """Model names are untrusted: escape anything that could garble the table."""
    return name if name.isprintable() and len(name) <= 60 else quote_for_message(name)

