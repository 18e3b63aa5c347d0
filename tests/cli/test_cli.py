"""grimc / grimc-opt command lines: IR inspection flags and user errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from tests.conftest import REPO, run_tool, tool_env

EXAMPLE = REPO / "examples" / "small_cnn.onnx"
HEADER_AFTER = "// -----// IR Dump After {} //----- //"


@pytest.fixture(scope="module")
def example_dumps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The --ir-dump-dir folder of one compile of the example (tests only read it)."""
    dumps = tmp_path_factory.mktemp("example") / "dumps"
    proc = run_tool(["grimc", str(EXAMPLE), "--ir-dump-dir", str(dumps)])
    assert proc.returncode == 0, proc.stderr
    return dumps


@pytest.fixture(scope="module")
def pruned_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`grimc prune --rate 8` of the example (tests only read it)."""
    pruned = tmp_path_factory.mktemp("pruned") / "pruned.onnx"
    prune = run_tool(["grimc", "prune", str(EXAMPLE), "-o", str(pruned), "--rate", "8"])
    assert prune.returncode == 0, prune.stderr
    return pruned


def test_version_and_help(run_cli) -> None:
    version = run_cli(["grimc", "--version"])
    assert version.returncode == 0 and version.stdout.startswith("grimc ")
    helptext = run_cli(["grimc", "--help"]).stdout
    for flag in (
        "--emit", "--target", "--threads", "--input-shape", "--print-ir-after-all",
        "--print-ir-before", "--print-ir-after", "--ir-dump-dir", "--print-op-generic",
        "--time-passes", "--passes",
    ):
        assert flag in helptext


def test_emit_ir_prints_verifiable_ir_that_xdsl_opt_parses(run_cli) -> None:
    proc = run_cli(["grimc", str(EXAMPLE), "--emit=ir"])
    assert proc.returncode == 0, proc.stderr
    assert "func.func @main" in proc.stdout and "graph.conv" in proc.stdout
    assert proc.stderr == ""
    # BN was folded and activations fused by the default pipeline.
    assert "graph.batch_norm" not in proc.stdout
    assert "act = #graph.act<relu>" in proc.stdout
    replay = run_cli(["xdsl-opt"], stdin=proc.stdout)
    assert replay.returncode == 0, replay.stderr
    assert "graph.conv" in replay.stdout


def test_print_ir_after_all_goes_to_stderr(run_cli) -> None:
    proc = run_cli(["grimc", str(EXAMPLE), "--print-ir-after-all", "--emit=ir"])
    assert proc.returncode == 0, proc.stderr
    for name in ("graph-constant-fold", "graph-bn-fold", "graph-fuse-activations", "graph-dce"):
        assert HEADER_AFTER.format(name) in proc.stderr
    assert "IR Dump" not in proc.stdout
    # Before folding the dump after constant-fold still holds batch norms.
    after_cf = proc.stderr.split(HEADER_AFTER.format("graph-constant-fold"))[1]
    assert "graph.batch_norm" in after_cf.split("// -----//")[0]


def test_print_ir_before_and_after_one_pass(run_cli) -> None:
    proc = run_cli(
        ["grimc", str(EXAMPLE), "--print-ir-before=graph-bn-fold", "--print-ir-after=graph-bn-fold"]
    )
    assert proc.returncode == 0, proc.stderr
    assert "// -----// IR Dump Before graph-bn-fold //----- //" in proc.stderr
    assert HEADER_AFTER.format("graph-bn-fold") in proc.stderr
    assert HEADER_AFTER.format("graph-dce") not in proc.stderr


def test_generic_form_and_time_passes(run_cli) -> None:
    proc = run_cli(["grimc", str(EXAMPLE), "--print-op-generic", "--time-passes"])
    assert proc.returncode == 0, proc.stderr
    assert '"graph.conv"' in proc.stdout
    assert "Pass execution timing report" in proc.stderr
    assert "graph-bn-fold" in proc.stderr


def test_ir_dump_dir_replays_with_grimc_opt(run_cli, example_dumps: Path) -> None:
    dumps = example_dumps
    files = sorted(p.name for p in dumps.glob("*.mlir"))
    assert files[0] == "00_before_pipeline.mlir"
    assert any("graph-bn-fold" in f for f in files)
    assert (dumps / "weights.npz").is_file()
    before_fold = next(p for p in sorted(dumps.glob("*.mlir")) if "graph-constant-fold" in p.name)
    replay = run_cli(["grimc-opt", str(before_fold), "-p", "graph-bn-fold"])
    assert replay.returncode == 0, replay.stderr
    assert "graph.batch_norm" not in replay.stdout
    assert "graph.batch_norm" in before_fold.read_text()


def test_emit_ir_to_file_writes_weights_beside(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "model.mlir"
    proc = run_cli(["grimc", str(EXAMPLE), "-o", str(out)])
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and (tmp_path / "model.mlir.npz").is_file()
    replay = run_cli(["grimc-opt", str(out), "-p", "graph-constant-fold,graph-dce"])
    assert replay.returncode == 0, replay.stderr


def test_output_dash_is_stdout_for_ir_and_an_error_otherwise(run_cli, tmp_path: Path) -> None:
    """`-o -` prints the IR (it wrote files named `-` and `-.npz`); a file kind refuses it."""
    proc = run_cli(["grimc", str(EXAMPLE), "--emit=ir", "-o", "-"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "func.func @main" in proc.stdout and list(tmp_path.iterdir()) == []
    proc = run_cli(["grimc", str(EXAMPLE), "--emit=c", "-o", "-"], cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "-o -: only --emit=ir" in proc.stderr and list(tmp_path.iterdir()) == []


def test_grimc_opt_reads_onnx(run_cli) -> None:
    proc = run_cli(["grimc-opt", str(EXAMPLE), "-p", "graph-bn-fold"])
    assert proc.returncode == 0, proc.stderr
    assert "graph.conv" in proc.stdout and "graph.batch_norm" not in proc.stdout


def test_passes_lists_registry(run_cli) -> None:
    proc = run_cli(["grimc", "passes"])
    assert proc.returncode == 0
    for name in ("graph-bn-fold", "graph-dce", "graph-fuse-activations", "graph-constant-fold"):
        assert name in proc.stdout


def _unsupported_model(path: Path) -> None:
    node = helper.make_node("Einsum", ["x", "x"], ["y"], name="weird", equation="ij,jk->ik")
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def _dynamic_model(path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


BAD_INPUTS = {
    "missing": lambda p: None,
    "empty": lambda p: p.write_bytes(b""),
    "truncated": lambda p: p.write_bytes(EXAMPLE.read_bytes()[: EXAMPLE.stat().st_size // 2]),
    "garbage": lambda p: p.write_bytes(b"\x00\xff not an onnx model \x13" * 40),
    "unsupported": _unsupported_model,
    "dynamic": _dynamic_model,
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
@pytest.mark.parametrize("emit", ["ir", "c"])
def test_bad_input_is_one_line_exit_2_no_output(run_cli, tmp_path: Path, case: str, emit: str) -> None:
    model = tmp_path / "model.onnx"
    BAD_INPUTS[case](model)
    out = tmp_path / ("out.mlir" if emit == "ir" else "out.c")
    proc = run_cli(["grimc", str(model), "-o", str(out), f"--emit={emit}"])
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("grimc: error: ")
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == (["model.onnx"] if case != "missing" else [])


def test_unsupported_operator_names_op_node_and_the_supported_list(run_cli, tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    _unsupported_model(model)
    err = run_cli(["grimc", str(model)]).stderr
    assert "Einsum" in err and "weird" in err and "`grimc ops` lists them" in err
    listed = run_cli(["grimc", "ops"]).stdout.split()
    assert "Conv" in listed and "GRU" in listed and "Einsum" not in listed


def test_dynamic_shape_fixed_by_input_shape(run_cli, tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    _dynamic_model(model)
    err = run_cli(["grimc", str(model)]).stderr
    assert "--input-shape" in err
    proc = run_cli(["grimc", str(model), "--input-shape", "x=4x3"])
    assert proc.returncode == 0, proc.stderr
    assert "tensor<4x3xf32>" in proc.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--input-shape", "x=4xQ"],
        ["--passes", "no-such-pass"],
        ["--emit=c"],
        ["-o", "/nonexistent-dir/out.c"],
        ["--threads", "0", "-o", "OUT"],
        ["--target", "sparc", "-o", "OUT"],
    ],
)
def test_bad_options_are_one_line(run_cli, tmp_path: Path, args: list[str]) -> None:
    args = [str(tmp_path / "out.c") if a == "OUT" else a for a in args]
    proc = run_cli(["grimc", str(EXAMPLE), *args])
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "out.c").exists()


@pytest.mark.parametrize("sparse_format", ["bcr", "csr", "dense"])
def test_pruned_model_runs_and_matches_onnxruntime(
    run_cli, pruned_example: Path, sparse_format: str
) -> None:
    pruned = pruned_example
    ir = run_cli(["grimc", str(pruned), "--emit=ir", f"--sparse-format={sparse_format}"])
    assert ir.returncode == 0, ir.stderr
    assert ("bcr.conv2d" in ir.stdout) == (sparse_format != "dense")
    run = run_cli(["grimc", "run", str(pruned), "--check", f"--sparse-format={sparse_format}"])
    assert run.returncode == 0, run.stdout + run.stderr
    assert "onnxruntime check: OK" in run.stdout


def test_emit_c_writes_source_header_and_blob(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "net.c"
    proc = run_cli(["grimc", str(EXAMPLE), "-o", str(out)])
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.c", "net.h", "net.weights.bin"]
    source = out.read_text()
    assert '#include "net.h"' in source and "net_create" in source
    again = tmp_path / "again"
    again.mkdir()
    run_cli(["grimc", str(EXAMPLE), "-o", str(again / "net.c")])
    assert (again / "net.c").read_text() == source  # deterministic


@pytest.mark.parametrize("kind,suffix", [("obj", ".o"), ("so", ".so"), ("exe", "")])
def test_emit_binaries(run_cli, tmp_path: Path, kind: str, suffix: str) -> None:
    out = tmp_path / f"net{suffix}"
    proc = run_cli(["grimc", str(EXAMPLE), "-o", str(out), f"--emit={kind}"])
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and out.stat().st_size > 0
    assert (tmp_path / "net.h").is_file() and (tmp_path / "net.weights.bin").is_file()


def test_bench_reports_latency(run_cli) -> None:
    proc = run_cli(["grimc", "bench", str(EXAMPLE), "--repeat", "3"])
    assert proc.returncode == 0, proc.stderr
    assert "median" in proc.stdout and "peak arena" in proc.stdout


@pytest.mark.parametrize("flag", ["--print-ir-after", "--print-ir-before"])
def test_print_ir_of_unknown_pass_is_an_error(run_cli, flag: str) -> None:
    proc = run_cli(["grimc", str(EXAMPLE), f"{flag}=graph-bn-fodl"])
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert flag in lines[0] and "graph-bn-fodl" in lines[0]
    assert "graph-bn-fold" in lines[0] and "bcr-detect" in lines[0]  # lists valid passes


def test_run_check_without_onnxruntime_says_how_to_install(run_cli, tmp_path: Path) -> None:
    # An interpreter where `import onnxruntime` fails as it does without the package.
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'onnxruntime':\n"
        "            raise ModuleNotFoundError(\"No module named 'onnxruntime'\", name=name)\n"
        "sys.meta_path.insert(0, _Block())\n"
    )
    env = tool_env()
    env["PYTHONPATH"] = os.pathsep.join([str(blocker), env.get("PYTHONPATH", "")])
    probe = subprocess.run(
        [sys.executable, "-c", "import onnxruntime"], capture_output=True, env=env
    )
    assert probe.returncode != 0  # the blocker works
    proc = subprocess.run(
        [sys.executable, "-m", "grimc.cli", "run", str(EXAMPLE), "--check"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "onnxruntime" in lines[0] and "pip install" in lines[0]
    assert "internal error" not in lines[0]


def test_help_documents_the_harness_and_promises_no_missing_backend(run_cli) -> None:
    from grimc.target import TARGETS

    helptext = " ".join(run_cli(["grimc", "--help"]).stdout.split())
    if "opencl" not in TARGETS:
        assert "OpenCL" not in helptext
    assert "input0.bin" in helptext and "output0.bin" in helptext
    assert "float32" in helptext


def test_bench_under_qemu_says_emulated_and_reports_no_gflops(run_cli) -> None:
    proc = run_cli(["grimc", "bench", str(EXAMPLE), "--target", "aarch64", "--repeat", "1"])
    assert proc.returncode == 0, proc.stderr
    assert "emulated" in proc.stdout and "qemu" in proc.stdout
    assert "GFLOP/s" not in proc.stdout
    assert "benches.icount" in proc.stdout
    host = run_cli(["grimc", "bench", str(EXAMPLE), "--repeat", "1"])
    assert "GFLOP/s" in host.stdout and "emulated" not in host.stdout


def test_replayed_dump_finds_the_weights_its_passes_add(
    run_cli, example_dumps: Path, tmp_path: Path
) -> None:
    """Replaying a pass on a dump used to rename the weights it adds (conv_0_w_bn_1:
    conv_0_w_bn is taken) to keys no file holds, so the replayed IR could not be
    compiled or fed to another grimc-opt. A replay now yields the original keys."""
    dumps = example_dumps
    store = (dumps / "weights.npz").read_bytes()
    before_fold = next(p for p in sorted(dumps.glob("*.mlir")) if "graph-constant-fold" in p.name)
    after_fold = next(p for p in sorted(dumps.glob("*.mlir")) if "graph-bn-fold" in p.name)
    replays = {
        "by_opt": run_cli(["grimc-opt", str(before_fold), "-p", "graph-bn-fold"]),
        "by_grimc": run_cli(["grimc", str(before_fold), "--passes", "graph-bn-fold"]),
    }
    for name, replay in replays.items():
        assert replay.returncode == 0 and replay.stderr == "", replay.stderr
        # the same IR as the original run's dump after the pass
        assert replay.stdout.rstrip() == after_fold.read_text().split("\n", 1)[1].rstrip(), name
        ir = tmp_path / f"{name}.mlir"
        ir.write_text(replay.stdout)
        again = run_cli(["grimc-opt", str(ir), "-p", "graph-fuse-activations,graph-dce,bcr-detect"])
        assert again.returncode == 0, again.stderr
        compiled = run_cli(["grimc", str(ir), "-o", str(tmp_path / f"{name}.c")])
        assert compiled.returncode == 0, compiled.stderr
    assert (dumps / "weights.npz").read_bytes() == store  # inputs are never rewritten


def test_new_weights_of_a_replay_are_saved_beside_the_output(
    run_cli, example_dumps: Path, tmp_path: Path
) -> None:
    last = sorted(example_dumps.glob("*_graph-dce.mlir"))[0]
    detect = "bcr-detect{threshold=1.0 min-weights=0}"  # packs dense convs: new weights
    on_stdout = run_cli(["grimc-opt", str(last), "-p", detect])
    assert on_stdout.returncode == 0 and "bcr.conv2d" in on_stdout.stdout
    assert "warning" in on_stdout.stderr and "-o FILE" in on_stdout.stderr
    out = tmp_path / "detected.mlir"
    to_file = run_cli(["grimc-opt", str(last), "-p", detect, "-o", str(out)])
    assert to_file.returncode == 0 and to_file.stderr == "", to_file.stderr
    assert (tmp_path / "detected.mlir.npz").is_file()
    compiled = run_cli(["grimc", str(out), "--passes", "", "-o", str(tmp_path / "detected.c")])
    assert compiled.returncode == 0, compiled.stderr


def test_dumps_replay_after_a_failing_pass(
    run_cli, example_dumps: Path, tmp_path: Path
) -> None:
    """The dump folder's weight store is written even when a pass fails midway."""
    import numpy as np

    dumps = example_dumps
    before_fold = next(p for p in sorted(dumps.glob("*.mlir")) if "graph-constant-fold" in p.name)
    with np.load(dumps / "weights.npz") as npz:  # a store missing the last BN's mean
        np.savez(tmp_path / "broken.npz", **{k: npz[k] for k in npz.files if k != "bn_5_mean"})
    broken = tmp_path / "broken.mlir"
    broken.write_text(before_fold.read_text().replace(str(dumps / "weights.npz"),
                                                      str(tmp_path / "broken.npz")))
    again = tmp_path / "again"
    proc = run_cli(["grimc", str(broken), "--ir-dump-dir", str(again)])
    assert proc.returncode == 2 and "bn_5_mean" in proc.stderr, proc.stderr
    first = again / "00_before_pipeline.mlir"
    assert first.is_file() and (again / "weights.npz").is_file()
    replay = run_cli(["grimc-opt", str(first), "-p", "graph-dce,bcr-detect"])
    assert replay.returncode == 0, replay.stderr
