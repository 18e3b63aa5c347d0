"""Tables of the report, rendered from its JSON document (`bcr_models.json`).

Every ratio is time(other) / time(engine): > 1 means the engine is faster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benches.bcr_models.engines import ENGINES
from benches.peers.machine import summary

Row = dict[str, Any]
TOP_LAYERS = 10  # layers printed on the terminal (the markdown has all)


def ms_of(row: Row, engine: str) -> float | None:
    """The engine's median ms in this row, if it ran (a wrong output still has a time)."""
    e = row["engines"].get(engine)
    return e.get("ms") if e else None


def ratio(row: Row, base: str, engine: str) -> float | None:
    a, b = ms_of(row, base), ms_of(row, engine)
    return a / b if a and b else None


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}" if v < 10 else f"{v:.1f}"


def _x(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x"


def _busy(row: Row, max_busy: float) -> str:
    b = row.get("cpu_busy_before")
    return "-" if b is None else f"{100 * b:.0f}%" + (" (busy)" if b > max_busy else "")


def target_cells(row: Row) -> tuple[str, str]:
    """(target speedup, met?) for the BCR-vs-onnxruntime target of a case that has one."""
    goal = row["prune"]["compression"] / 2
    speed = ratio(row, "ort", "bcr")
    if not row["target"]:
        return f"({goal:.2f}x)", "no target"
    if speed is None or row["engines"]["bcr"]["status"] != "ok":
        return f"{goal:.2f}x", "not measured"
    return f"{goal:.2f}x", ("yes" if speed >= goal else "NO") + f" ({speed / goal:.2f} of it)"


def check_cell(row: Row, engine: str) -> str:
    e = row["engines"].get(engine)
    if e is None:
        return "not run"
    if e["status"] == "ok":
        return f"ok ({e['rel_err']:.1e})"
    return f"{e['status'].upper()}: {e.get('reason', '')}".replace("|", "/")[:160]


def table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A markdown table, first column left-aligned, the others right-aligned."""
    align = ["---"] + ["--:"] * (len(head) - 1)
    return [f"| {' | '.join(r)} |" for r in [head, align, *rows]]


def summary_table(rows: Sequence[Row], max_busy: float) -> list[str]:
    head = (
        "model",
        "threads",
        "compression",
        "onnxruntime ms",
        "grimc BCR ms",
        "BCR vs ORT",
        "target (compr/2)",
        "met",
        "BCR vs grimc dense",
        "BCR vs CSR",
        "CPUs busy before",
    )
    out = []
    for r in rows:
        goal, met = target_cells(r)
        out.append(
            (
                r["title"],
                str(r["threads"]),
                f"{r['prune']['compression']:.2f}x",
                _ms(ms_of(r, "ort")),
                _ms(ms_of(r, "bcr")),
                _x(ratio(r, "ort", "bcr")),
                goal,
                met,
                _x(ratio(r, "dense", "bcr")),
                _x(ratio(r, "csr", "bcr")),
                _busy(r, max_busy),
            )
        )
    return table(head, out)


def ratio_table(row: Row) -> list[str]:
    """Every engine of one (case, threads): ms and its ratios to ORT, grimc dense, CSR."""
    head = ("engine", "ms", "vs onnxruntime", "vs grimc dense", "vs grimc CSR", "output check")
    out = [
        (
            e.label,
            _ms(ms_of(row, e.name)),
            _x(ratio(row, "ort", e.name)),
            _x(ratio(row, "dense", e.name)),
            _x(ratio(row, "csr", e.name)),
            check_cell(row, e.name),
        )
        for e in ENGINES
    ]
    return table(head, out)


def ablation_table(rows: Sequence[Row]) -> list[str]:
    head = (
        "model",
        "threads",
        "grimc BCR ms",
        "without reorder ms",
        "reorder gains",
        "without RLE ms",
        "RLE gains",
    )
    out = [
        (
            r["title"],
            str(r["threads"]),
            _ms(ms_of(r, "bcr")),
            _ms(ms_of(r, "no-reorder")),
            _x(ratio(r, "no-reorder", "bcr")),
            _ms(ms_of(r, "no-rle")),
            _x(ratio(r, "no-rle", "bcr")),
        )
        for r in rows
    ]
    return table(head, out)


def layer_rows(row: Row, limit: int | None = None) -> list[tuple[str, ...]]:
    """The profiled BCR build's kernels by decreasing time."""
    layers = sorted(row.get("layers", []), key=lambda p: -p["ms"])
    total = sum(p["ms"] for p in layers) or 1.0
    return [
        (
            p["label"],
            p["op"],
            f"{p['ms']:.3f}",
            f"{100 * p['ms'] / total:.1f}",
            f"{p['gflops']:.1f}",
            f"{p['peak_pct']:.1f}",
            ", ".join(p["kernels"]),
        )
        for p in layers[:limit]
    ]


LAYER_HEAD = ("layer", "kind", "ms", "% of model", "GFLOP/s", "% of peak", "kernels")


def layer_section(row: Row) -> list[str]:
    if "layers" not in row:
        return [f"No per-layer profile: {row.get('profile_error', 'not run')}", ""]
    total = sum(p["ms"] for p in row["layers"])
    sparse = [p for p in row["layers"] if p["op"].startswith("bcr.")]
    sparse_ms = sum(p["ms"] for p in sparse)
    sparse_rate = sum(p["flops"] for p in sparse) / (sparse_ms * 1e6) if sparse_ms else 0.0
    return [
        f"Kernels sum to {total:.3f} ms per run (medians of {row['profile_runs']} runs, wall "
        f"time; the timed grimc BCR run took {_ms(ms_of(row, 'bcr'))} ms); BCR "
        f"kernels {sparse_ms:.3f} ms at {sparse_rate:.1f} GFLOP/s on nonzero multiply-adds, "
        f"{100 * sparse_rate / row['peak_gflops']:.1f}% of the {row['peak_gflops']:.1f} GFLOP/s "
        f"peak of {row['threads']} core(s).",
        "",
        *table(LAYER_HEAD, layer_rows(row)),
        "",
    ]


def render_markdown(data: dict[str, Any]) -> str:
    s, rows = data["settings"], data["rows"]
    lines = [
        "# grimc BCR end to end: pruned models against onnxruntime, grimc dense and CSR",
        "",
        f"- Machine: {summary(data['machine'])}",
        f"- grimc {data['machine']['grimc_commit']}, {data['machine']['date']}, "
        f"target {s['target']}; onnxruntime {data['machine']['packages'].get('onnxruntime')}",
        f"- Command: `{data['command']}`"
        + (" (quick: small model variants)" if s["quick"] else ""),
        f"- Measured FMA peak: {data['fma_peak_gflops']:.1f} GFLOP/s per core "
        "(benches.bcr_layers.fma_peak: independent FMA chains, built for the same target)",
        f"- Timing: {s['timing']}",
        f"- Check: every output against onnxruntime's, max |y - y_ort| <= {s['tolerance']:g} "
        "* max |y_ort|, else the engine is marked WRONG.",
        "- Compression: dense / stored weights of the pruned layers (the target is half of it);"
        " the case headings also give it over all weights of prunable ops.",
        "",
        "## Summary",
        "",
        *summary_table(rows, s["max_busy"]),
        "",
        "## Engines, per model",
        "",
    ]
    for r in rows:
        p = r["prune"]
        lines += [
            f"### {r['title']}, {r['threads']} thread(s)",
            "",
            f"{r['block']} blocks, rate {r['rate']:g}; {p['pruned_layers']} "
            f"of {p['layers']} layers pruned, {p['compression']:.2f}x on them, "
            f"{p['compression_all']:.2f}x over all weights."
            + (f" {r['note']}." if r["note"] else ""),
            "",
            *ratio_table(r),
            "",
        ]
    lines += [
        "## Ablation: BCR without reordering, without RLE",
        "",
        *ablation_table(rows),
        "",
        "## Per layer: grimc BCR (profiled build of the same C)",
        "",
        "GFLOP/s count 2 x nonzero multiply-adds for BCR kernels (dense kernels: all of "
        "theirs); % of peak is against the measured FMA peak times the thread count.",
        "",
    ]
    for r in rows:
        lines += [f"### {r['title']}, {r['threads']} thread(s)", "", *layer_section(r)]
    if "total_wall_s" in data:
        lines += [f"Total run time {data['total_wall_s']:.0f} s."]
    return "\n".join(lines) + "\n"


def print_row(row: Row, max_busy: float) -> None:
    """The terminal view of one finished (case, threads)."""
    print(
        f"\n{row['title']}, {row['threads']} thread(s): compression "
        f"{row['prune']['compression']:.2f}x, CPUs busy before {_busy(row, max_busy)}"
    )
    print(f"{'engine':22s} {'ms':>9s} {'vs ORT':>8s} {'vs dense':>8s} {'vs CSR':>8s}  check")
    for e in ENGINES:
        print(
            f"{e.label:22s} {_ms(ms_of(row, e.name)):>9s} {_x(ratio(row, 'ort', e.name)):>8s} "
            f"{_x(ratio(row, 'dense', e.name)):>8s} {_x(ratio(row, 'csr', e.name)):>8s}  "
            f"{check_cell(row, e.name)}"
        )
    goal, met = target_cells(row)
    print(f"BCR vs onnxruntime target {goal}: {met}")
    if "layers" in row:
        print(f"top layers of grimc BCR (peak {row['peak_gflops']:.1f} GFLOP/s):")
        print(
            f"  {LAYER_HEAD[0]:28s} {LAYER_HEAD[1]:18s} {'ms':>8s} {'%':>5s} {'GF/s':>7s} "
            f"{'%peak':>6s}"
        )
        for cells in layer_rows(row, TOP_LAYERS):
            print(
                f"  {cells[0][:28]:28s} {cells[1][:18]:18s} {cells[2]:>8s} {cells[3]:>5s} "
                f"{cells[4]:>7s} {cells[5]:>6s}"
            )
    else:
        print(f"no per-layer profile: {row.get('profile_error')}")
