"""The cost of a candidate under qemu: instructions executed inside its kernels.

Wall time under emulation means nothing, but instruction counts are exact and
deterministic. The candidate's harness executable runs under qemu-aarch64 with
the TCG plugin of benches/qemu_plugin, which counts instructions inside the
kernel functions and `<prefix>_run` (kernels called once are inlined there),
as `python -m benches.icount` counts them. The plugin ships with the
repository, not with an installed grimc: tuning by instruction count runs from
a source checkout.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from grimc.emit.codegen import GeneratedModel
from grimc.errors import GrimcError

RUNS = 2
"""The harness runs the model twice (a warm-up and REPEAT = 1): counts are halved."""


def count_instructions(
    gen: GeneratedModel, exe: Path, inputs: list[np.ndarray], threads: int
) -> tuple[int, list[np.ndarray]]:
    """Instructions per model run inside the kernels, and the outputs."""
    repo = Path(__file__).resolve().parents[2]  # a source checkout (editable install)
    if (repo / "benches" / "qemu_plugin").is_dir() and str(repo) not in sys.path:
        sys.path.append(str(repo))
    try:
        from benches.icount import kernel_ranges
        from benches.qemu_plugin import build_plugin, plugin_args, read_counts
    except ImportError:
        raise GrimcError(
            "tuning by instruction count needs the qemu plugin of the grimc repository "
            "(benches/qemu_plugin): run grimc tune from a source checkout"
        ) from None
    from grimc.toolchain import AARCH64_SYSROOT, find_qemu

    work = exe.parent
    in_dir, out_dir = work / "in", work / "out"
    for d in (in_dir, out_dir):
        d.mkdir(exist_ok=True)
    for i, x in enumerate(inputs):
        x.astype("<f4").tofile(in_dir / f"input{i}.bin")
    ranges_file, counts_file = work / "ranges.txt", work / "counts.txt"
    ranges = kernel_ranges(exe, f"{gen.prefix}_run")
    ranges_file.write_text("".join(f"{s:x} {e:x} {n}\n" for n, s, e in ranges))
    counts_file.unlink(missing_ok=True)
    blob = work / f"{gen.prefix}.weights.bin"
    cmd = [str(find_qemu()), "-L", str(AARCH64_SYSROOT),
           *plugin_args(build_plugin(), ranges_file, counts_file),
           str(exe), str(blob), str(threads), "1", str(in_dir), str(out_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0 or not counts_file.exists():
        raise GrimcError(f"qemu run failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
    outputs = [
        np.fromfile(out_dir / f"output{i}.bin", dtype="<f4").reshape(d.shape)
        for i, d in enumerate(gen.outputs)
    ]
    return read_counts(counts_file)["total"] // RUNS, outputs
