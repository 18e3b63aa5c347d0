"""accuracy.md (tables, done-when checks) and accuracy.png (accuracy against rate)."""

from __future__ import annotations

import statistics
from pathlib import Path

METHODS = ("one-shot", "retrained", "gradual", "admm", "distilled")
LABELS = {"one-shot": "one-shot", "retrained": "retrained (one-shot + masked FT)",
          "gradual": "gradual (cubic)", "admm": "ADMM", "distilled": "distilled (no labels)"}


def _stats(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else 0.0)


def _cell(values: list[float]) -> str:
    mean, spread = _stats([100 * v for v in values])
    return f"{mean:.2f} ± {spread:.2f}" if len(values) > 1 else f"{mean:.2f}"


def summarize(model: dict) -> dict[float, dict]:
    """rate -> {column: [values over seeds]} plus latency."""
    table: dict[float, dict] = {}
    for run in model["runs"]:
        row = table.setdefault(run["rate"], {"dense": []} | {m: [] for m in METHODS})
        for column in ("dense", *METHODS):
            row[column].append(run[column])
        if "latency" in run:
            row["latency"] = run["latency"]
        row.setdefault("train_s", []).append(run["dense_train_s"] + run["train_s"])
    return table


def checks(model: dict, table: dict[float, dict]) -> list[str]:
    """The issue's done-when criteria that apply to this model."""
    lines = []
    limits = {"digits": {8.0: 1.0, 16.0: 2.0}, "vowels": {8.0: 1.0}}.get(model["name"], {})
    for rate, limit in limits.items():
        if rate in table:
            dense = statistics.fmean(table[rate]["dense"])
            best = max(METHODS[1:4], key=lambda m: statistics.fmean(table[rate][m]))
            gap = 100 * (dense - statistics.fmean(table[rate][best]))
            ok = "met" if gap <= limit else "NOT met"
            where = f"{gap:.2f} points below" if gap >= 0 else f"{-gap:.2f} points above"
            lines.append(f"- {rate:g}x: best retraining ({LABELS[best]}) is {where} dense "
                         f"(target: at most {limit:g} below): {ok}")
    if 8.0 in table:
        dense, one, dist = (statistics.fmean(table[8.0][c])
                            for c in ("dense", "one-shot", "distilled"))
        lost = dense - one
        share = (dist - one) / lost if lost > 0 else 1.0
        ok = "met" if share >= 0.5 else "NOT met"
        lines.append(f"- 8x: distillation recovers {100 * share:.0f}% of the one-shot loss "
                     f"({100 * lost:.2f} points; target >= 50%): {ok}")
    slowest = max(max(row["train_s"]) for row in table.values())
    lines.append(f"- slowest seed/rate: {slowest:.0f} s of training (dense + all methods, one "
                 "rate), target < 600 s per model")
    return lines


def write_report(results: dict, out: Path) -> None:
    seeds = results["seeds"]
    lines = [
        "# Accuracy of BCR-pruned models (`python -m benches.accuracy`)",
        "",
        f"Top-1 test accuracy in %, mean ± standard deviation over seeds {seeds}; "
        "latency of the retrained pruned model at batch 1, one thread, median "
        "(seed " f"{seeds[0]}). torch {results['machine']['torch']}, "
        f"{results['machine']['threads']} torch thread(s). Latencies come from one short "
        "run per rate on the machine as it was (on a shared machine, indicative only; "
        "`python -m benches.bcr_models` measures BCR speed properly).",
        "",
        "Columns: *one-shot* = magnitude BCR pruning, no retraining; *retrained* = one-shot then "
        "masked fine-tuning; *gradual* = cubic schedule (Zhu & Gupta) during fine-tuning; "
        "*ADMM* = ADMM regularization toward the BCR set, hard pruning half-way, masked "
        "fine-tuning; *distilled* = the ONNX path without labels (`grimc prune --distill`): "
        "the pruned model matches the dense model's outputs on the training inputs. Every "
        "method trains for the same number of fine-tuning epochs; those are epochs the dense "
        "model did not get, so a retrained model can end above it.",
        "",
    ]
    for model in results["models"]:
        table = summarize(model)
        lines += [f"## {model['title']}", "",
                  f"Dense training {model['epochs']} epochs, fine-tuning {model['finetune_epochs']} "
                  f"epochs, block {model['block']}; layers pruned by grimc's default rules.", ""]
        first = model["runs"][0]["pruned_layers"] if model["runs"] else []
        if first:
            lines.append("Pruned layers: " + ", ".join(
                f"{p['layer']} ({'x'.join(map(str, p['block']))})" for p in first) + ".")
            lines.append("")
        head = ["rate", "dense", *[LABELS[m] for m in METHODS], "grimc ms", "ORT ms", "ORT/grimc"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for rate, row in sorted(table.items()):
            lat = row.get("latency")
            timing = ([f"{lat['grimc_ms']:.3f}", f"{lat['ort_ms']:.3f}",
                       f"{lat['ort_ms'] / lat['grimc_ms']:.2f}x"] if lat else ["-", "-", "-"])
            cells = [f"{rate:g}x", _cell(row["dense"]), *[_cell(row[m]) for m in METHODS], *timing]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", "Done-when checks:", "", *checks(model, table), ""]
    (out / "accuracy.md").write_text("\n".join(lines))
    _plot(results, out / "accuracy.png")


def _plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = results["models"]
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        table = summarize(model)
        rates = sorted(table)
        for column in ("dense", *METHODS):
            stats = [_stats([100 * v for v in table[r][column]]) for r in rates]
            ax.errorbar(rates, [s[0] for s in stats], yerr=[s[1] for s in stats], marker="o",
                        capsize=3, label=LABELS.get(column, column))
        ax.set_xscale("log", base=2)
        ax.set_xticks(rates, [f"{r:g}x" for r in rates])
        ax.set_xlabel("BCR compression of the pruned layers")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_title(model["title"], fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
