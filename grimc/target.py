"""The one description of a compile target: ISA, registers, caches, clang flags, templates.

A `Target` is resolved once from `--target` (a short name, a clang triple, or
`native`, the default, which detects the running CPU), attached to the module
as a `#sched.target<...>` attribute (grimc.dialects.sched), and read from
there by the schedule pass, the lowerings, the templates and the toolchain.
Nothing else in grimc keeps a table of registers, vector widths or flags.

The cost-model fields (registers, caches) of a named target are fixed, not
measured, so the same `--target` gives the same code on every machine;
`native` only chooses which named target the running CPU can execute.
x86 levels are named (`-march=x86-64-v3`): clang's `-march=native` is
misdetected on some virtual machines.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field, replace
from pathlib import Path

from grimc.errors import GrimcError

HOST_ARCH = platform.machine()
CPUINFO = Path("/proc/cpuinfo")
NATIVE = "native"
DEFAULT_TARGET = NATIVE
"""The target every entry point uses unless told otherwise: the running CPU."""

KIB = 1024

X86_64_V2 = frozenset({"cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"})
X86_64_V3 = X86_64_V2 | {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}
X86_64_V4 = X86_64_V3 | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}
"""/proc/cpuinfo flags of the x86-64 micro-architecture levels clang compiles for."""


class TargetError(GrimcError):
    """An unknown or unusable target name."""


@dataclass(frozen=True)
class Target:
    """Everything grimc needs to know about a target, in one immutable record.

    `vector_width` is fp32 lanes per SIMD register; `registers` the vector
    registers the ISA names (the register tile budgets come from it);
    `l1_bytes`/`l2_bytes` the cache sizes the cost model blocks for; `cores`
    the cores of the machine (0: unknown, a cross target). `families` is the
    template lookup order (`templates/<family>/<kind>.c.j2`, `c` last; `opencl`
    alone for the OpenCL target). `libs` are linked into its programs.
    `detected` says how `native` chose this target ("" when named).
    """

    name: str
    isa: str
    triple: str
    arch: str  # spelled as platform.machine() spells the host
    level: str  # what clang is told to generate for (x86-64-v3, armv8-a, baseline)
    vector_width: int
    registers: int
    register_bits: int
    cflags: tuple[str, ...]
    uses_lld: bool  # cross targets link with lld (the host keeps the system linker)
    isa_macro: str | None  # predefined by clang under `cflags`; None: portable C only
    families: tuple[str, ...]
    libs: tuple[str, ...] = ()  # linked into every program built for the target
    l1_bytes: int = 32 * KIB
    l2_bytes: int = 1024 * KIB
    cores: int = field(default=0, compare=False)
    detected: str = field(default="", compare=False)

    @property
    def vw(self) -> int:
        return self.vector_width

    @property
    def family(self) -> str:
        return self.families[0]

    @property
    def runs_natively(self) -> bool:
        """True when this machine can execute the target's binaries directly."""
        return self.arch == HOST_ARCH

    @property
    def needs_qemu(self) -> bool:
        """True for aarch64 binaries on a non-aarch64 host (user-mode emulation)."""
        return self.arch == "aarch64" and not self.runs_natively

    def describe(self) -> str:
        """One line for the user: which target, what it means, how it was chosen."""
        if self.family == "opencl":
            return (
                f"target {self.name}: {self.level} kernels (float{self.vector_width} weight "
                f"loads at most) on the OpenCL device, host code for {self.triple}"
            )
        text = (
            f"target {self.name}: {self.isa} ({self.level}), {self.vector_width} floats x "
            f"{self.registers} vector registers, {self.triple}"
        )
        return f"{text}; {self.detected}" if self.detected else text


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            name="host", isa="avx2", triple="x86_64-linux-gnu", arch="x86_64",
            level="x86-64-v3", vector_width=8, registers=16, register_bits=256,
            cflags=("-march=x86-64-v3",), uses_lld=False, isa_macro="__AVX2__",
            families=("avx", "c"),
        ),
        Target(
            name="host-avx512", isa="avx512", triple="x86_64-linux-gnu", arch="x86_64",
            level="x86-64-v4", vector_width=16, registers=32, register_bits=512,
            cflags=("-march=x86-64-v4",), uses_lld=False, isa_macro="__AVX512F__",
            families=("avx", "c"),
        ),
        Target(
            name="aarch64", isa="neon", triple="aarch64-linux-gnu", arch="aarch64",
            level="armv8-a", vector_width=4, registers=32, register_bits=128,
            cflags=("--target=aarch64-linux-gnu",), uses_lld=True, isa_macro="__ARM_NEON",
            families=("neon", "c"),
        ),
        Target(
            name="generic", isa="scalar", triple=f"{HOST_ARCH}-linux-gnu", arch=HOST_ARCH,
            level="baseline", vector_width=1, registers=16, register_bits=32,
            cflags=(), uses_lld=False, isa_macro=None, families=("c",),
        ),
        Target(
            name="opencl", isa="opencl", triple=f"{HOST_ARCH}-linux-gnu", arch=HOST_ARCH,
            level="OpenCL C 1.2", vector_width=8, registers=64, register_bits=256,
            cflags=(), uses_lld=False, isa_macro=None, families=("opencl",),
            libs=("OpenCL",),
        ),
    )
}  # fmt: skip
"""The named targets. NEON: 32 q registers of 4 floats; portable C: the
compiler's own registers, modeled as 16 scalars. OpenCL: kernels in OpenCL C
(templates/opencl) on the device the host runtime selects, driven by portable C
for this machine (no -march: it runs wherever the device's driver does);
`vector_width` is the widest weight vector (float8, a register group of 8 rows)
the default schedule gives a work-item, `registers` the float registers
modeled per work-item."""

TRIPLE_ALIASES: dict[str, str] = {
    "x86_64-linux-gnu": "host",
    "x86_64-unknown-linux-gnu": "host",
    "x86_64-pc-linux-gnu": "host",
    "aarch64-linux-gnu": "aarch64",
    "aarch64-unknown-linux-gnu": "aarch64",
    "arm64": "aarch64",
}


def cpu_flags(cpuinfo: str) -> tuple[str, ...]:
    """The feature words of the first CPU in /proc/cpuinfo text (x86 `flags`, arm `Features`)."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return tuple(value.split())
    return ()


def native_name(flags: str | tuple[str, ...], machine: str = HOST_ARCH) -> tuple[str, str]:
    """(named target, why) for a CPU with these feature flags on this machine type.

    x86-64: every x86-64-v4 feature (AVX-512 F/BW/CD/DQ/VL) -> host-avx512, every
    x86-64-v3 one (AVX2, FMA, BMI...) -> host, else generic; aarch64 (NEON is
    baseline) -> aarch64; anything else -> generic (portable C).
    """
    have = set(flags.split() if isinstance(flags, str) else flags)
    if machine in ("x86_64", "amd64", "AMD64"):
        if X86_64_V4 <= have:
            return "host-avx512", "x86-64-v4 (AVX-512 F/BW/CD/DQ/VL) detected"
        if X86_64_V3 <= have:
            missing = sorted({"avx512f", "avx512bw", "avx512dq", "avx512vl"} - have)
            return "host", f"x86-64-v3 (AVX2, FMA) detected, no {', '.join(missing)}"
        missing = sorted(X86_64_V3 - have)
        return "generic", f"x86-64 without {', '.join(missing)}: portable C"
    if machine in ("aarch64", "arm64"):
        return "aarch64", "aarch64 (NEON) detected"
    return "generic", f"{machine}: no SIMD target, portable C"


def detect_native(cpuinfo: Path = CPUINFO, machine: str = HOST_ARCH) -> Target:
    """The named target of the running CPU, from /proc/cpuinfo (its cores filled in)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        text = ""
    name, why = native_name(cpu_flags(text), machine)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return replace(TARGETS[name], cores=cores or 0, detected=f"native: {why}")


_native: Target | None = None


def native_target() -> Target:
    """`detect_native()`, computed once per process."""
    global _native
    if _native is None:
        _native = detect_native()
    return _native


def known_names() -> list[str]:
    return [NATIVE, *TARGETS, *TRIPLE_ALIASES]


def resolve_target(target: str | Target | None = None) -> Target:
    """A short name, clang triple or `native` (None: the default) -> its Target.

    A Target passes through unchanged.
    """
    if isinstance(target, Target):
        return target
    key = (DEFAULT_TARGET if target is None else target).strip().lower()
    if key == NATIVE:
        return native_target()
    name = TRIPLE_ALIASES.get(key, key)
    if name not in TARGETS:
        raise TargetError(f"unknown target '{target}'; accepted: {', '.join(known_names())}")
    return TARGETS[name]
