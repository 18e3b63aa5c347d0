"""What templates need to know about a target: template family and vector width."""

from __future__ import annotations

from dataclasses import dataclass


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


TEMPLATE_FAMILIES: dict[str, tuple[str, ...]] = {
    "host": ("avx", "c"),
    "host-avx512": ("avx", "c"),
    "aarch64": ("neon", "c"),
    "generic": ("c",),
}
_ISA = {"host": "avx2", "host-avx512": "avx512", "aarch64": "neon", "generic": "scalar"}


def emit_target(name: str) -> EmitTarget:
    """The EmitTarget for a toolchain target name or clang triple (grimc.toolchain)."""
    from grimc.toolchain import resolve_target

    spec = resolve_target(name)
    return EmitTarget(spec.name, TEMPLATE_FAMILIES[spec.name], spec.vector_width, _ISA[spec.name])
