"""`--input-value NAME=VALUE` on grimc compile, run, bench and inspect."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.frontend.test_input_values import rate_model


@pytest.fixture
def rate_path(tmp_path: Path) -> Path:
    """y = If(sr == 16000) then Relu(x) else Neg(x); sr is an int64 scalar input."""
    path = tmp_path / "rate.onnx"
    onnx.save(rate_model(), path)
    return path


@pytest.mark.parametrize("command", ["compile", "run", "bench", "inspect", "tune"])
def test_help_lists_the_option(command: str) -> None:
    parser = importlib.import_module(f"grimc.cli.{command}").build_parser()
    assert "--input-value NAME=VALUE" in parser.format_help()


@pytest.mark.parametrize(("rate", "op"), [("16000", "graph.relu"), ("8000", "graph.neg")])
def test_compile_keeps_the_chosen_branch(run_cli, rate_path: Path, rate: str, op: str) -> None:
    proc = run_cli(["grimc", str(rate_path), "--emit=ir", "--input-value", f"sr={rate}"])
    assert proc.returncode == 0, proc.stderr
    main = proc.stdout.split("func.func @main(")[1].split("\n")[0]
    assert main.count("tensor<") == 2  # x in, y out: sr is no input any more
    other = "graph.neg" if op == "graph.relu" else "graph.relu"
    assert op in proc.stdout and other not in proc.stdout


def test_run_check_feeds_onnxruntime_the_value(run_cli, rate_path: Path) -> None:
    for rate in ("16000", "8000"):
        proc = run_cli(["grimc", "run", str(rate_path), "--input-value", f"sr={rate}", "--check"])
        assert proc.returncode == 0, proc.stderr
        assert "onnxruntime check: OK" in proc.stdout


def test_without_a_value_sr_is_read_at_run_time(run_cli, rate_path: Path) -> None:
    """No --input-value: sr is an int64 run-time input (random values in its range, and a
    given one), checked against onnxruntime."""
    proc = run_cli(["grimc", "run", str(rate_path), "--check", "-q"])
    assert proc.returncode == 0, proc.stderr
    assert "onnxruntime check: OK" in proc.stdout
    sr = rate_path.with_name("sr.npy")
    np.save(sr, np.array(16000, np.int64))
    proc = run_cli(["grimc", "run", str(rate_path), "--input", f"sr={sr}", "--check", "-q"])
    assert proc.returncode == 0, proc.stderr
    assert "onnxruntime check: OK" in proc.stdout


def test_bench_inspect_and_tune_take_the_value(run_cli, rate_path: Path) -> None:
    bench = run_cli(["grimc", "bench", str(rate_path), "--input-value", "sr=8000", "--repeat", "1"])
    assert bench.returncode == 0, bench.stderr
    inspect = run_cli(["grimc", "inspect", str(rate_path), "--input-value", "sr=8000", "--json"])
    assert inspect.returncode == 0, inspect.stderr
    db = rate_path.with_name("tuning.sqlite")
    tune = run_cli(
        ["grimc", "tune", str(rate_path), "--input-value", "sr=8000", "--budget", "1s",
         "--db", str(db), "--target", "host"]
    )  # fmt: skip
    assert tune.returncode == 0 and "0 tasks" in tune.stdout, tune.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input-value", "sr=fast"], "--input-value 'sr=fast': expected NAME=VALUE"),
        (["--input-value", "rate=1"], "--input-value names unknown input 'rate'"),
        (["--input-value", "sr=1.5"], "--input-value sr: the input is int64; give integers"),
        (["--input-value", "sr=1", "--input-value", "sr=2"], "--input-value sr: given more than once"),
    ],
)  # fmt: skip
def test_bad_values_are_one_line_exit_2(
    run_cli, rate_path: Path, args: list[str], message: str
) -> None:
    out = rate_path.with_suffix(".c")
    proc = run_cli(["grimc", str(rate_path), "-o", str(out), *args])
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("grimc: error: ") and message in lines[0]
    assert sorted(p.name for p in rate_path.parent.iterdir()) == ["rate.onnx"]


def test_run_check_replaces_an_input_default(run_cli, tmp_path: Path) -> None:
    """An input with an initializer default: onnxruntime is fed the same value."""
    path = tmp_path / "gain.onnx"
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "gain"], ["y"])],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
            helper.make_tensor_value_info("gain", TensorProto.FLOAT, [3]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        [numpy_helper.from_array(np.ones(3, np.float32), "gain")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    proc = run_cli(["grimc", "run", str(path), "--input-value", "gain=1,-2,4", "--check"])
    assert proc.returncode == 0, proc.stderr
    assert "onnxruntime check: OK" in proc.stdout


@pytest.mark.parametrize(("rate", "op"), [("16000", "graph.relu"), ("8000", "graph.neg")])
def test_grimc_opt_takes_the_value(run_cli, rate_path: Path, rate: str, op: str) -> None:
    """grimc-opt reads --input-value like grimc (one option definition, one parser):
    the If folds to the chosen branch and sr is no input any more."""
    proc = run_cli(["grimc-opt", str(rate_path), "--input-value", f"sr={rate}", "-p", "graph-dce"])
    assert proc.returncode == 0, proc.stderr
    main = proc.stdout.split("func.func @main(")[1].split("\n")[0]
    assert main.count("tensor<") == 2
    other = "graph.neg" if op == "graph.relu" else "graph.relu"
    assert op in proc.stdout and other not in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input-value", "sr=fast"], "--input-value 'sr=fast': expected NAME=VALUE"),
        (["--input-value", "sr=1.5"], "--input-value sr: the input is int64; give integers"),
    ],
)
def test_grimc_opt_bad_values_are_one_line(
    run_cli, rate_path: Path, args: list[str], message: str
) -> None:
    proc = run_cli(["grimc-opt", str(rate_path), *args])
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_grimc_opt_value_needs_an_onnx_model(run_cli, tmp_path: Path) -> None:
    ir = tmp_path / "m.mlir"
    ir.write_text("builtin.module {}\n")
    proc = run_cli(["grimc-opt", str(ir), "--input-value", "sr=1"])
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "grimc-opt: error: --input-value applies to ONNX models; an IR module has no such inputs"
    ]


def test_one_definition_of_the_option(run_cli) -> None:
    """grimc and grimc-opt print the one help text of grimc.options."""
    from grimc.options import INPUT_VALUE_HELP

    for tool in ("grimc", "grimc-opt"):
        proc = run_cli([tool, "--help"])
        assert proc.returncode == 0, proc.stderr
        assert " ".join(INPUT_VALUE_HELP.split()) in " ".join(proc.stdout.split()), tool
