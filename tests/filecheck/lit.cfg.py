"""lit configuration for grimc's FileCheck tests (run from pytest: test_lit.py)."""

import os
import shutil

import lit.formats

config.name = "grimc"  # noqa: F821
config.test_format = lit.formats.ShTest(execute_external=False)  # noqa: F821
config.suffixes = [".mlir"]  # noqa: F821
config.test_source_root = os.path.dirname(__file__)  # noqa: F821
config.excludes = ["Inputs"]  # noqa: F821

# The console scripts live beside the interpreter that runs lit.
config.environment["PATH"] = os.pathsep.join(  # noqa: F821
    [os.path.dirname(shutil.which("grimc-opt") or ""), os.environ.get("PATH", "")]
)
for var in ("HOME", "PYTHONPATH", "TMPDIR"):
    if var in os.environ:
        config.environment[var] = os.environ[var]  # noqa: F821
