"""What templates need to know about a target: template family and vector width."""

from __future__ import annotations

from dataclasses import dataclass

from grimc.errors import GrimcError


@dataclass(frozen=True)
class EmitTarget:
    """A code-generation target as seen by the templates (`t` in Jinja).

    `families` is the template lookup order: `templates/<family>/<kind>.c.j2`,
    most specific first; `c` (portable C) is always last. `vw` is the float
    vector width the templates unroll for; it must equal GRIMC_VW of
    runtime_c/include/grimc_simd.h under the target's compile flags.
    """

    name: str
    families: tuple[str, ...]
    vw: int
    isa: str

    @property
    def family(self) -> str:
        return self.families[0]


EMIT_TARGETS: dict[str, EmitTarget] = {
    "host": EmitTarget("host", ("avx", "c"), 8, "avx2"),
    "host-avx512": EmitTarget("host-avx512", ("avx", "c"), 16, "avx512"),
    "aarch64": EmitTarget("aarch64", ("neon", "c"), 4, "neon"),
    "generic": EmitTarget("generic", ("c",), 1, "scalar"),
}


def emit_target(name: str) -> EmitTarget:
    """The EmitTarget for a toolchain target name (see grimc.toolchain)."""
    try:
        return EMIT_TARGETS[name]
    except KeyError:
        known = ", ".join(EMIT_TARGETS)
        raise GrimcError(f"unknown target '{name}'; expected one of {known}") from None
