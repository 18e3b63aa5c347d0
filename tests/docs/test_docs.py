"""The design notes live in docs/: nothing in the repository cites a file outside it."""

from __future__ import annotations

import subprocess

from tests.conftest import REPO


def test_no_citation_of_design_notes_outside_the_repository() -> None:
    tracked = subprocess.run(
        ["git", "grep", "-n", "-I", "DESIGN" + ".md", "--", ".", ":!tests/docs/test_docs.py"],
        cwd=REPO, capture_output=True, text=True,
    )
    assert tracked.returncode == 1, f"cite docs/ instead:\n{tracked.stdout}"


def test_docs_links_resolve() -> None:
    """Every relative link of README.md and docs/*.md names an existing file."""
    import re

    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name}: broken link {target}"
