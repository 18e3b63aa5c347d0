"""`grimc tune MODEL`: measure kernel schedules and record the winners (docs/tuning.md).

    grimc tune model.onnx --target host-avx512 --threads 2 --budget 5m
    grimc tune --export records.jsonl        grimc tune --import records.jsonl
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from grimc.cli.common import (
    add_build_options,
    add_input_value_option,
    add_quiet_option,
    compile_options,
    parse,
)
from grimc.errors import GrimcError

UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_budget(text: str) -> float:
    """`90`, `90s`, `5m`, `1.5h` -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise GrimcError(f"--budget {text!r}: expected a positive duration such as 90s, 5m or 1h")
    return float(match.group(1)) * UNITS[match.group(2) or "s"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grimc tune",
        description="Measure candidate schedules of every kernel of a model and record the "
        "fastest in the tuning database, which later compiles use.",
    )
    parser.add_argument("model", nargs="?", help="ONNX model file (.onnx) or grimc IR (.mlir)")
    add_quiet_option(parser)
    parser.add_argument(
        "--input-shape", action="append", default=[], metavar="NAME=SHAPE",
        help="fix a dynamic input shape, e.g. input=1x3x224x224 (repeatable)",
    )
    add_input_value_option(parser)
    add_build_options(parser)
    parser.add_argument("--budget", default="5m", help="time for the whole model (default 5m)")
    parser.add_argument(
        "--db", type=Path, default=None,
        help="tuning database (default $XDG_CACHE_HOME/grimc/tuning.sqlite)",
    )
    parser.add_argument("--export", type=Path, metavar="FILE",
                        help="write every record as JSON lines to FILE (- for stdout) and stop")
    parser.add_argument("--import", dest="import_", type=Path, metavar="FILE",
                        help="add the records of a JSON-lines FILE to the database and stop")
    parser.add_argument("--jobs", type=int, default=2, help="parallel clang builds (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the search (default 0)")
    parser.add_argument(
        "--learned", action=argparse.BooleanOptionalAction, default=None,
        help="rank bred candidates with a learned cost model (default: when xgboost is "
        "installed, grimc[learned])",
    )
    parser.add_argument(
        "--confirm", action=argparse.BooleanOptionalAction, default=None,
        help="check new winners inside the whole model and keep the default where they are "
        "not faster there (default: for wall time on this machine's CPU)",
    )
    parser.add_argument(
        "--ray", nargs="?", const="local", metavar="ADDRESS",
        help="measure on a Ray cluster (auto, or its address; without one: a local instance "
        "of --jobs CPUs); instruction counts and --device timings only (needs grimc[ray])",
    )
    return parser


def main(argv: Sequence[str]) -> int:
    from grimc.tunedb import TuningDB

    args = parse(build_parser(), argv)
    if args.model is None and args.ray is not None and Path(args.ray).is_file():
        args.model, args.ray = args.ray, "local"  # `--ray model.onnx`: the model, not an address
    budget = parse_budget(args.budget)
    if args.jobs < 1:
        raise GrimcError(f"--jobs {args.jobs}: must be >= 1")
    db = TuningDB(args.db)
    db.check()
    if args.export is not None:
        text = "".join(line + "\n" for line in db.export_lines())
        if str(args.export) == "-":
            sys.stdout.write(text)
        else:
            from grimc.fileio import write_atomically

            write_atomically(args.export, text)
        return 0
    if args.import_ is not None:
        try:
            lines = args.import_.read_text().splitlines()
        except OSError as exc:
            raise GrimcError(f"--import {args.import_}: {exc.strerror}") from None
        count = db.import_lines(lines, str(args.import_))
        print(f"imported {count} records into {db.path}", file=sys.stderr)
        return 0
    if args.model is None:
        raise GrimcError("grimc tune: give a model (or --export / --import)")
    if not Path(args.model).is_file():
        raise GrimcError(f"{args.model}: no such file")
    from grimc.tune.tuner import format_report, tune_model

    report = tune_model(
        args.model, compile_options(args), db, budget, seed=args.seed, jobs=args.jobs, ray=args.ray,
        learned=args.learned, confirm=args.confirm,
        log=lambda line: print(f"grimc tune: {line}", file=sys.stderr),
    )
    print(format_report(report))
    print(f"database: {db.path}", file=sys.stderr)
    return 130 if report.interrupted else 0
