"""A real, non-editable `pip install .` into a fresh venv works on its own.

Dialects, templates and runtime_c live at the top of the repository but must be
installed inside the grimc package; this catches a missing package-data entry.
"""

from __future__ import annotations

import fnmatch
import subprocess
import venv
from pathlib import Path

import tomllib

from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "small_cnn.onnx"


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=900)


def test_non_editable_install_in_fresh_venv(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    install = _run([str(py), "-m", "pip", "install", "-q", str(REPO)], tmp_path)
    assert install.returncode == 0, install.stderr[-3000:]
    where = _run([str(py), "-c", "import grimc, grimc.dialects.graph as g; print(grimc.__file__, g.__file__)"], tmp_path)
    assert where.returncode == 0, where.stderr
    assert str(env_dir) in where.stdout and str(REPO) not in where.stdout
    data = _run(
        [str(py), "-c",
         "from importlib import resources as r; "
         "t = r.files('grimc.templates'); c = r.files('grimc.runtime_c'); "
         "print((t / 'model.c.j2').is_file(), (c / 'include' / 'grimc_rt.h').is_file(), "
         "(c / 'src' / 'pool.c').is_file())"],
        tmp_path,
    )
    assert data.stdout.split() == ["True", "True", "True"], data.stdout + data.stderr
    ir = _run([str(env_dir / "bin" / "grimc"), str(EXAMPLE), "--emit=ir"], tmp_path)
    assert ir.returncode == 0, ir.stderr
    parsed = subprocess.run(
        [str(env_dir / "bin" / "xdsl-opt")], input=ir.stdout, capture_output=True, text=True,
        cwd=tmp_path, timeout=300,
    )
    assert parsed.returncode == 0, parsed.stderr
    assert "graph.conv" in parsed.stdout


def test_every_data_folder_is_a_declared_package_with_its_files() -> None:
    """setuptools warns (one screenful per folder) and may drop files when a folder
    of package data is not a declared package: each folder of templates/ and
    runtime_c/ that grimc reads at run time must be one, its files matched."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages, data = set(config["packages"]), config["package-data"]
    roots = {"grimc.templates": REPO / "templates", "grimc.runtime_c": REPO / "runtime_c"}
    for package, root in roots.items():
        for folder in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
            rel = folder.relative_to(root)
            if rel.parts[:1] == ("tests",) or "__pycache__" in rel.parts:
                continue  # the runtime's own C tests are not installed
            name = ".".join([package, *rel.parts])
            files = [f.name for f in folder.iterdir() if f.is_file() and f.suffix != ".py"]
            if not files:
                continue
            assert name in packages, f"{folder}: add {name} to [tool.setuptools] packages"
            for f in files:
                assert any(fnmatch.fnmatch(f, pat) for pat in data.get(name, [])), (
                    f"{folder / f}: no [tool.setuptools.package-data] pattern of {name} matches"
                )
