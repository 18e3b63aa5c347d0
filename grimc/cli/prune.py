"""`grimc prune`: BCR-prune a dense ONNX model, optionally retrain it, or let measured
kernel latency and per-layer sensitivity choose block and rate (`--auto`)."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from grimc.cli.common import TARGET_HELP, add_quiet_option, parse
from grimc.fileio import write_atomically
from grimc.progress import progress
from grimc.prune.auto import (
    KernelTimer,
    budget,
    check_target,
    choose,
    find_units,
    measure_latency,
    measure_model,
    parse_candidates,
)
from grimc.prune.model import prune_model, serialize
from grimc.prune.plan import Options
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
    add_quiet_option(parser)
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
    train = parser.add_argument_group(
        "retraining (needs PyTorch: pip install 'grimc[train]')",
        "The model is translated to torch modules, pruned and retrained with the pruned "
        "weights held at zero, and written back as the same ONNX graph. Data: .npz with one "
        "array per model input (or 'x'), samples on axis 0, labels 'y' (integers: "
        "cross-entropy, floats: MSE).")
    train.add_argument("--retrain", action="store_true", help="retrain on --data with labels")
    train.add_argument("--distill", action="store_true",
                       help="retrain without labels: match the dense model's outputs on --data")
    train.add_argument("--data", metavar="FILE.npz", help="training inputs (and labels 'y')")
    train.add_argument("--val", metavar="FILE.npz", help="validation data, reported per epoch")
    train.add_argument("--epochs", type=int, default=10, metavar="N", help="default 10")
    train.add_argument("--method", choices=("finetune", "gradual", "admm"), default="finetune",
                       help="finetune: prune, then masked fine-tuning (default); gradual: cubic "
                       "schedule; admm: ADMM regularization, then prune and fine-tune")
    train.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (1e-3)")
    train.add_argument("--batch-size", type=int, default=32, metavar="N", help="default 32")
    train.add_argument("--seed", type=int, default=0, help="default 0")
    auto = parser.add_argument_group(
        "compiler-aware choice (needs PyTorch and --val)",
        "--auto picks each layer's block and rate (or dense) from the measured latency of "
        "its compiled kernels on --target and its sensitivity: the --val loss increase when "
        "that layer alone is pruned one-shot. Latency is the sum of the model's kernel times "
        "(one thread, symbolic dims at 1). With --retrain/--distill the choice is retrained.")
    auto.add_argument("--auto", action="store_true",
                      help="choose block and rate per layer (instead of --block/--rate/--config)")
    auto.add_argument("--latency-target", type=float, metavar="MS",
                      help="model latency to meet, in milliseconds")
    auto.add_argument("--speedup", type=float, metavar="X",
                      help="model latency to meet: the measured dense latency / X")
    auto.add_argument("--auto-blocks", metavar="LIST",
                      help="candidate blocks (default 4x16,8x16,16x32,8x8,16x16)")
    auto.add_argument("--auto-rates", metavar="LIST", help="candidate rates (default 2,4,8,16)")
    auto.add_argument("--target", default=None,
                      help=f"where kernels are timed, one this machine runs: {TARGET_HELP}")
    auto.add_argument("--rounds", type=int, default=40, metavar="N",
                      help="interleaved timing rounds, median taken (default 40)")
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


def main(argv: Sequence[str]) -> int:
    """`grimc prune`: see build_parser()."""
    args = parse(build_parser(), argv)
    if args.output is not None and not args.output.parent.exists():
        raise PruneError(f"{label_text(str(args.output))}: output directory does not exist")
    options = _cli_options(args)
    training = args.retrain or args.distill
    if args.retrain and args.distill:
        raise PruneError("--retrain/--distill: give one of them (--distill needs no labels)")
    if training != (args.data is not None):
        raise PruneError("--data goes with --retrain or --distill" if args.data else
                         f"{'--retrain' if args.retrain else '--distill'} needs --data FILE.npz")
    if args.val and not (training or args.auto):
        raise PruneError("--val goes with --retrain, --distill or --auto")
    _check_auto(args, options)
    choice = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PruneWarning)
        if args.auto:
            choice, result, retrained = _auto(args, options)
        elif training:
            retrained = _retrain(args, options)
            result = retrained.result
        else:
            result = prune_model(args.model, config=args.config, include=args.include,
                                 exclude=args.exclude, label=args.model, **options)
    for note in result.warnings:
        print(f"grimc: warning: {note}", file=sys.stderr)
    print(result.table())
    if choice is not None:
        print(choice.table())
    if training and retrained.dense_val is not None and retrained.pruned_val is not None:
        print(_val_line(retrained.dense_val, retrained.pruned_val))
    if args.output is not None:
        write_atomically(args.output, serialize(result.model))
    return 0


def _check_auto(args: argparse.Namespace, options: dict) -> None:
    """--auto's flags: one target, --val data, no fixed block/rate/config."""
    if not args.auto:
        for flag, value in (("--latency-target", args.latency_target), ("--speedup", args.speedup),
                            ("--auto-blocks", args.auto_blocks), ("--auto-rates", args.auto_rates)):
            if value is not None:
                raise PruneError(f"{flag} goes with --auto")
        return
    fixed = [f for f, key in (("--block", "block"), ("--rate", "rate"), ("--col-rate", "col_rate"),
                              ("--row-rate", "row_rate")) if key in options]
    if args.config:
        fixed.append("--config")
    if fixed:
        raise PruneError(f"--auto chooses block and rate per layer; drop {fixed[0]}")
    check_target(args.latency_target, args.speedup)
    if args.val is None:
        raise PruneError("--auto needs --val FILE.npz (validation data to measure each layer's "
                         "sensitivity)")
    if args.rounds < 1:
        raise PruneError(f"--rounds {args.rounds}: need at least 1")


def _auto(args: argparse.Namespace, options: dict):
    """Measure, choose, then prune (and retrain) with the choice; time the result."""
    try:
        from grimc.train.retrain import load_samples
        from grimc.train.sensitivity import sensitivity
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            raise
        raise PruneError("--auto needs PyTorch: pip install 'grimc[train]'") from None
    from grimc.frontend.load import load_model

    model, _ = load_model(args.model, args.model)
    resolved = Options.resolve(None, args.include, args.exclude, where="grimc prune", **options)
    units = find_units(model, resolved)
    if not units:
        raise PruneError(f"{label_text(args.model)}: --auto: no layer to prune (the rules keep "
                         "every layer dense)")
    cands = parse_candidates(args.auto_blocks, args.auto_rates,
                             bool(resolved.base.get("balanced", True)))
    val = load_samples(args.val, model, "--val", need_labels=False)
    steps = len(units) * len(cands) + 1 + len(cands) + args.rounds
    with KernelTimer(target=args.target, rounds=args.rounds) as timer:
        with progress(steps, "measuring") as bar:
            _, sens = sensitivity(model, units, cands, val, resolved, bar.step)
            latency = measure_latency(model, units, cands, resolved, timer, bar.step)
        choice = choose(units, latency, sens, budget(latency, args.latency_target, args.speedup))
        prune_options = {**options, "config": choice.config(), "include": args.include,
                         "exclude": args.exclude}
        retrained = None
        if args.retrain or args.distill:
            retrained = _retrain(args, prune_options)
            result = retrained.result
        else:
            result = prune_model(model, label=args.model, **prune_options)
        with progress(args.rounds, "timing the result") as bar:
            choice.measured_ms, choice.measured_dense_ms = measure_model(result.model, model,
                                                                         timer, bar.step)
    return choice, result, retrained


def _retrain(args: argparse.Namespace, options: dict):
    try:
        from grimc.train.fit import EpochLog
        from grimc.train.retrain import retrain_file
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            raise
        flag = "--retrain" if args.retrain else "--distill"
        raise PruneError(f"{flag} needs PyTorch: pip install 'grimc[train]'") from None
    prune_options = {"config": args.config, "include": args.include, "exclude": args.exclude,
                     **options}
    log = EpochLog(args.epochs)
    try:
        return retrain_file(args.model, args.data, val=args.val, distill=args.distill,
                            method=args.method, epochs=args.epochs, lr=args.lr,
                            batch_size=args.batch_size, seed=args.seed, label=args.model,
                            log=log, prune_options=prune_options)
    finally:
        log.close()


def _val_line(dense: tuple[float, float | None], pruned: tuple[float, float | None]) -> str:
    if dense[1] is not None and pruned[1] is not None:
        return (f"validation accuracy: dense {100 * dense[1]:.2f}% -> pruned "
                f"{100 * pruned[1]:.2f}% (loss {dense[0]:.4f} -> {pruned[0]:.4f})")
    return f"validation loss: dense {dense[0]:.4f} -> pruned {pruned[0]:.4f}"
