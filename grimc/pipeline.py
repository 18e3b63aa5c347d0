"""Pass pipelines and MLIR-style IR instrumentation.

The driver runs named passes from the lazy registry (`grimc.universe.PASSES`),
verifies the module after each one, and can print or dump the IR around any
pass: dumps go to stderr (stdout stays the artifact), headed exactly like
MLIR's `// -----// IR Dump After <pass> //----- //`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import TextIO

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.printer import Printer
from xdsl.utils.arg_spec import ArgSpecParseError, parse_pipeline
from xdsl.utils.exceptions import VerifyException

from grimc.errors import GrimcError
from grimc.progress import progress
from grimc.universe import PASSES, make_context
from grimc.weights import rebind, save_beside

GRAPH_PIPELINE: tuple[str, ...] = (
    "graph-constant-fold",
    "graph-bn-fold",
    "graph-fuse-elementwise",
    "graph-fuse-activations",
    "graph-dce",
)
"""Graph-level clean-up run before any sparse or code-generation pass."""

BCR_PIPELINE: tuple[str, ...] = GRAPH_PIPELINE + ("bcr-detect", "bcr-reorder", "schedule-select")
"""The graph clean-up, then BCR detection, row reordering and the kernel schedules."""


class PassFailure(GrimcError):
    """A pass produced IR that does not verify: a compiler bug, not user error."""

    exit_code = 3


@dataclass
class Instrumentation:
    """What to print or dump while the pipeline runs (MLIR flag semantics)."""

    print_before: frozenset[str] = frozenset()
    print_after: frozenset[str] = frozenset()
    print_after_all: bool = False
    print_before_all: bool = False
    dump_dir: Path | None = None
    generic: bool = False
    time_passes: bool = False
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    timings: list[tuple[str, float]] = field(default_factory=list)

    def wants_before(self, name: str) -> bool:
        return self.print_before_all or name in self.print_before

    def wants_after(self, name: str) -> bool:
        return self.print_after_all or name in self.print_after


def render_ir(module: ModuleOp, generic: bool = False) -> str:
    """The textual IR of `module`, ending with a newline."""
    out = StringIO()
    Printer(stream=out, print_generic_format=generic).print_op(module)
    out.write("\n")
    return out.getvalue()


def resolve_passes(names: Sequence[str]) -> list[ModulePass]:
    """Instantiate passes from specs such as `bcr-reorder{threads=2}`.

    An unknown pass or a bad option is a user error (one line).
    """
    passes: list[ModulePass] = []
    for spec in names:
        try:
            (parsed,) = parse_pipeline(spec)
        except (ValueError, ArgSpecParseError) as exc:
            raise GrimcError(f"bad pass spec '{spec}': {' '.join(str(exc).split())}") from None
        if parsed.name not in PASSES:
            known = ", ".join(sorted(PASSES))
            raise GrimcError(f"unknown pass '{parsed.name}'; available passes: {known}")
        try:
            passes.append(PASSES[parsed.name]().from_pass_spec(parsed))
        except (ValueError, TypeError) as exc:
            raise GrimcError(f"pass '{parsed.name}': {exc}") from None
    return passes


def check_pass_names(names: Sequence[str], what: str) -> None:
    """Each name must be a registered pass (`what` names the option in the message)."""
    for name in names:
        if name not in PASSES:
            known = ", ".join(sorted(PASSES))
            raise GrimcError(f"{what}={name}: unknown pass; available passes: {known}")


def parse_pass_list(spec: str) -> list[str]:
    """`a,b{x=1 y=2},c` -> ["a", "b{x=1 y=2}", "c"] (commas inside braces kept)."""
    items, depth, current = [], 0, ""
    for char in spec:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += char
    items.append(current.strip())
    return [item for item in items if item]


class PipelineRunner:
    """Runs passes in order with verification and instrumentation."""

    def __init__(self, instrumentation: Instrumentation | None = None, ctx: Context | None = None):
        self.inst = instrumentation or Instrumentation()
        self.ctx = ctx or make_context()
        self._dump_index = 0

    def run(self, module: ModuleOp, pass_names: Sequence[str]) -> ModuleOp:
        passes = resolve_passes(pass_names)  # bad names or options: nothing written
        if self.inst.dump_dir is not None:
            try:
                self.inst.dump_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise GrimcError(
                    f"--ir-dump-dir {self.inst.dump_dir}: cannot create the directory "
                    f"({exc.strerror or exc})"
                ) from None
            rebind(module, self.inst.dump_dir / "weights.npz")
            self._dump(module, "Before", "pipeline")
        try:
            with progress(len(passes), "passes") as bar:
                for pass_ in passes:
                    bar.step(pass_.name)
                    self._run_one(module, pass_)
        finally:  # the dumps so far replay even when a pass failed
            if self.inst.dump_dir is not None:
                save_beside(module, self.inst.dump_dir / "weights.npz")
        if self.inst.time_passes:
            self._report_times()
        return module

    def _run_one(self, module: ModuleOp, pass_: ModulePass) -> None:
        name = pass_.name
        if self.inst.wants_before(name):
            self._emit(module, f"// -----// IR Dump Before {name} //----- //")
        start = time.perf_counter()
        pass_.apply(self.ctx, module)
        self.inst.timings.append((name, time.perf_counter() - start))
        try:
            module.verify()
        except VerifyException as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "verification failed"
            raise PassFailure(f"IR does not verify after pass '{name}': {first}") from None
        if self.inst.wants_after(name):
            self._emit(module, f"// -----// IR Dump After {name} //----- //")
        if self.inst.dump_dir is not None:
            self._dump(module, "After", name)

    def _emit(self, module: ModuleOp, header: str) -> None:
        self.inst.stream.write(header + "\n")
        self.inst.stream.write(render_ir(module, self.inst.generic))
        self.inst.stream.write("\n")

    def _dump(self, module: ModuleOp, when: str, name: str) -> None:
        assert self.inst.dump_dir is not None
        path = self.inst.dump_dir / f"{self._dump_index:02d}_{when.lower()}_{name}.mlir"
        self._dump_index += 1
        header = f"// -----// IR Dump {when} {name} //----- //\n"
        path.write_text(header + render_ir(module, self.inst.generic))

    def _report_times(self) -> None:
        total = sum(t for _, t in self.inst.timings) or 1e-12
        out = self.inst.stream
        out.write("===-------------------------------------------------------------------------===\n")
        out.write("                         ... Pass execution timing report ...\n")
        out.write("===-------------------------------------------------------------------------===\n")
        out.write(f"  Total Execution Time: {total:.4f} seconds\n\n")
        out.write("  ----Wall Time----  ----Name----\n")
        for name, seconds in self.inst.timings:
            out.write(f"  {seconds:8.4f} ({100 * seconds / total:5.1f}%)  {name}\n")
        out.write(f"  {total:8.4f} (100.0%)  Total\n")
