"""clang / lld / qemu discovery and invocation: the one place grimc runs a C compiler.

Every build (generated kernels, runtime tests, benchmarks, the tuner) goes through
here so that flags, determinism and error reporting are the same everywhere, and so
that the cross-compilation quirks of this toolchain are written down once:

- aarch64 always links with lld, and never with ``--sysroot``: lld then fails on
  glibc's linker script. clang finds the Debian cross libc on its own.
- There is no binfmt handler, so aarch64 programs run as
  ``qemu-aarch64 -L /usr/aarch64-linux-gnu prog``.
- ``-march=native`` is misdetected on the build VMs, so x86 targets name their level
  (grimc.target describes every target; `native` is detected from /proc/cpuinfo).
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from grimc.errors import GrimcError
from grimc.target import HOST_ARCH, Target, resolve_target

StrPath = str | os.PathLike[str]

AARCH64_SYSROOT = Path("/usr/aarch64-linux-gnu")
CLANG_NAMES = ("clang-19", "clang-18", "clang-17", "clang-16", "clang-15", "clang-14", "clang")
LLD_NAMES = ("ld.lld-19", "ld.lld-18", "ld.lld-17", "ld.lld-16", "ld.lld-15", "ld.lld-14", "ld.lld")
QEMU_NAMES = ("qemu-aarch64", "qemu-aarch64-static")
DETAIL_LINES = 20

CLANG_MISSING = "clang not found: install clang-19 (apt-get install clang-19 lld-19)"
LLD_MISSING = "ld.lld not found (needed for aarch64): install lld-19 (apt-get install lld-19)"
QEMU_MISSING = "qemu-aarch64 not found: install qemu-user (apt-get install qemu-user)"
SYSROOT_MISSING = (
    f"aarch64 cross libc not found in {AARCH64_SYSROOT}: install it "
    "(apt-get install libc6-dev-arm64-cross libgcc-12-dev-arm64-cross)"
)


class ToolchainError(GrimcError):
    """A tool is missing, or a build or run failed.

    str() is one line for the user; ``details`` holds the diagnostics and the
    command line for whoever debugs the generated code.
    """

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


class BuildError(ToolchainError):
    """clang rejected code that grimc wrote or ships: a grimc bug, not bad input."""

    exit_code = 70


# --- discovery (cached: each tool is looked up and probed once per process) ---


def find_clang() -> Path:
    """The C compiler: $GRIMC_CC if set, else the newest known clang on PATH."""
    return _find_tool("GRIMC_CC", os.environ.get("GRIMC_CC"), CLANG_NAMES, CLANG_MISSING)


def find_qemu() -> Path:
    """The aarch64 user-mode emulator: $GRIMC_QEMU if set, else qemu-aarch64 on PATH."""
    return _find_tool("GRIMC_QEMU", os.environ.get("GRIMC_QEMU"), QEMU_NAMES, QEMU_MISSING)


def find_lld() -> Path:
    """The lld that aarch64 links use; passed as --ld-path so any clang can use any lld."""
    return _find_lld(find_clang())


def check_aarch64_sysroot() -> Path:
    """The Debian cross libc that clang links against and qemu loads from."""
    if (
        not (AARCH64_SYSROOT / "include" / "stdio.h").is_file()
        or not (AARCH64_SYSROOT / "lib" / "libc.so.6").is_file()
    ):
        raise ToolchainError(SYSROOT_MISSING)
    return AARCH64_SYSROOT


def require_build_tools(target: str | Target) -> Target:
    """Fail early, with the package to install, if `target` cannot be built here."""
    spec = resolve_target(target)
    find_clang()
    if spec.uses_lld:
        find_lld()
        check_aarch64_sysroot()
    return spec


def require_run_tools(target: str | Target) -> Target:
    """Fail early, with the package to install, if `target` binaries cannot run here."""
    spec = resolve_target(target)
    if spec.needs_qemu:
        find_qemu()
        check_aarch64_sysroot()
    elif not spec.runs_natively:
        raise ToolchainError(f"{spec.name} binaries cannot run on this {HOST_ARCH} machine")
    return spec


def describe_toolchain() -> dict[str, object]:
    """Tool paths and versions for benchmark reports; missing optional tools are None."""
    clang = find_clang()
    return {
        "host": HOST_ARCH,
        "clang": {"path": str(clang), "version": tool_version(clang)},
        "lld": _optional_tool(find_lld),
        "qemu": _optional_tool(find_qemu),
        "aarch64_sysroot": str(AARCH64_SYSROOT) if AARCH64_SYSROOT.is_dir() else None,
    }


@functools.cache
def tool_version(tool: Path) -> str:
    """First line of `tool --version`, e.g. 'Debian clang version 19.1.7 (3~deb12u1)'."""
    proc = subprocess.run(
        [str(tool), "--version"], capture_output=True, text=True, errors="replace", check=False
    )
    lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    return lines[0] if lines else "unknown"


def _optional_tool(find: Callable[[], Path]) -> dict[str, str] | None:
    try:
        path = find()
    except ToolchainError:
        return None
    return {"path": str(path), "version": tool_version(path)}


@functools.cache
def _find_tool(env_var: str, override: str | None, names: tuple[str, ...], missing: str) -> Path:
    if override:
        found = shutil.which(override)
        if found is None:
            raise ToolchainError(
                f"{env_var}={override}: no such executable (fix or unset {env_var})"
            )
        return Path(found)
    for name in names:
        found = shutil.which(name)
        if found is not None:
            return Path(found)
    raise ToolchainError(missing)


@functools.cache
def _find_lld(clang: Path) -> Path:
    # clang looks for ld.lld next to itself first; Debian only puts the
    # versioned ld.lld-N on PATH, which clang never tries on its own.
    own = subprocess.run(
        [str(clang), "-print-prog-name=ld.lld"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if os.path.isabs(own) and os.access(own, os.X_OK):
        return Path(own)
    for name in LLD_NAMES:
        found = shutil.which(name)
        if found is not None:
            return Path(found)
    raise ToolchainError(LLD_MISSING)


# --- building ---


def compile_object(
    sources: StrPath | Sequence[StrPath],
    out: StrPath,
    target: str | Target | None = None,
    *,
    opt_level: int | str = 3,
    defines: Mapping[str, object] | None = None,
    include_dirs: Sequence[StrPath] = (),
    extra_flags: Sequence[str] = (),
    werror: bool = True,
) -> Path:
    """Compile C/asm to one relocatable object (several sources are merged with ld -r)."""
    srcs = _as_list(sources)
    spec = require_build_tools(target)
    mode = ["-c", "-fPIC"] if len(srcs) == 1 else ["-r", "-nostdlib", "-fPIC", *_linker(spec)]
    cmd = _command(spec, srcs, out, mode, opt_level, defines, include_dirs, extra_flags, werror)
    return _build(cmd, out)


def build_shared(
    sources: Sequence[StrPath],
    out: StrPath,
    target: str | Target | None = None,
    *,
    opt_level: int | str = 3,
    defines: Mapping[str, object] | None = None,
    include_dirs: Sequence[StrPath] = (),
    extra_flags: Sequence[str] = (),
    libs: Sequence[str] = (),
    werror: bool = True,
) -> Path:
    """Build a shared library; only host ones can be loaded by this Python (ctypes)."""
    srcs = _as_list(sources)
    spec = require_build_tools(target)
    mode = ["-shared", "-fPIC", *_linker(spec)]
    cmd = _command(spec, srcs, out, mode, opt_level, defines, include_dirs, extra_flags, werror)
    return _build([*cmd, *_libs(libs)], out)


def build_executable(
    sources: Sequence[StrPath],
    out: StrPath,
    target: str | Target | None = None,
    *,
    static: bool = False,
    sanitize: Sequence[str] = (),
    opt_level: int | str = 3,
    defines: Mapping[str, object] | None = None,
    include_dirs: Sequence[StrPath] = (),
    extra_flags: Sequence[str] = (),
    libs: Sequence[str] = (),
    werror: bool = True,
) -> Path:
    """Build a program; sanitizers (e.g. 'address', 'undefined') need a native dynamic build."""
    spec = resolve_target(target)
    checks = _sanitize_flags(spec, static, sanitize)
    srcs = _as_list(sources)
    require_build_tools(spec)
    mode = [*_linker(spec), *(["-static"] if static else []), *checks]
    cmd = _command(spec, srcs, out, mode, opt_level, defines, include_dirs, extra_flags, werror)
    return _build([*cmd, *_libs(libs)], out, sanitize=bool(sanitize))


def _as_list(sources: StrPath | Sequence[StrPath]) -> list[Path]:
    paths = [sources] if isinstance(sources, str | os.PathLike) else list(sources)
    if not paths:
        raise ToolchainError("nothing to build: no source files given")
    return [Path(p).absolute() for p in paths]


def compile_flags(spec: Target, opt_level: int | str = 3) -> list[str]:
    """The code-generation flags of every build for `spec` (no warnings, paths or mode)."""
    return [*spec.cflags, f"-O{opt_level}", "-std=c11", "-pthread"]


def link_flags(spec: Target, libs: Sequence[str] = ()) -> list[str]:
    """What a program or library for `spec` links with, as a user spells it (lld by name)."""
    return [*([LLD_FLAG] if spec.uses_lld else []), *_libs(libs)]


LLD_FLAG = "-fuse-ld=lld"


def _linker(spec: Target) -> list[str]:
    return [LLD_FLAG, f"--ld-path={find_lld()}"] if spec.uses_lld else []


def _libs(libs: Sequence[str]) -> list[str]:
    return [f"-l{lib}" for lib in libs] + ["-lm"]


def _sanitize_flags(spec: Target, static: bool, sanitize: Sequence[str]) -> list[str]:
    if not sanitize:
        return []
    if not spec.runs_natively or static:
        raise ToolchainError(
            f"sanitizers need a native dynamic build; {spec.name}"
            f"{' static' if static else ''} cannot use -fsanitize"
        )
    # no-recover: a finding must fail the run, not scroll past in a log.
    return [
        f"-fsanitize={','.join(sanitize)}",
        "-fno-sanitize-recover=all",
        "-fno-omit-frame-pointer",
        "-g",
    ]


def _command(
    spec: Target,
    sources: list[Path],
    out: StrPath,
    mode: list[str],
    opt_level: int | str,
    defines: Mapping[str, object] | None,
    include_dirs: Sequence[StrPath],
    extra_flags: Sequence[str],
    werror: bool,
) -> list[str]:
    includes = [Path(d).absolute() for d in include_dirs]
    return [
        str(find_clang()),
        *compile_flags(spec, opt_level),
        "-Wall",
        "-Wextra",
        *(["-Werror"] if werror else []),
        *(_define(k, v) for k, v in (defines or {}).items()),
        *(f"-I{d}" for d in includes),
        *_prefix_maps(sources, includes),
        *mode,
        *extra_flags,
        *map(str, sources),
        "-o",
        str(Path(out).absolute()),
    ]


def _define(name: str, value: object) -> str:
    return f"-D{name}" if value is None else f"-D{name}={value}"


def _prefix_maps(sources: list[Path], includes: list[Path]) -> list[str]:
    # Same sources in another directory must give the same bytes: __FILE__
    # (assert) and debug info would otherwise embed the build path. clang
    # applies the longest matching prefix, so the order here is cosmetic.
    dirs = sorted({str(p.parent) for p in sources} | {str(d) for d in includes})
    return [f"-ffile-prefix-map={d}=." for d in dirs]


def _build(cmd: list[str], out: StrPath, sanitize: bool = False) -> Path:
    out_path = Path(out).absolute()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SOURCE_DATE_EPOCH": os.environ.get("SOURCE_DATE_EPOCH", "0")}
    proc = subprocess.run(
        cmd, capture_output=True, text=True, errors="replace", env=env, check=False
    )
    if proc.returncode == 0:
        return out_path
    if sanitize and "libclang_rt" in proc.stderr:
        raise ToolchainError(
            f"sanitizer runtime missing for {Path(cmd[0]).name}: install "
            f"libclang-rt-{_major(cmd[0])}-dev",
            _details(proc.stderr, cmd),
        )
    raise BuildError(
        f"{Path(cmd[0]).name} failed building {out_path.name}: {_first_error(proc.stderr)} "
        "(code grimc generates or ships must build: this is a grimc bug)",
        _details(proc.stderr, cmd),
    )


def _major(clang: str) -> str:
    match = re.search(r"version (\d+)", tool_version(Path(clang)))
    return match.group(1) if match else "N"


_SOURCE_DIR = re.compile(r"(?<![\w.])/(?:[^\s/:]+/)+(?=[^\s/:]+:\d+)")
"""The folder part of `/tmp/.grimc-x/out.c:12:` in a diagnostic (a temporary folder)."""


def _first_error(stderr: str) -> str:
    lines = [_SOURCE_DIR.sub("", line.strip()) for line in stderr.splitlines() if line.strip()]
    # Prefer the compiler's or linker's own words over clang's "linker command failed".
    errors = [
        line
        for line in lines
        if ("error:" in line or "undefined reference" in line)
        and "linker command failed" not in line
    ]
    return (errors or lines or ["no diagnostics"])[0]


def _details(output: str, cmd: Sequence[str], tail: bool = False) -> str:
    lines = output.splitlines()
    shown = lines[-DETAIL_LINES:] if tail else lines[:DETAIL_LINES]
    return "\n".join([*shown, f"command: {shlex.join(cmd)}"])


# --- running ---


def run_executable(
    exe: StrPath,
    args: Sequence[StrPath] = (),
    target: str | Target | None = None,
    *,
    timeout: float | None = 600.0,
    cwd: StrPath | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a built program natively or under qemu; `env` adds to the current environment.

    With check (the default) a non-zero exit, a signal or a timeout raises
    ToolchainError carrying the tail of stderr.
    """
    spec = require_run_tools(target)
    exe_path = Path(exe).absolute()
    prefix = [str(find_qemu()), "-L", str(AARCH64_SYSROOT)] if spec.needs_qemu else []
    cmd = [*prefix, str(exe_path), *map(str, args)]
    run_env = {**os.environ, **(env or {})}
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            cwd=cwd,
            env=run_env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolchainError(
            f"{exe_path.name} timed out after {timeout:g} s",
            _details(_text(exc.stderr), cmd, tail=True),
        ) from None
    if check and proc.returncode != 0:
        raise ToolchainError(
            f"{exe_path.name} {_exit_reason(proc.returncode)}: {_run_summary(proc.stderr)}",
            _details(proc.stderr, cmd, tail=True),
        )
    return proc


def _text(data: str | bytes | None) -> str:
    # TimeoutExpired carries bytes even when the run asked for text.
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data or ""


def _exit_reason(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with status {returncode}"


def _run_summary(stderr: str) -> str:
    # Sanitizer reports end in a shadow-memory legend; their SUMMARY line is the news.
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    summaries = [line for line in lines if line.startswith("SUMMARY:")]
    return (summaries or lines[-1:] or ["no output on stderr"])[0]
