"""The benchmark report: report.json (every figure), report.md (tables), chart.png.

All three are rendered from the same dict (the JSON document), so the
markdown can be regenerated from a committed report.json:
``python -m benches.peers --render benches/results/report.json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from benches.peers.machine import summary

SCHEMA = 1


def row_key(row: dict[str, Any]) -> tuple[str, str, int, str]:
    return row["model"], row["variant"], int(row["threads"]), row["engine"]


def write_json(data: dict[str, Any], path: Path) -> None:
    """Atomically (a crash mid-run leaves the previous complete file)."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    tmp.replace(path)


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.1f}"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def _cell_reason(row: dict[str, Any] | None, max_busy: float = 0.15) -> str:
    if row is None:
        return "not run"
    if row["status"] == "ok":
        busy = row.get("cpu_busy_before")
        return f"started with CPUs {100 * busy:.0f}% busy" if busy and busy > max_busy else ""
    reason = re.sub(r" \(/[^)]*\)", "", str(row.get("reason", "")))  # drop file paths
    return f"{row['status']}: {reason}".replace("|", "/")[:240]


def _engine_labels(data: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["label"] for e in data["settings"]["engine_defs"]}


def model_table(data: dict[str, Any], model: str) -> list[str]:
    """One markdown table: rows engine x variant, columns per thread count."""
    threads = data["settings"]["threads"]
    labels = _engine_labels(data)
    rows = {row_key(r): r for r in data["rows"] if r["model"] == model}
    head = ["engine", "model weights"]
    for t in threads:
        head += [f"{t}T ms", f"{t}T vs ORT"]
    head.append("notes")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    seen: list[tuple[str, str]] = []
    for r in data["rows"]:
        if r["model"] == model and (r["variant"], r["engine"]) not in seen:
            seen.append((r["variant"], r["engine"]))
    for variant, engine in seen:
        cells = [labels.get(engine, engine), variant]
        reasons: dict[int, str] = {}
        for t in threads:
            row = rows.get((model, variant, t, engine))
            ok = row is not None and row["status"] == "ok"
            cells += [_ms(row.get("median_ms")) if ok else "—",
                      _ratio(row.get("speedup_vs_ort")) if ok else "—"]
            reason = _cell_reason(row, data["settings"].get("max_busy", 0.15))
            if reason:
                reasons[t] = reason
        if len(set(reasons.values())) == 1 and len(reasons) == len(threads):
            cells.append(next(iter(reasons.values())))
        else:
            cells.append("; ".join(f"{t}T {r}" for t, r in reasons.items()))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def icount_table(icount: dict[str, Any]) -> list[str]:
    if not icount or icount.get("skipped"):
        return [f"Not measured: {icount.get('skipped', 'not run')}."] if icount else []
    lines = [
        "| layer | kernels | arch (counter) | instructions | nonzero MACs | instr / nonzero MAC | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in icount["rows"]:
        if r["status"] == "ok":
            lines.append(
                f"| {r['layer']} | {r['mode']} | {r['arch']} ({r['tool']}) | {r['instructions']:,} "
                f"| {r['nonzero_macs']:,} | {r['per_mac']:.3f} | {r.get('note', '')} |"
            )
        else:
            lines.append(
                f"| {r['layer']} | {r['mode']} | {r['arch']} ({r['tool']}) | — | "
                f"{r.get('nonzero_macs') or '—'} | — | {r['status']}: {r.get('reason', '')} |"
            )
    return lines


def render_markdown(data: dict[str, Any]) -> str:
    s, m = data["settings"], data["machine"]
    out = [
        "# grimc vs peer inference engines",
        "",
        f"Measured {m['date']} on {summary(m)}.",
        f"grimc {m['grimc_commit']}; " + ", ".join(
            f"{k} {v}" for k, v in m["packages"].items() if v and k != "matplotlib"
        ) + ".",
        "",
        f"Command: `{data['command']}`",
        "",
        "How: each case (model, weights, threads, engine) runs in its own process; "
        f"{_plural(s['timing']['warmup'], 'warm-up run')}, then at least "
        f"{s['timing']['min_repeat']} timed "
        f"runs and {s['timing']['min_seconds']} s; the **median** latency is shown (report.json "
        "also has min and quartiles). *vs ORT* = onnxruntime's median / the engine's median on "
        "the same weights and threads (>1 is faster). Every output is checked against "
        f"onnxruntime's: max |y - y_ort| <= {s['tolerance']} x max |y_ort|, or the row is "
        "marked *wrong* and gets no ratio. "
        f"`bcr` weights: {s['prune']}. grimc target: `{s['grimc_target']}`.",
        "",
    ]
    busy = [r["cpu_busy_before"] for r in data["rows"] if r.get("cpu_busy_before") is not None]
    if busy:
        noisy = sum(b > s.get("max_busy", 0.15) for b in busy)
        out += [f"Before each case the runner waits (up to {s.get('quiet_wait', 30):g} s) for "
                f"other processes to use < {100 * s.get('max_busy', 0.15):.0f}% of the CPUs: "
                f"{len(busy) - noisy} of {len(busy)} cases started quiet; CPU busy before a "
                f"case: median {100 * sorted(busy)[len(busy) // 2]:.0f}%, max "
                f"{100 * max(busy):.0f}% (report.json: `cpu_busy_before`, `load_1m`).", ""]
    for v in data["variants"]:
        if v.get("error"):
            out.append(f"- {v['model']} `{v['variant']}` weights: **not available** — {v['error']}")
        elif v["variant"] != "dense" and v.get("info"):
            i = v["info"]
            out.append(
                f"- {v['model']} `bcr` weights: {i.get('pruned_layers')} of {i.get('layers')} "
                f"layers pruned, density {i.get('density')} of prunable weights"
            )
    out.append("")
    for model in s["models"]:
        out += [f"## {data['model_labels'].get(model, model)}", ""]
        out += model_table(data, model)
        out.append("")
    if data.get("not_measured"):
        out += ["## Not measured", ""]
        out += [f"- **{n['engine']}**: {n['reason']}" for n in data["not_measured"]]
        out.append("")
    if "icount" in data:
        out += ["## Instruction counts per nonzero multiply-add (grimc kernels)", ""]
        if data["icount"].get("method"):
            out += [data["icount"]["method"], ""]
        out += icount_table(data["icount"])
        out.append("")
    out += ["![speedup vs onnxruntime](chart.png)", ""]
    return "\n".join(out)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _measured(data: dict[str, Any]) -> Iterable[dict[str, Any]]:
    return (r for r in data["rows"] if r["status"] == "ok" and r.get("speedup_vs_ort"))


def render_chart(data: dict[str, Any], path: Path) -> bool:
    """Speedup over onnxruntime per model (bars: engine/weights, one per thread count)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return False
    models = [m for m in data["settings"]["models"]
              if any(r["model"] == m and r["engine"] != "onnxruntime" for r in _measured(data))]
    if not models:
        return False
    labels = _engine_labels(data)
    threads = data["settings"]["threads"]
    fig, axes = plt.subplots(len(models), 1, figsize=(7.5, 1.3 + 1.9 * len(models)),
                             squeeze=False)
    width = 0.8 / len(threads)
    for ax, model in zip(axes[:, 0], models, strict=True):
        rows = [r for r in _measured(data) if r["model"] == model and r["engine"] != "onnxruntime"]
        bars = list(dict.fromkeys((r["variant"], r["engine"]) for r in rows))
        for j, t in enumerate(threads):
            values = [next((r["speedup_vs_ort"] for r in rows if (r["variant"], r["engine"]) == b
                            and r["threads"] == t), 0.0) for b in bars]
            xs = [i + (j - (len(threads) - 1) / 2) * width for i in range(len(bars))]
            ax.bar(xs, values, width, label=f"{t} thread{'s' if t > 1 else ''}")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ratios = [r["speedup_vs_ort"] for r in rows]
        if ratios and max(ratios) / min(ratios) > 8:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%gx"))
            ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xticks(range(len(bars)))
        ax.set_xticklabels([f"{labels.get(e, e)}\n{v}" for v, e in bars], fontsize=7)
        ax.set_ylabel("x vs ORT", fontsize=8)
        ax.set_title(data["model_labels"].get(model, model), fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Speedup over onnxruntime (= 1, black line; median latency), "
                 f"{data['machine']['date']}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


def write_all(data: dict[str, Any], outdir: Path) -> list[Path]:
    """report.json, report.md and (matplotlib permitting) chart.png in outdir."""
    outdir.mkdir(parents=True, exist_ok=True)
    write_json(data, outdir / "report.json")
    (outdir / "report.md").write_text(render_markdown(data))
    paths = [outdir / "report.json", outdir / "report.md"]
    if render_chart(data, outdir / "chart.png"):
        paths.append(outdir / "chart.png")
    return paths
