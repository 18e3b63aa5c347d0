"""The tuning database: measured kernel schedules that compiling reuses.

`grimc tune` (grimc.tune) writes one record per tuning task; every compile
reads them (the `schedule-apply-tuned` pass). This module sits below both, so
the pass does not import the tuner. A record is keyed by

- the task: the op kind, its operand/result shapes and attributes, the
  signature of its BCR encodings (block, kept rows/columns, density), the
  schedule attribute key (`sched`, `sched.proj`), hashed (`task_signature`);
- the target: name plus the CPU features it was measured on, or for OpenCL
  the device (`target_key`);
- the thread count;
- a version key: grimc's version, the kernel templates and runtime, and the
  clang version (`version_key`). Records under another version key are stale:
  never returned, so a new grimc or clang re-tunes.

The file is SQLite, by default $XDG_CACHE_HOME/grimc/tuning.sqlite
(~/.cache/grimc/...); $GRIMC_TUNING_DB names another default file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from xdsl.dialects.builtin import StringAttr
from xdsl.ir import Operation

from grimc import __version__
from grimc.errors import GrimcError
from grimc.target import Target

IGNORED_ATTRS = frozenset({"sched", "sched.proj", "sched.phase", "graph.layer"})
"""Attributes that do not change what a kernel computes or how fast it can be."""
WEIGHT_KEYS = frozenset({"weights", "w_weights", "r_weights"})
"""Properties naming a weight in the store (the same layer shape under another name)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    signature TEXT NOT NULL,
    target TEXT NOT NULL,
    threads INTEGER NOT NULL,
    version TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    shapes TEXT NOT NULL,
    knobs TEXT NOT NULL,
    default_knobs TEXT NOT NULL,
    metric TEXT NOT NULL,
    cost REAL NOT NULL,
    default_cost REAL NOT NULL,
    noise REAL NOT NULL,
    measured INTEGER NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (signature, target, threads, version)
)
"""
COLUMNS = (
    "signature", "target", "threads", "version", "kind", "key", "shapes", "knobs",
    "default_knobs", "metric", "cost", "default_cost", "noise", "measured", "created",
)


class TuningDBError(GrimcError):
    """The tuning database cannot be opened, read or imported."""


# --------------------------------------------------------------------------
# keys


def op_shapes(op: Operation) -> list[list[int]]:
    """The shapes of the op's operands and results (scalars as [])."""
    out = []
    for value in [*op.operands, *op.results]:
        shape = getattr(value.type, "get_shape", None)
        out.append(list(shape()) if shape else [])
    return out


def task_signature(op: Operation, key: str) -> str:
    """A hash of what the kernel of `op`'s schedule `key` depends on (module doc).

    Two layers with the same shapes, attributes and encoding signature (not the
    same weights) share a signature: one measurement serves both."""
    props = {
        name: str(value)
        for name, value in op.properties.items()
        if not (name in WEIGHT_KEYS and isinstance(value, StringAttr))
    }
    attrs = {n: str(v) for n, v in op.attributes.items() if n not in IGNORED_ATTRS}
    text = json.dumps(
        [op.name, key, op_shapes(op), sorted(props.items()), sorted(attrs.items())]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def cpu_features() -> str:
    """A hash of this CPU's model and flags (from /proc/cpuinfo; empty elsewhere)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return ""
    wanted = ("model name", "flags", "features", "cpu part", "cpu implementer")
    seen = sorted({ln.strip() for ln in lines if ln.split(":")[0].strip().lower() in wanted})
    return hashlib.sha256("\n".join(seen).encode()).hexdigest()[:12]


def metric_for(target: Target, device: str | None = None) -> str:
    """What a tuner measures for `target`: kernel time where it runs (here or on a
    remote device), else instructions executed under qemu (wall time under
    emulation means nothing)."""
    return "time_ms" if target.runs_natively or device is not None else "icount"


def target_key(
    target: Target, metric: str, device: str | None = None, precision: str = "fp32"
) -> str:
    """The target's name, plus where wall time was measured: the host CPU, the
    remote device's spec (grimc.device), or for OpenCL the device the runtime
    selects ("<platform> | <device>", grimc.opencl_device) and the precision
    when it is not fp32 (half storage changes what is fastest).

    Instruction counts (aarch64 under qemu) do not depend on the host's CPU.
    OpenCL without a device: NoOpenCLDevice."""
    if target.family == "opencl":
        from grimc.opencl_device import selected_device

        name = target.name if precision == "fp32" else f"{target.name}/{precision}"
        return f"{name}@{selected_device()}"
    if device is not None:
        return f"{target.name}@{device}"
    return target.name if metric == "icount" else f"{target.name}@{cpu_features()}"


def _tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@functools.cache
def version_key() -> str:
    """A hash of grimc's version, its templates and C runtime, and clang's version.

    $GRIMC_TUNING_VERSION replaces grimc's version in the hash (a test forcing
    every record stale)."""
    from importlib import resources

    from grimc.toolchain import find_clang

    parts = [os.environ.get("GRIMC_TUNING_VERSION", __version__)]
    for package in ("grimc.templates", "grimc.runtime_c"):
        parts.append(_tree_hash(Path(str(resources.files(package)))))
    try:
        proc = subprocess.run([str(find_clang()), "--version"], capture_output=True, text=True)
        parts.append(proc.stdout.splitlines()[0] if proc.stdout else "")
    except (GrimcError, OSError):
        parts.append("no-clang")
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def default_path() -> Path:
    """$GRIMC_TUNING_DB, else $XDG_CACHE_HOME/grimc/tuning.sqlite (~/.cache if unset)."""
    if os.environ.get("GRIMC_TUNING_DB"):
        return Path(os.environ["GRIMC_TUNING_DB"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "grimc" / "tuning.sqlite"


# --------------------------------------------------------------------------
# records


@dataclass(frozen=True)
class Record:
    """One tuned task: the schedule knobs to use and what was measured."""

    signature: str
    target: str
    threads: int
    version: str
    kind: str
    """The schedule attribute's name, e.g. sched.spmm."""
    key: str
    shapes: str
    """JSON of op_shapes: for finding the nearest tuned neighbours of a new task."""
    knobs: str
    """JSON of the winning knobs (the default's when nothing beat it)."""
    default_knobs: str
    metric: str
    """time_ms (kernel time on this machine) or icount (instructions under qemu)."""
    cost: float
    default_cost: float
    noise: float
    """Relative noise floor of the measurement (0 for instruction counts)."""
    measured: int
    """Candidates measured for this record."""
    created: float = 0.0

    @property
    def tuned(self) -> bool:
        """A measured winner differs from the default."""
        return json.loads(self.knobs) != json.loads(self.default_knobs)


class TuningDB:
    """A SQLite file of Records; created on first write, never on read."""

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path) if path is not None else default_path()
        self._conn: sqlite3.Connection | None = None

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        if self._conn is not None:
            return self._conn
        if not self.path.exists():
            if not create:
                return None
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise TuningDBError(f"{self.path}: cannot create: {exc.strerror}") from None
        if self.path.exists() and self.path.is_dir():
            raise TuningDBError(f"{self.path}: is a directory, not a tuning database")
        try:
            conn = sqlite3.connect(self.path)
            conn.execute(SCHEMA)
            conn.commit()
        except sqlite3.Error as exc:
            raise TuningDBError(f"{self.path}: not a usable tuning database ({exc})") from None
        self._conn = conn
        return conn

    def check(self) -> None:
        """Open (creating) the file now: an unusable path is one error before any work."""
        self._connect(create=True)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def lookup(self, signature: str, target: str, threads: int) -> Record | None:
        """The current-version record of a task, if any (stale ones are never returned)."""
        conn = self._connect(create=False)
        if conn is None:
            return None
        row = conn.execute(
            f"SELECT {', '.join(COLUMNS)} FROM records WHERE signature = ? AND target = ? "
            "AND threads = ? AND version = ?",
            (signature, target, threads, version_key()),
        ).fetchone()
        return Record(*row) if row else None

    def has_target(self, prefix: str) -> bool:
        """Whether any record's target key starts with `prefix` (e.g. "opencl")."""
        conn = self._connect(create=False)
        if conn is None:
            return False
        row = conn.execute(
            "SELECT 1 FROM records WHERE substr(target, 1, ?) = ? LIMIT 1", (len(prefix), prefix)
        ).fetchone()
        return row is not None

    def neighbours(self, kind: str, key: str, target: str, threads: int) -> list[Record]:
        """Current-version records of the same schedule kind: seeds for a new shape."""
        conn = self._connect(create=False)
        if conn is None:
            return []
        rows = conn.execute(
            f"SELECT {', '.join(COLUMNS)} FROM records WHERE kind = ? AND key = ? AND target = ? "
            "AND threads = ? AND version = ?",
            (kind, key, target, threads, version_key()),
        ).fetchall()
        return [Record(*row) for row in rows]

    def put(self, record: Record) -> None:
        conn = self._connect(create=True)
        assert conn is not None
        values = asdict(record)
        values["created"] = values["created"] or time.time()
        conn.execute(
            f"INSERT OR REPLACE INTO records ({', '.join(COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in COLUMNS)})",
            [values[c] for c in COLUMNS],
        )
        conn.commit()

    def records(self) -> Iterator[Record]:
        conn = self._connect(create=False)
        if conn is None:
            return
        for row in conn.execute(f"SELECT {', '.join(COLUMNS)} FROM records ORDER BY created"):
            yield Record(*row)

    def export_lines(self) -> Iterator[str]:
        """Every record as one JSON line (stale ones too: the version key travels with them)."""
        for record in self.records():
            yield json.dumps(asdict(record), sort_keys=True)

    def import_lines(self, lines: Iterable[str], source: str) -> int:
        """Add records from JSON lines (`export_lines`); returns how many."""
        records = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                fields = json.loads(line)
                records.append(Record(**{c: fields[c] for c in COLUMNS}))
            except (ValueError, KeyError, TypeError):
                raise TuningDBError(
                    f"{source}:{number}: not a tuning record (expected one JSON object "
                    f"with {', '.join(COLUMNS)})"
                ) from None
        for record in records:
            self.put(record)
        return len(records)
