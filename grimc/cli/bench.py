"""`grimc bench`: median latency of a compiled model over repeated runs, after warm-up."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from grimc.cli.common import add_build_options, add_frontend_options, compile_options, parse
from grimc.runner import RunStats
from grimc.target import resolve_target


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grimc bench",
        description="Median latency of a compiled model over repeated runs, after warm-up.",
    )
    add_frontend_options(parser)
    add_build_options(parser)
    parser.add_argument("--repeat", type=int, default=20, help="timed runs (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed for random inputs")
    parser.add_argument(
        "--profile", action="store_true",
        help="time every kernel (-DGRIMC_PROFILE) and print a per-layer table",
    )
    return parser


def summary(model: str, target: str, stats: RunStats, device: str | None = None) -> str:
    """One line of results; an emulated run reports no latency or GFLOP/s as if measured."""
    where = f"{model}: target {target}{f' on {device}' if device else ''}, {stats.threads} thread(s)"
    if resolve_target(target).needs_qemu and device is None:
        return (
            f"{where}: emulated under qemu-aarch64, {stats.median_ms:.3f} ms median wall time "
            f"over {stats.repeat} runs is emulator time, not device latency, and gives no "
            f"throughput; peak arena {stats.arena_bytes} bytes. For NEON kernel costs count instructions "
            "(python -m benches.icount) or bench on an aarch64 device"
        )
    gflops = stats.flops / (stats.median_ms * 1e6) if stats.median_ms > 0 else 0.0
    return (
        f"{where}, median {stats.median_ms:.3f} ms over {stats.repeat} runs, "
        f"{gflops:.1f} GFLOP/s, peak arena {stats.arena_bytes} bytes"
    )


def main(argv: Sequence[str]) -> int:
    from grimc.artifacts import run_compiled

    args = parse(build_parser(), argv)
    options = compile_options(args, profile=args.profile)
    result = run_compiled(args.model, options, {}, seed=args.seed, repeat=max(1, args.repeat))
    print(summary(args.model, result.gen.target, result.stats, options.device))
    if args.profile:
        from grimc.runner import format_profile, stats_profile

        print(format_profile(stats_profile(result.gen, result.stats)))
    return 0
