"""grimc.target: one Target per name, `native` detection, the #sched.target module attribute."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest
from xdsl.dialects.builtin import ModuleOp

from grimc.dialects.sched import (
    TARGET_ATTR,
    TargetAttr,
    attach_target,
    module_target_or,
    target_of,
)
from grimc.driver import compile_model, import_model, optimize
from grimc.opt import parse_mlir_file
from grimc.pipeline import render_ir
from grimc.target import (
    CPUINFO,
    TARGETS,
    X86_64_V3,
    X86_64_V4,
    TargetError,
    cpu_flags,
    detect_native,
    native_name,
    resolve_target,
)
from grimc.transforms.schedule_select import register_budget
from grimc.zoo import small_cnn

ZEN4_FLAGS = " ".join(sorted(X86_64_V4 | {"sse", "sse2", "avx512_bf16", "sha_ni"}))
HASWELL_FLAGS = " ".join(sorted(X86_64_V3 | {"sse", "sse2", "aes"}))
NEHALEM_FLAGS = "fpu sse sse2 ssse3 sse4_1 sse4_2 popcnt cx16"


@pytest.mark.parametrize(
    ("flags", "machine", "expected"),
    [
        (ZEN4_FLAGS, "x86_64", "host-avx512"),
        (HASWELL_FLAGS, "x86_64", "host"),
        # AVX-512F alone is not x86-64-v4 (no BW/DQ/VL: e.g. Knights Landing)
        (HASWELL_FLAGS + " avx512f avx512cd", "x86_64", "host"),
        # AVX2 without FMA is not x86-64-v3
        (HASWELL_FLAGS.replace("fma", "sse3"), "x86_64", "generic"),
        (NEHALEM_FLAGS, "x86_64", "generic"),
        ("fp asimd evtstrm aes pmull sha1 sha2 crc32", "aarch64", "aarch64"),
        ("", "aarch64", "aarch64"),
        ("rv64imafdc", "riscv64", "generic"),
    ],
)
def test_native_name_from_flags(flags: str, machine: str, expected: str) -> None:
    name, why = native_name(flags, machine)
    assert name == expected and why


def test_cpu_flags_reads_the_first_cpu() -> None:
    text = "processor\t: 0\nflags\t\t: fpu avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu\n"
    assert cpu_flags(text) == ("fpu", "avx2", "fma")
    assert cpu_flags("processor : 0\nFeatures : fp asimd\n") == ("fp", "asimd")
    assert cpu_flags("") == ()


def test_native_on_this_machine_matches_its_cpuinfo() -> None:
    native = detect_native()
    flags = set(cpu_flags(CPUINFO.read_text()))
    if platform.machine() == "x86_64" and X86_64_V4 <= flags:
        assert native.name == "host-avx512"  # this project's machines: the default is AVX-512
    assert native.name == native_name(tuple(flags), platform.machine())[0]
    assert native.detected.startswith("native: ") and native.cores >= 1
    assert resolve_target("native") == native and resolve_target(None) == native
    assert "native" in native.describe() and native.level in native.describe()


def test_missing_cpuinfo_falls_back_to_portable(tmp_path: Path) -> None:
    assert detect_native(tmp_path / "absent", "x86_64").name == "generic"


def test_register_budgets() -> None:
    budgets = {n: register_budget(t) for n, t in TARGETS.items()}
    assert (budgets["host"].accumulators, budgets["host"].max_rows) == (12, 4)
    assert (budgets["host-avx512"].accumulators, budgets["host-avx512"].max_vectors) == (24, 6)
    assert budgets["aarch64"] == budgets["host-avx512"]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_target_attribute_round_trips(name: str) -> None:
    module = ModuleOp([])
    target = attach_target(module, name)
    text = render_ir(module)
    assert f'#sched.target<name = "{name}"' in text
    parsed = parse_mlir_text(text)
    assert target_of(parsed) == target
    assert parsed.attributes[TARGET_ATTR] == module.attributes[TARGET_ATTR]


def parse_mlir_text(text: str) -> ModuleOp:
    from xdsl.parser import Parser

    from grimc.universe import make_context

    return Parser(make_context(), text).parse_module()


def test_edited_cost_fields_are_kept_and_checked() -> None:
    module = parse_mlir_text(
        'builtin.module attributes {sched.target = #sched.target<name = "aarch64", registers = 16>} {}'
    )
    target = target_of(module)
    assert target is not None and target.name == "aarch64" and target.registers == 16
    assert register_budget(target).accumulators == 12
    with pytest.raises(Exception, match="vector_width 4, not 8"):
        parse_mlir_text(
            'builtin.module attributes {sched.target = #sched.target<name = "aarch64", '
            "vector_width = 8>} {}"
        )
    with pytest.raises(Exception, match="needs name"):
        parse_mlir_text('builtin.module attributes {sched.target = #sched.target<isa = "neon">} {}')
    assert isinstance(TargetAttr.of(TARGETS["host"]), TargetAttr)


def test_a_module_keeps_the_target_it_was_compiled_for(tmp_path: Path) -> None:
    module = optimize(import_model(small_cnn()), target="aarch64")
    assert target_of(module) == TARGETS["aarch64"]
    assert module_target_or(module, None).name == "aarch64"
    with pytest.raises(TargetError, match="compiled for target aarch64, not host"):
        module_target_or(module, "host")
    # a dumped IR replays with its target (no --target needed)
    path = tmp_path / "m.mlir"
    path.write_text(render_ir(module))
    from grimc.weights import save_beside

    save_beside(module, tmp_path / "m.mlir.npz")
    path.write_text(render_ir(module))
    replayed = parse_mlir_file(path)
    assert target_of(replayed) == TARGETS["aarch64"]
    gen = compile_model(replayed, passes=[])
    assert "for target aarch64 (neon)" in gen.source.splitlines()[0]


def test_default_compile_uses_native() -> None:
    gen = compile_model(small_cnn(), sparse_format="dense")
    assert f"for target {resolve_target(None).name} " in gen.source.splitlines()[0]


def test_cli_says_which_target_it_chose(tmp_path: Path) -> None:
    import subprocess
    import sys

    example = Path(__file__).resolve().parents[2] / "examples" / "small_cnn.onnx"
    grimc = [sys.executable, "-c", "import sys; from grimc.cli import main; sys.exit(main())"]
    proc = subprocess.run(
        [*grimc, str(example), "-o", str(tmp_path / "m.c")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    native = resolve_target(None)
    assert native.describe() in proc.stderr.splitlines()
    proc = subprocess.run(
        [*grimc, str(example), "-o", str(tmp_path / "a.c"), "--target", "aarch64"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert TARGETS["aarch64"].describe() in proc.stderr.splitlines()
