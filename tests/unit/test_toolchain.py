"""grimc.toolchain: target resolution, clang builds, qemu runs, error reporting.

Missing tools FAIL these tests (CI installs them and must never skip silently);
set GRIMC_ALLOW_SKIP=1 to turn that into a skip on a machine without them.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
from pathlib import Path

import pytest

from grimc import toolchain
from grimc.target import TARGETS, TargetError, resolve_target
from grimc.toolchain import (
    ToolchainError,
    build_executable,
    build_shared,
    compile_object,
    describe_toolchain,
    find_clang,
    find_qemu,
    require_build_tools,
    require_run_tools,
    run_executable,
)

PTHREAD_FLOATS_C = r"""
#include <math.h>
#include <pthread.h>
#include <stdio.h>

typedef struct { const float *x; int n; float sum; } Job;

static void *partial_sum(void *arg) {
    Job *job = arg;
    for (int i = 0; i < job->n; ++i) job->sum += sqrtf(job->x[i]);
    return NULL;
}

int main(int argc, char **argv) {
    float x[8] = {1, 4, 9, 16, 25, 36, 49, 64};
    Job jobs[2] = {{x, 4, 0.0f}, {x + 4, 4, 0.0f}};
    pthread_t threads[2];
    for (int t = 0; t < 2; ++t) pthread_create(&threads[t], NULL, partial_sum, &jobs[t]);
    for (int t = 0; t < 2; ++t) pthread_join(threads[t], NULL);
    printf("sum=%.1f args=%d\n", jobs[0].sum + jobs[1].sum, argc - 1);
    if (argc > 1) printf("first=%s\n", argv[1]);
    return 0;
}
"""

DOT_C = r"""
float grimc_test_dot(const float *a, const float *b, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
}
"""

AARCH64_ELF_MACHINE = 183
PT_INTERP = 3


def _require(check, *args: object) -> None:
    """Run a tool check; a missing tool fails the test unless GRIMC_ALLOW_SKIP=1."""
    try:
        check(*args)
    except ToolchainError as exc:
        if os.environ.get("GRIMC_ALLOW_SKIP") == "1":
            pytest.skip(str(exc))
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def host_tools() -> None:
    _require(require_build_tools, "host")


@pytest.fixture
def cross_tools() -> None:
    _require(require_build_tools, "aarch64")
    _require(require_run_tools, "aarch64")


def _has_program_interpreter(elf: bytes) -> bool:
    """True when a 64-bit little-endian ELF has a PT_INTERP header (dynamically linked)."""
    phoff = int.from_bytes(elf[32:40], "little")
    entsize, count = int.from_bytes(elf[54:56], "little"), int.from_bytes(elf[56:58], "little")
    headers = (elf[phoff + i * entsize : phoff + i * entsize + 4] for i in range(count))
    return any(int.from_bytes(h, "little") == PT_INTERP for h in headers)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --- target resolution ---


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_short_names_resolve_to_themselves(name: str) -> None:
    assert resolve_target(name).name == name


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("x86_64-linux-gnu", "host"),
        ("x86_64-unknown-linux-gnu", "host"),
        ("aarch64-linux-gnu", "aarch64"),
        ("aarch64-unknown-linux-gnu", "aarch64"),
        ("arm64", "aarch64"),
        (" AArch64 ", "aarch64"),
    ],
)
def test_triples_resolve(value: str, expected: str) -> None:
    assert resolve_target(value).name == expected


def test_target_facts() -> None:
    host, avx512, arm, generic = (resolve_target(n) for n in TARGETS)
    assert (host.registers, avx512.registers, arm.registers) == (16, 32, 32)
    assert (host.vector_width, host.isa_macro, host.cflags) == (
        8,
        "__AVX2__",
        ("-march=x86-64-v3",),
    )
    assert (avx512.vector_width, avx512.cflags) == (16, ("-march=x86-64-v4",))
    assert (arm.vector_width, arm.triple, arm.uses_lld) == (4, "aarch64-linux-gnu", True)
    assert (generic.vector_width, generic.isa_macro, generic.cflags) == (1, None, ())
    assert resolve_target(arm) is arm


def test_target_spec_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        resolve_target("host").vector_width = 4  # type: ignore[misc]


def test_unknown_target_names_value_and_lists_accepted() -> None:
    with pytest.raises(TargetError) as info:
        resolve_target("riscv64")
    message = str(info.value)
    assert "'riscv64'" in message and "host-avx512" in message and "arm64" in message
    assert "native" in message
    assert "\n" not in message


# --- discovery ---


def test_grimc_cc_missing_binary_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIMC_CC", "/nonexistent/clang-99")
    with pytest.raises(ToolchainError, match=r"GRIMC_CC=/nonexistent/clang-99: no such executable"):
        find_clang()


def test_grimc_qemu_missing_binary_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIMC_QEMU", "no-such-qemu")
    with pytest.raises(ToolchainError, match=r"GRIMC_QEMU=no-such-qemu"):
        find_qemu()


def test_missing_clang_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GRIMC_CC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    toolchain._find_tool.cache_clear()
    try:
        with pytest.raises(ToolchainError, match=r"apt-get install clang-19 lld-19"):
            find_clang()
    finally:
        toolchain._find_tool.cache_clear()


def test_describe_toolchain(host_tools: None) -> None:
    info = describe_toolchain()
    clang = info["clang"]
    assert isinstance(clang, dict) and Path(clang["path"]).is_file()
    assert "clang version" in clang["version"]
    assert set(info) == {"host", "clang", "lld", "qemu", "aarch64_sysroot"}


# --- host builds ---


def test_native_program_with_floats_and_pthreads(host_tools: None, tmp_path: Path) -> None:
    src = _write(tmp_path / "prog.c", PTHREAD_FLOATS_C)
    exe = build_executable([src], tmp_path / "out" / "prog", "host")
    proc = run_executable(exe, ["hello"], "host")
    assert proc.stdout == "sum=36.0 args=1\nfirst=hello\n"


@pytest.mark.parametrize("name", [n for n in TARGETS if TARGETS[n].isa_macro])
def test_target_flags_enable_the_isa_macro(host_tools: None, tmp_path: Path, name: str) -> None:
    _require(require_build_tools, name)
    macro = TARGETS[name].isa_macro
    src = _write(tmp_path / "isa.c", f"#ifndef {macro}\n#error no {macro}\n#endif\nint x;\n")
    assert compile_object(src, tmp_path / "isa.o", name).is_file()


def test_host_shared_library_loads_with_ctypes(host_tools: None, tmp_path: Path) -> None:
    src = _write(tmp_path / "dot.c", DOT_C)
    lib = ctypes.CDLL(str(build_shared([src], tmp_path / "libdot.so", "host")))
    lib.grimc_test_dot.restype = ctypes.c_float
    lib.grimc_test_dot.argtypes = [ctypes.POINTER(ctypes.c_float)] * 2 + [ctypes.c_int]
    a = (ctypes.c_float * 4)(1, 2, 3, 4)
    b = (ctypes.c_float * 4)(5, 6, 7, 8)
    assert lib.grimc_test_dot(a, b, 4) == pytest.approx(70.0)


def test_objects_merge_and_link(host_tools: None, tmp_path: Path) -> None:
    parts = [
        _write(tmp_path / "one.c", "int one(void);\nint one(void) { return 1; }\n"),
        _write(tmp_path / "two.c", "int two(void);\nint two(void) { return 2; }\n"),
    ]
    obj = compile_object(parts, tmp_path / "parts.o", "host", defines={"UNUSED": None})
    main = _write(
        tmp_path / "main.c",
        "#include <stdio.h>\nint one(void); int two(void);\n"
        'int main(void) { printf("%d\\n", one() + two() + VALUE); return 0; }\n',
    )
    exe = build_executable([main, obj], tmp_path / "main", "host", defines={"VALUE": 39})
    assert run_executable(exe).stdout == "42\n"


def test_builds_are_deterministic_across_directories(host_tools: None, tmp_path: Path) -> None:
    text = "#include <assert.h>\nint main(int c, char **v) { (void)v; assert(c > 0); return 0; }\n"
    outputs = []
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        src = _write(tmp_path / name / "prog.c", text)
        outputs.append(build_executable([src], tmp_path / name / "prog", "host").read_bytes())
    assert outputs[0] == outputs[1]
    assert str(tmp_path).encode() not in outputs[0]


# --- failures ---


def test_compile_error_carries_the_diagnostic(host_tools: None, tmp_path: Path) -> None:
    src = _write(tmp_path / "bad.c", "int f(void) { return undeclared_thing; }\n")
    with pytest.raises(ToolchainError) as info:
        build_shared([src], tmp_path / "bad.so", "host")
    message = str(info.value)
    assert "bad.c:1" in message and "undeclared_thing" in message
    assert "\n" not in message
    assert "command: " in info.value.details and "-Werror" in info.value.details
    assert not (tmp_path / "bad.so").exists()


def test_warnings_are_errors_unless_werror_is_off(host_tools: None, tmp_path: Path) -> None:
    src = _write(tmp_path / "warn.c", "int f(int unused_arg) { return 0; }\n")
    with pytest.raises(ToolchainError, match="unused_arg"):
        compile_object(src, tmp_path / "warn.o", "host")
    assert compile_object(src, tmp_path / "warn.o", "host", werror=False).is_file()


def test_link_error_names_the_symbol(host_tools: None, tmp_path: Path) -> None:
    src = _write(tmp_path / "link.c", "void missing_fn(void);\nint main(void) { missing_fn(); }\n")
    with pytest.raises(ToolchainError, match="missing_fn"):
        build_executable([src], tmp_path / "link", "host")


def test_failed_run_reports_status_and_stderr(host_tools: None, tmp_path: Path) -> None:
    src = _write(
        tmp_path / "fail.c",
        '#include <stdio.h>\nint main(void) { fprintf(stderr, "bad input\\n"); return 3; }\n',
    )
    exe = build_executable([src], tmp_path / "fail", "host")
    with pytest.raises(ToolchainError, match=r"fail exited with status 3: bad input"):
        run_executable(exe)
    assert run_executable(exe, check=False).returncode == 3


def test_crash_and_timeout_are_reported(host_tools: None, tmp_path: Path) -> None:
    src = _write(
        tmp_path / "crash.c",
        "#include <signal.h>\n#include <unistd.h>\n"
        "int main(int c, char **v) { (void)v; if (c > 1) sleep(30); raise(SIGSEGV); }\n",
    )
    exe = build_executable([src], tmp_path / "crash", "host")
    with pytest.raises(ToolchainError, match="killed by SIGSEGV"):
        run_executable(exe)
    with pytest.raises(ToolchainError, match=r"timed out after 0.5 s"):
        run_executable(exe, ["sleep"], timeout=0.5)


def test_sanitized_program_catches_overflow(host_tools: None, tmp_path: Path) -> None:
    src = _write(
        tmp_path / "san.c",
        "#include <stdlib.h>\n"
        "int main(int c, char **v) {\n"
        "    (void)v; int *p = malloc(4 * sizeof(int)); p[c + 2] = 1;\n"
        "    int r = p[0] * 0; free(p); return r;\n}\n",
    )
    exe = build_executable([src], tmp_path / "san", "host", sanitize=("address", "undefined"))
    assert run_executable(exe).returncode == 0
    with pytest.raises(ToolchainError, match="SUMMARY: AddressSanitizer: heap-buffer-overflow"):
        run_executable(exe, ["overflow"])


def test_sanitizers_refuse_static_and_emulated_builds(tmp_path: Path) -> None:
    src = _write(tmp_path / "san.c", "int main(void) { return 0; }\n")
    for target, static in (("host", True), ("aarch64", False)):
        with pytest.raises(ToolchainError, match="native dynamic build"):
            build_executable([src], tmp_path / "san", target, static=static, sanitize=("address",))


def test_missing_sanitizer_runtime_names_the_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = _write(
        tmp_path / "clang-fake",
        '#!/bin/sh\nif [ "$1" = --version ]; then echo "clang version 19.1.7"; exit 0; fi\n'
        'echo "ld: cannot find .../libclang_rt.asan.a: No such file" >&2; exit 1\n',
    )
    fake.chmod(0o755)
    monkeypatch.setenv("GRIMC_CC", str(fake))
    src = _write(tmp_path / "san.c", "int main(void) { return 0; }\n")
    with pytest.raises(ToolchainError, match="install libclang-rt-19-dev"):
        build_executable([src], tmp_path / "san", "host", sanitize=("address",))


# --- aarch64 under qemu ---


@pytest.mark.parametrize("static", [False, True], ids=["dynamic", "static"])
def test_aarch64_program_runs_under_qemu(cross_tools: None, tmp_path: Path, static: bool) -> None:
    src = _write(tmp_path / "prog.c", PTHREAD_FLOATS_C)
    exe = build_executable([src], tmp_path / "prog", "aarch64", static=static)
    image = exe.read_bytes()
    assert int.from_bytes(image[18:20], "little") == AARCH64_ELF_MACHINE
    assert _has_program_interpreter(image) != static
    proc = run_executable(exe, ["neon"], "aarch64-linux-gnu")
    assert proc.stdout == "sum=36.0 args=1\nfirst=neon\n"


def test_aarch64_shared_library_builds(cross_tools: None, tmp_path: Path) -> None:
    src = _write(tmp_path / "dot.c", DOT_C)
    lib = build_shared([src], tmp_path / "libdot.so", "aarch64")
    assert int.from_bytes(lib.read_bytes()[18:20], "little") == AARCH64_ELF_MACHINE


def test_aarch64_failure_under_qemu_is_reported(cross_tools: None, tmp_path: Path) -> None:
    src = _write(
        tmp_path / "fail.c",
        '#include <stdio.h>\nint main(void) { fprintf(stderr, "arm says no\\n"); return 5; }\n',
    )
    exe = build_executable([src], tmp_path / "fail", "aarch64")
    with pytest.raises(ToolchainError, match="exited with status 5: arm says no") as info:
        run_executable(exe, target="aarch64")
    assert "qemu-aarch64" in info.value.details
