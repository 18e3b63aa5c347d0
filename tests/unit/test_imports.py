"""The driver layer has no import cycles and nothing imports the CLI.

Two checks: a static one over every `import grimc...` in the source (lazy
function-level imports included: a cycle through a lazy import is still a
cycle in the design), and a dynamic one that imports each module alone in a
fresh process and looks at what got loaded.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

# Where each grimc package's sources live (dialects/ installs as grimc.dialects).
SOURCE_ROOTS = {"grimc": REPO / "grimc", "grimc.dialects": REPO / "dialects"}


def module_files() -> dict[str, Path]:
    """Every grimc module name -> its file."""
    found = {}
    for package, root in SOURCE_ROOTS.items():
        for path in sorted(root.rglob("*.py")):
            parts = [p for p in path.relative_to(root).with_suffix("").parts if p != "__init__"]
            found[".".join([package, *parts])] = path
    return found


def grimc_imports(path: Path) -> set[str]:
    """The grimc modules a file imports, outside `if TYPE_CHECKING:` blocks."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n == "grimc" or n.startswith("grimc.")}


def top_level(module: str) -> str:
    """grimc.emit.codegen -> grimc.emit; grimc.driver -> grimc.driver; grimc -> grimc."""
    return ".".join(module.split(".")[:2])


def import_graph() -> dict[str, set[str]]:
    """Top-level module -> the top-level modules it imports."""
    graph: dict[str, set[str]] = {}
    for module, path in module_files().items():
        src = top_level(module)
        graph.setdefault(src, set())
        graph[src].update(top_level(t) for t in grimc_imports(path) if top_level(t) != src)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the DFS stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_top_level_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    assert {"grimc.cli", "grimc.driver", "grimc.artifacts", "grimc.opt"} <= graph.keys()
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_no_module_outside_the_cli_imports_it() -> None:
    offenders = {
        module: sorted(t for t in grimc_imports(path) if top_level(t) == "grimc.cli")
        for module, path in module_files().items()
        if top_level(module) != "grimc.cli"
    }
    assert {m: t for m, t in offenders.items() if t} == {}


# Each child is forked from a process that has loaded only third-party packages
# (so the import of xdsl/numpy/onnx, and of torch for the grimc.train modules, is
# paid once), never a grimc module. Without torch the grimc.train children fail
# as they would alone.
_IMPORT_EACH = r"""
import importlib, os, sys
import jinja2, numpy, onnx, xdsl.dialects.builtin, xdsl.ir, xdsl.passes  # noqa: F401
try:
    import torch  # noqa: F401
except ImportError:
    pass
assert not [m for m in sys.modules if m.startswith("grimc")], "parent loaded grimc"
for name in sys.argv[1:]:
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(name)
        except BaseException as exc:
            print(f"{name}: import failed: {type(exc).__name__}: {exc}")
            os._exit(1)
        cli = sorted(m for m in sys.modules if m == "grimc.cli" or m.startswith("grimc.cli."))
        if cli:
            print(f"{name}: imports {', '.join(cli)}")
            os._exit(1)
        os._exit(0)
    if os.waitpid(pid, 0)[1]:
        print(f"{name}: the importing process failed")
"""


def test_each_module_imports_alone_without_the_cli() -> None:
    modules = [m for m in module_files() if top_level(m) != "grimc.cli"]
    assert "grimc.driver" in modules and "grimc.backend" in modules
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH, *modules],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "", proc.stdout


def test_cli_subcommand_modules_import_alone() -> None:
    modules = [m for m in module_files() if top_level(m) == "grimc.cli" and m != "grimc.cli.__main__"]
    assert {"grimc.cli.compile", "grimc.cli.run", "grimc.cli.bench", "grimc.cli.inspect",
            "grimc.cli.passes", "grimc.cli.prune"} <= set(modules)
    code = "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)"
    proc = subprocess.run(
        [sys.executable, "-c", code, *modules], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
