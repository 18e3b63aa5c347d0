"""Progress of long work (passes, clang builds, benches, pruning) on stderr.

    with progress(len(passes), "passes") as bar:
        for p in passes:
            bar.step(p.name)        # shows "passes [2/7] bcr-detect"
            ...

A bar (tqdm, when installed: `pip install 'grimc[progress]'`) or one plain line
per step, only when stderr is a terminal: piped or redirected output stays
clean. `set_quiet(True)` (the CLI's `-q/--quiet`) silences it everywhere.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any, TextIO

_quiet = False


def set_quiet(quiet: bool) -> None:
    """Silence (or re-enable) all progress output of this process."""
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    """Whether `set_quiet(True)` is in force (for reporters that are not a Progress)."""
    return _quiet


class Progress:
    """Reports steps of one task; a no-op unless `stream` is a terminal and not quiet."""

    def __init__(
        self, total: int | None, desc: str, stream: TextIO | None = None,
        use_tqdm: bool | None = None,
    ) -> None:
        self.total, self.desc = total, desc
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = not _quiet and bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = 0
        self._bar: Any = None
        if self.enabled and use_tqdm is not False:
            try:
                from tqdm import tqdm
            except ImportError:
                if use_tqdm:
                    raise
            else:
                self._bar = tqdm(total=total, desc=desc, file=self.stream, leave=False)

    def step(self, label: str) -> None:
        """Start the next step (the previous one is done)."""
        if not self.enabled:
            return
        if self._bar is not None:
            if self.done:
                self._bar.update(1)
            self._bar.set_postfix_str(label)
        else:
            of = f"/{self.total}" if self.total else ""
            self.stream.write(f"{self.desc} [{self.done + 1}{of}] {label}\n")
            self.stream.flush()
        self.done += 1

    def close(self) -> None:
        if self._bar is not None:
            self._bar.update(max(0, self.done - self._bar.n))
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def progress(total: int | None, desc: str, stream: TextIO | None = None) -> Progress:
    """A Progress for `total` steps (None: unknown) titled `desc`."""
    return Progress(total, desc, stream)
