"""`grimc prune --auto`: the choice meets its latency budget on the measured numbers it is
given (and is as good as brute force up to its rounding), impossible targets and missing
validation data are refused with one line and exit 2, and the CLI prints the per-layer
table and writes a model pruned exactly as the table says."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import numpy_helper

from grimc.cli import main as grimc_main
from grimc.prune import Options, PruneError, find_layers, prune_model
from grimc.prune.auto import Candidate, Latency, Unit, choose, find_units, split_times, unit_config
from tests.prune.models import mlp

CANDS = [Candidate((8, 16), 2.0), Candidate((8, 16), 8.0), Candidate((16, 32), 8.0)]


def units(n: int) -> list[Unit]:
    return [Unit(f"u{i}", "Gemm", ()) for i in range(n)]


@st.composite
def problems(draw):
    """Random measured latencies and sensitivities for 1-4 units, and a reachable budget."""
    n = draw(st.integers(1, 4))
    ms = st.floats(0.001, 1.0)
    dense = {f"u{i}": draw(ms) for i in range(n)}
    pruned = {u: {c: draw(ms) for c in CANDS} for u in dense}
    sens = {u: {c: draw(st.floats(-0.5, 2.0)) for c in CANDS} for u in dense}
    lat = Latency(dense, pruned, draw(st.floats(0.0, 0.5)))
    fastest = lat.other + sum(min(dense[u], *pruned[u].values()) for u in dense)
    slowest = lat.other + sum(max(dense[u], *pruned[u].values()) for u in dense)
    return lat, sens, fastest + draw(st.floats(0.0, 1.0)) * (slowest - fastest)


def brute_force(lat: Latency, sens, budget: float) -> float | None:
    """Least total sensitivity (negatives as 0) of any choice within `budget`."""
    best = None
    for picks in itertools.product([None, *CANDS], repeat=len(lat.dense)):
        choice = dict(zip(lat.dense, picks, strict=True))
        if lat.model(choice) <= budget:
            cost = sum(max(0.0, sens[u][c]) for u, c in choice.items() if c is not None)
            best = cost if best is None else min(best, cost)
    return best


@settings(max_examples=60, deadline=None)
@given(problems())
def test_choice_meets_budget_and_matches_brute_force(problem) -> None:
    lat, sens, budget = problem
    choice = choose(units(len(lat.dense)), lat, sens, budget, resolution=400)
    assert choice.predicted_ms <= budget * (1 + 1e-12)
    cost = sum(max(0.0, p.sensitivity) for p in choice.picks)
    # every choice within budget - n * quantum fits the rounded grid: none of them is better
    tighter = budget - len(lat.dense) * (budget - lat.other) / 400
    best = brute_force(lat, sens, tighter)
    if best is not None:
        assert cost <= best + 1e-9
    for pick in choice.picks:
        assert pick.ms == lat.of(pick.unit.name, pick.candidate)


def test_choice_prefers_the_insensitive_layer() -> None:
    """Two layers, budget for one pruned: the one whose loss moves less is pruned."""
    fast, slow = CANDS[1], CANDS[0]
    lat = Latency({"u0": 1.0, "u1": 1.0}, {u: {slow: 0.9, fast: 0.2, CANDS[2]: 0.9}
                                           for u in ("u0", "u1")}, 0.1)
    sens = {"u0": {slow: 0.01, fast: 0.5, CANDS[2]: 0.01},
            "u1": {slow: 0.01, fast: 0.05, CANDS[2]: 0.01}}
    choice = choose(units(2), lat, sens, 1.35)
    assert choice.by_unit == {"u0": None, "u1": fast}
    assert "u1" in choice.table() and "8x16" in choice.table()


def test_impossible_budget_is_a_prune_error() -> None:
    lat = Latency({"u0": 1.0}, {"u0": dict.fromkeys(CANDS, 0.5)}, 0.2)
    with pytest.raises(PruneError, match=r"0\.5000 ms is out of reach: the fastest choice "
                                         r"measures 0\.7000 ms"):
        choose(units(1), lat, {"u0": dict.fromkeys(CANDS, 0.0)}, 0.5)


def test_kernels_go_to_their_layer_and_the_config_names_layers_exactly() -> None:
    model = mlp()
    model.graph.node[0].name = "fc[1]*"  # a glob character in a layer name
    fc1, fc2 = find_units(model, Options.resolve())
    assert (fc1.name, fc2.name) == ("fc_1", "fc2")
    per_unit, other = split_times([("fc_1", 1.0), ("", 0.25), ("fc2", 0.5), ("fc_1", 2.0)],
                                  [fc1, fc2])
    assert per_unit == {"fc_1": 3.0, "fc2": 0.5} and other == 0.25
    config = unit_config([fc1, fc2], {"fc_1": CANDS[1], "fc2": None})
    pruned = prune_model(model, config=config)
    assert [r.pruned for r in pruned.layers] == [True, False]
    assert prune_model(model, block="8x16", rate=8).model.graph.initializer[0] == \
        pruned.model.graph.initializer[0]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {"model": tmp_path / "mlp.onnx", "val": tmp_path / "val.npz"}
    onnx.save(mlp(), paths["model"])
    x = np.random.default_rng(2).standard_normal((64, 256)).astype(np.float32)
    y = (x @ np.random.default_rng(99).standard_normal((256, 10))).argmax(1)
    np.savez(paths["val"], x=x, y=y)
    return paths


FAST = ["--auto-blocks", "8x16", "--auto-rates", "8", "--rounds", "2"]


def test_auto_prints_the_table_and_writes_that_choice(files, tmp_path: Path, capsys) -> None:
    out = tmp_path / "auto.onnx"
    code = grimc_main(["prune", str(files["model"]), "-o", str(out), "--auto", "--latency-target",
                       "1000", "--val", str(files["val"]), "--auto-blocks", "8x16,16x16",
                       "--auto-rates", "2,8", "--rounds", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("layer") and "dense ms" in line)
    rows = {line.split()[0]: line.split() for line in lines[header + 1:header + 3]}
    assert set(rows) == {"fc1", "fc2"}
    assert any(line.startswith("model latency (sum of kernels): target 1000.0000 ms; predicted")
               for line in lines)
    assert any(line.startswith("measured: ") for line in lines)
    # the written model is pruned exactly as the table says
    written = onnx.load(out)
    for layer in find_layers(written):
        block, rate = rows[layer.name][2], rows[layer.name][3]
        weight = numpy_helper.to_array(written.graph.initializer[layer.index])
        if block == "dense":
            np.testing.assert_array_equal(weight, numpy_helper.to_array(
                mlp().graph.initializer[layer.index]))
        else:
            again = prune_model(written, block=block, rate=float(rate.rstrip("x")),
                                include=[layer.name]).model
            np.testing.assert_array_equal(weight, numpy_helper.to_array(
                again.graph.initializer[layer.index]))
            assert np.count_nonzero(weight) < weight.size


@pytest.mark.parametrize(("extra", "message"), [
    (["--auto", "--speedup", "2"], "grimc: error: --auto needs --val FILE.npz"),
    (["--auto", "--val", "VAL"], "grimc: error: --auto: give one of --latency-target MS or --speedup X"),
    (["--auto", "--speedup", "2", "--latency-target", "1", "--val", "VAL"],
     "grimc: error: --auto: give one of --latency-target MS or --speedup X"),
    (["--auto", "--speedup", "0.5", "--val", "VAL"], "grimc: error: --speedup 0.5: expected a factor >= 1"),
    (["--auto", "--speedup", "2", "--rate", "8", "--val", "VAL"],
     "grimc: error: --auto chooses block and rate per layer; drop --rate"),
    (["--speedup", "2"], "grimc: error: --speedup goes with --auto"),
    (["--auto", "--speedup", "2", "--val", "VAL", "--target", "aarch64"],
     "grimc: error: --target aarch64: --auto times kernels in-process, on a target this "
     "machine runs"),
    (["--auto", "--speedup", "2", "--val", "VAL", "--auto-rates", "8,x"],
     "grimc: error: --auto-rates '8,x': expected numbers like 2,4,8"),
])
def test_bad_auto_flags_are_one_line_exit_2(files, tmp_path: Path, capsys, extra, message) -> None:
    out = tmp_path / "out.onnx"
    argv = [str(files["val"]) if a == "VAL" else a for a in extra]
    code = grimc_main(["prune", str(files["model"]), "-o", str(out), *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [err.strip()] and err.startswith(message)
    assert not out.exists()


def test_impossible_latency_target_is_one_line_exit_2(files, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.onnx"
    code = grimc_main(["prune", str(files["model"]), "-o", str(out), "--auto",
                       "--latency-target", "1e-9", "--val", str(files["val"]), *FAST])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "latency target 0.0000 ms is out of reach: the fastest choice measures" in err
    assert not out.exists()


def test_auto_then_retrain_reports_both(files, tmp_path: Path, capsys) -> None:
    out = tmp_path / "auto.onnx"
    code = grimc_main(["prune", str(files["model"]), "-o", str(out), "--auto", "--speedup", "1",
                       "--val", str(files["val"]), "--retrain", "--data", str(files["val"]),
                       "--epochs", "1", *FAST])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "validation accuracy: dense" in captured.out
    assert "model latency (sum of kernels): target" in captured.out
    assert "measured: " in captured.out
    assert out.exists()
