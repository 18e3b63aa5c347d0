"""Build helper for the qemu TCG plugin that counts instructions in address ranges.

    python -m benches.qemu_plugin        # builds benches/qemu_plugin/build/libinsn_range.so

The plugin (insn_range.c) declares the few qemu plugin API prototypes it uses,
because Debian 12's qemu 7.2 ships no qemu-plugin.h; it is built for the host
(qemu loads it with dlopen), so the host clang is all it needs.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "insn_range.c"
DEFAULT_OUT = HERE / "build" / "libinsn_range.so"


class PluginError(RuntimeError):
    """The plugin could not be built or loaded."""


def build_plugin(out: Path = DEFAULT_OUT) -> Path:
    """Build the plugin if it is missing or older than its source; return its path."""
    if out.exists() and out.stat().st_mtime >= SOURCE.stat().st_mtime:
        return out
    from grimc.toolchain import find_clang

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp.so")  # parallel builders (Ray workers) do not collide
    cmd = [str(find_clang()), "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC",
           "-shared", str(SOURCE), "-o", str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise PluginError(f"building {SOURCE.name} failed: {proc.stderr.strip()[-500:]}")
    tmp.replace(out)
    return out


def plugin_args(plugin: Path, ranges_file: Path, counts_file: Path) -> list[str]:
    """The qemu command-line options that load the plugin."""
    return ["-plugin", f"{plugin},ranges={ranges_file},out={counts_file}"]


def read_counts(counts_file: Path) -> dict[str, int]:
    """{range name: instructions, ..., "total": all ranges} from the plugin's output."""
    counts: dict[str, int] = {}
    for line in counts_file.read_text().splitlines():
        name, _, value = line.rpartition(" ")
        if name:
            counts[name] = counts.get(name, 0) + int(value)
    return counts
