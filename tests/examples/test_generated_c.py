"""Generated C as a user gets it from `grimc model.onnx -o out.c`: it builds with
the commands printed at its top, its header is enough to write a program, any
output name works, and several models link into one program."""

from __future__ import annotations

import ctypes
import re
import shlex
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from grimc import toolchain
from grimc.artifacts import onnxruntime_reference
from grimc.emit.codegen import API_NAMES, c_prefix
from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "small_cnn.onnx"
DOC = REPO / "docs" / "c-api.md"
RTOL, ATOL = 1e-4, 1e-5

# The documented example (docs/c-api.md): a program written from out.h alone.
# Input i of the flat input gets (i % 7) / 7; every output value is printed.
C_MAIN = """\
#include <stdio.h>
#include <stdlib.h>
#include "out.h"

int main(void) {
    out *model = NULL;
    int status = out_create("out.weights.bin", 1, &model);
    if (status != GRIMC_OK) {
        fprintf(stderr, "out_create: %s\\n", out_strerror(status));
        return 1;
    }
    const out_tensor_desc *in = out_input(0), *res = out_output(0);
    float *x = malloc(in->numel * sizeof *x), *y = malloc(res->numel * sizeof *y);
    for (size_t i = 0; i < in->numel; ++i) x[i] = (float)(i % 7) / 7.0f;
    const float *inputs[] = {x};
    float *outputs[] = {y};
    status = out_run(model, inputs, outputs);
    for (size_t i = 0; status == GRIMC_OK && i < res->numel; ++i) printf("%.9g\\n", y[i]);
    out_destroy(model);
    free(x);
    free(y);
    return status == GRIMC_OK ? 0 : 1;
}
"""


def grimc(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    from tests.conftest import run_tool

    proc = run_tool(["grimc", *args], cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return proc


def build_commands(c_file: Path) -> list[list[str]]:
    """The compile and link commands printed in the generated file's first comment."""
    comment = c_file.read_text().split("*/", 1)[0]
    lines = [m.group(1) for m in re.finditer(r"^ \*   (\S*clang\S* .*)$", comment, re.M)]
    assert len(lines) == 2, comment
    return [shlex.split(line) for line in lines]


def run_commands(commands: list[list[str]], cwd: Path) -> None:
    for cmd in commands:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        assert proc.returncode == 0, f"{shlex.join(cmd)}\n{proc.stderr}"


def run_program(exe: Path, target: str) -> str:
    return toolchain.run_executable(exe, target=target, cwd=exe.parent, timeout=300).stdout


def ramp_input(shape: tuple[int, ...]) -> np.ndarray:
    """The input C_MAIN feeds: element i is (i % 7) / 7 (float32)."""
    n = int(np.prod(shape))
    return ((np.arange(n) % 7).astype(np.float32) / np.float32(7.0)).reshape(shape)


def onnxruntime_outputs(model: Path | onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    data = model.read_bytes() if isinstance(model, Path) else model.SerializeToString()
    return onnxruntime_reference(data, [x])[0]


def tiny_model(seed: int, channels: int, classes: int) -> onnx.ModelProto:
    """Conv 3x3 + Relu + GlobalAveragePool + Gemm on a 1x3x8x8 input, seeded weights."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((channels, 3, 3, 3)).astype(np.float32) * 0.3
    fc = rng.standard_normal((classes, channels)).astype(np.float32) * 0.3
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, f"tiny{seed}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, classes])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(fc, "fc")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def program_for(prefix: str) -> str:
    """C_MAIN for another prefix (the type, functions and file names follow it)."""
    return re.sub(r"\bout(?=\b|_|\.h|\.weights)", prefix, C_MAIN)


@pytest.mark.parametrize(
    "name",
    ["out", "model", "m", "int", "free", "grimc_aligned_alloc", "grimc_pool", "k0_conv2d",
     # the same rules again (keyword, reserved, API parameter, plain word): full tier only
     *(pytest.param(n, marks=pytest.mark.slow) for n in ("static", "main", "weights_path", "x"))],
)
def test_any_output_name_gives_c_that_builds_and_runs(name: str, tmp_path: Path) -> None:
    onnx.save(tiny_model(1, 4, 3), tmp_path / "tiny.onnx")
    grimc(["tiny.onnx", "-o", f"{name}.c"], tmp_path)
    (header,) = tmp_path.glob("*.h")
    prefix = header.stem
    assert prefix == c_prefix(prefix)  # what grimc wrote is a fixed point
    if name not in {"int", "static", "main", "free", "grimc_aligned_alloc", "grimc_pool",
                    "weights_path", "k0_conv2d"}:
        assert prefix == name  # ordinary names are kept as they are
    (tmp_path / f"{prefix}.c").write_text((tmp_path / f"{name}.c").read_text())
    (tmp_path / "main.c").write_text(program_for(prefix))
    run_commands(build_commands(tmp_path / f"{prefix}.c"), tmp_path)
    got = np.array([float(v) for v in run_program(tmp_path / "main", "host").split()])
    x = ramp_input((1, 3, 8, 8))
    ref = onnxruntime_outputs(tiny_model(1, 4, 3), x).ravel()
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("output", ["out", "out.o", "out.so"])
def test_built_artifacts_for_the_name_out(output: str, tmp_path: Path) -> None:
    onnx.save(tiny_model(2, 4, 3), tmp_path / "tiny.onnx")
    grimc(["tiny.onnx", "-o", output], tmp_path)
    assert (tmp_path / output).is_file() and (tmp_path / "out.h").is_file()
    if output == "out.o":
        spec = toolchain.resolve_target("host")
        (tmp_path / "main.c").write_text(C_MAIN)
        link = [str(toolchain.find_clang()), *toolchain.compile_flags(spec), "main.c", "out.o",
                "-o", "main", *toolchain.link_flags(spec)]
        run_commands([link], tmp_path)
        assert len(run_program(tmp_path / "main", "host").split()) == 3
    elif output == "out.so":
        assert ctypes.CDLL(str(tmp_path / "out.so")).out_num_inputs() == 1
    else:
        proc = subprocess.run([tmp_path / "out"], capture_output=True, text=True)
        assert proc.returncode == 2 and "usage:" in proc.stderr


def test_c_main_is_the_documented_example() -> None:
    assert C_MAIN in DOC.read_text()


@pytest.mark.parametrize("target", ["host", "aarch64"])
def test_done_when_small_cnn_builds_from_printed_commands_with_a_c_main(
    target: str, tmp_path: Path
) -> None:
    grimc([str(EXAMPLE), "--target", target, "-o", "out.c"], tmp_path)
    commands = build_commands(tmp_path / "out.c")
    if target == "aarch64":
        assert "--target=aarch64-linux-gnu" in commands[0] and "-fuse-ld=lld" in commands[1]
    assert "-lm" in commands[1] and "-pthread" in commands[1]
    (tmp_path / "main.c").write_text(C_MAIN)
    run_commands(commands, tmp_path)
    got = np.array([float(v) for v in run_program(tmp_path / "main", target).split()])
    ref = onnxruntime_outputs(EXAMPLE, ramp_input((1, 3, 32, 32))).ravel()
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL)


TWO_MODELS = """\
#include <stdio.h>
#include "net_a.h"
#include "net_b.h"

int main(void) {
    net_a *a = NULL;
    net_b *b = NULL;
    if (net_a_create("net_a.weights.bin", 2, &a) != GRIMC_OK) return 1;
    if (net_b_create("net_b.weights.bin", 1, &b) != GRIMC_OK) return 1;
    float x[3 * 8 * 8], ya[3], yb[5];
    for (int i = 0; i < 3 * 8 * 8; ++i) x[i] = (float)(i % 7) / 7.0f;
    const float *in[] = {x};
    float *outa[] = {ya}, *outb[] = {yb};
    if (net_a_run(a, in, outa) != GRIMC_OK || net_b_run(b, in, outb) != GRIMC_OK) return 1;
    for (int i = 0; i < 3; ++i) printf("%.9g\\n", ya[i]);
    for (int i = 0; i < 5; ++i) printf("%.9g\\n", yb[i]);
    printf("%s\\n%s\\n", net_a_strerror(GRIMC_E_IO), net_b_strerror(GRIMC_OK));
    net_a_destroy(a);
    net_b_destroy(b);
    return 0;
}
"""


def test_two_models_link_into_one_program_and_both_run(tmp_path: Path) -> None:
    models = {"net_a": tiny_model(3, 4, 3), "net_b": tiny_model(4, 6, 5)}
    for name, model in models.items():
        onnx.save(model, tmp_path / f"{name}.onnx")
        grimc([f"{name}.onnx", "-o", f"{name}.c"], tmp_path)
    compile_a, link = build_commands(tmp_path / "net_a.c")
    compile_b, _ = build_commands(tmp_path / "net_b.c")
    link = [a for a in link if a != "net_a.o"]
    at = link.index("-o")
    link[at:at] = ["net_a.o", "net_b.o"]
    (tmp_path / "main.c").write_text(TWO_MODELS)
    run_commands([compile_a, compile_b, link], tmp_path)
    out = run_program(tmp_path / "main", "host").splitlines()
    x = ramp_input((1, 3, 8, 8))
    got = np.array([float(v) for v in out[:8]])
    ref = np.concatenate([onnxruntime_outputs(m, x).ravel() for m in models.values()])
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL)
    assert out[8] and out[9] and out[8] != out[9]  # each model explains its statuses


def test_header_declares_everything_it_mentions(tmp_path: Path) -> None:
    """Every GRIMC_* name and every function the header's comments mention compiles
    in a program that includes only the header (two model headers at once)."""
    from grimc.driver import compile_model

    for name in ("out", "other"):
        gen = compile_model(tiny_model(5, 4, 3), target="host", prefix=name)
        (tmp_path / f"{name}.h").write_text(gen.header)
        header = gen.header
    mentioned = set(re.findall(r"\bGRIMC_[A-Z0-9_]*[A-Z0-9]\b", header)) - {"GRIMC_PROFILE", "GRIMC_STATUS_CODES"}
    called = set(re.findall(r"\b(\w+)\(\)", header))
    assert {"GRIMC_OK", "GRIMC_E_ARG", "GRIMC_E_UNSUPPORTED"} <= mentioned
    assert called and all(c.startswith("other_") for c in called)
    uses = "\n".join(f"    (void){n};" for n in sorted(mentioned))
    uses += "\n" + "\n".join(f"    (void){c};" for c in sorted(called))
    (tmp_path / "use.c").write_text(
        f'#include "out.h"\n#include "other.h"\nint main(void) {{\n{uses}\n    return 0;\n}}\n'
    )
    toolchain.compile_object(tmp_path / "use.c", tmp_path / "use.o", "host")


def test_only_the_api_is_exported(tmp_path: Path) -> None:
    """The inlined runtime is static: the object defines exactly <prefix>_<api>."""
    grimc_dir = tmp_path
    onnx.save(tiny_model(6, 4, 3), grimc_dir / "tiny.onnx")
    grimc(["tiny.onnx", "-o", "out.o"], grimc_dir)
    nm = subprocess.run(
        ["nm", "-g", "--defined-only", str(grimc_dir / "out.o")],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    exported = {s for s in nm if re.fullmatch(r"[A-Za-z_]\w*", s) and len(s) > 1}
    assert exported == {f"out_{api}" for api in API_NAMES} - {"out_tensor_desc", "out_kernel_desc"}


def test_failed_build_of_c_is_reported_as_a_grimc_bug(tmp_path: Path) -> None:
    """clang rejecting code grimc wrote is an internal error (exit 70), in one line."""
    bad = tmp_path / "bad.c"
    bad.write_text("int f(void) { return undeclared; }\n")
    with pytest.raises(toolchain.BuildError) as info:
        toolchain.compile_object(bad, tmp_path / "bad.o", "host")
    assert info.value.exit_code == 70
    assert "\n" not in str(info.value) and "grimc bug" in str(info.value)
    assert "bad.c:1:" in str(info.value) and str(tmp_path) not in str(info.value)
