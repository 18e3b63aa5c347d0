"""What machine and software produced a benchmark report (goes into report.json)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

# The ISA flags that decide which kernels every engine can use.
KEY_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
             "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "asimd", "sve")
PACKAGES = ("onnxruntime", "torch", "mnn", "numpy", "onnx", "xdsl", "matplotlib")


def _cpuinfo() -> dict[str, str]:
    fields: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return fields
    for line in text.split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_flags() -> set[str]:
    info = _cpuinfo()
    return set(info.get("flags", info.get("Features", "")).split())


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def cpu_busy(seconds: float = 1.0) -> float | None:
    """Fraction of all CPUs busy over the next `seconds` (other processes' load)."""
    first = _cpu_times()
    time.sleep(seconds)
    second = _cpu_times()
    if first is None or second is None or second[1] == first[1]:
        return None
    return (second[0] - first[0]) / (second[1] - first[1])


def wait_for_quiet(max_busy: float, max_wait: float) -> float | None:
    """Wait (at most max_wait s) until the CPUs are less than max_busy busy; the last sample."""
    deadline = time.monotonic() + max_wait
    busy = cpu_busy()
    while busy is not None and busy > max_busy and time.monotonic() < deadline:
        busy = cpu_busy(2.0)
    return busy


def _caches() -> dict[str, str]:
    out: dict[str, str] = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        name = f"L{level}" + ({"Data": "d", "Instruction": "i"}.get(kind, ""))
        out[name] = size
    return out


def _mem_gib() -> float | None:
    try:
        match = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
    except OSError:
        return None
    return round(int(match.group(1)) / 2**20, 1) if match else None


def _os_name() -> str:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return platform.system()
    match = re.search(r'^PRETTY_NAME="?([^"\n]*)', text, re.M)
    return match.group(1) if match else platform.system()


def _git(*args: str) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _tools() -> dict[str, Any]:
    try:
        from grimc.toolchain import describe_toolchain

        return describe_toolchain()
    except Exception as exc:  # a report without tool versions is still a report
        return {"error": str(exc)}


def describe() -> dict[str, Any]:
    """CPU model, ISA flags, cores, caches, memory, OS and every relevant version."""
    info = _cpuinfo()
    flags = cpu_flags()
    commit = _git("rev-parse", "--short=12", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    commit = commit or os.environ.get("GRIMC_BENCH_COMMIT")  # a `git archive` export
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": info.get("model name") or platform.processor() or platform.machine(),
        "arch": platform.machine(),
        "vendor": info.get("vendor_id"),
        "cpu_family": info.get("cpu family"),
        "cpu_model": info.get("model"),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "hypervisor": "hypervisor" in flags,
        "key_flags": [f for f in KEY_FLAGS if f in flags],
        "flags": sorted(flags),
        "caches": _caches(),
        "memory_gib": _mem_gib(),
        "os": _os_name(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "grimc_commit": (commit or "?") + ("-dirty" if dirty else ""),
        "packages": _versions(),
        "toolchain": _tools(),
    }


def summary(m: dict[str, Any]) -> str:
    """One line for the report header."""
    caches = ", ".join(f"{k} {v}" for k, v in m.get("caches", {}).items())
    return (
        f"{m['cpu']} ({m['arch']}, {m['usable_cores']} cores"
        f"{', VM' if m.get('hypervisor') else ''}; {caches}; {m.get('memory_gib')} GiB), "
        f"{m['os']}, flags: {' '.join(m['key_flags'])}"
    )
