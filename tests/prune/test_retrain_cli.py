"""`grimc prune --retrain/--distill`: an ONNX model pruned and retrained from .npz data keeps
exact BCR structure and learns; data that does not fit the model is refused with one line,
exit 2, and nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from grimc import zoo
from grimc.artifacts import onnxruntime_reference
from grimc.cli import main as grimc_main
from grimc.prune import find_layers, prune_model
from tests.prune.models import mlp as shared_mlp


def mlp() -> onnx.ModelProto:
    """64 -> 128 -> 10, batch dimension symbolic; the first Gemm is prunable (8 192 weights)."""
    return shared_mlp(64, 128, 0.2)


def dataset(n: int, seed: int) -> dict[str, np.ndarray]:
    """A learnable task: the class is the argmax of a fixed projection of x."""
    x = np.random.default_rng(seed).standard_normal((n, 64)).astype(np.float32)
    project = np.random.default_rng(99).standard_normal((64, 10))
    return {"x": x, "y": (x @ project).argmax(1).astype(np.int64)}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {"model": tmp_path / "mlp.onnx", "train": tmp_path / "train.npz",
             "val": tmp_path / "val.npz"}
    onnx.save(mlp(), paths["model"])
    np.savez(paths["train"], **dataset(256, 1))
    np.savez(paths["val"], **dataset(128, 2))
    return paths


def test_retrain_writes_exact_bcr_that_beats_one_shot(files, tmp_path: Path, capsys) -> None:
    out = tmp_path / "pruned.onnx"
    code = grimc_main(["prune", str(files["model"]), "-o", str(out), "--rate", "8", "--block",
                       "8x16", "--retrain", "--data", str(files["train"]), "--val",
                       str(files["val"]), "--epochs", "8", "--lr", "1e-2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    epochs = [line for line in captured.err.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 8 and "val acc" in epochs[-1]
    assert "fc1" in captured.out and "validation accuracy: dense" in captured.out
    retrained = onnx.load(out)
    # the written weights are exactly BCR at the rate: pruning them again changes nothing
    again = prune_model(retrained, rate=8, block="8x16").model
    for a, b in zip(retrained.graph.initializer, again.graph.initializer, strict=True):
        np.testing.assert_array_equal(numpy_helper.to_array(a), numpy_helper.to_array(b))
    w1 = numpy_helper.to_array(next(t for t in retrained.graph.initializer if t.name == "w1"))
    assert np.count_nonzero(w1) == w1.size // 8
    one_shot = prune_model(mlp(), rate=8, block="8x16").model
    val = dataset(128, 2)

    def accuracy(model: onnx.ModelProto) -> float:
        (logits,) = onnxruntime_reference(model.SerializeToString(), [val["x"]])
        return float((logits.argmax(1) == val["y"]).mean())

    assert accuracy(retrained) > accuracy(one_shot) + 0.1


def test_distill_without_labels_on_a_recurrent_model(tmp_path: Path, capsys) -> None:
    """GRU inputs are [seq, batch, features]: the .npz holds samples on axis 0."""
    model = zoo.gru(input_size=16, hidden_size=32, seq_len=5)
    path, data, out = tmp_path / "gru.onnx", tmp_path / "x.npz", tmp_path / "p.onnx"
    onnx.save(model, path)
    np.savez(data, x=np.random.default_rng(0).standard_normal((40, 5, 16)).astype(np.float32))
    code = grimc_main(["prune", str(path), "-o", str(out), "--rate", "4", "--min-weights", "1000",
                       "--distill", "--data", str(data), "--epochs", "2", "--method", "gradual"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    pruned = {layer.name for layer in find_layers(model)}
    assert any(name.endswith(".R") for name in pruned)
    r = next(t for t in onnx.load(out).graph.initializer if t.name == find_layers(model)[1].weight)
    assert np.count_nonzero(numpy_helper.to_array(r)) == numpy_helper.to_array(r).size // 4


@pytest.mark.parametrize(
    "data, extra, message",
    [
        ({"x": np.zeros((8, 32), np.float32), "y": np.zeros(8, np.int64)}, [],
         "--data DATA: array 'x' has shape [8, 32] but the model input 'x' takes [N, 64]"),
        ({"inputs": np.zeros((8, 64), np.float32)}, [],
         "--data DATA: no array 'x' for the model input 'x' (arrays: inputs)"),
        ({"x": np.zeros((8, 64), np.float32)}, [],
         "--data DATA: no labels 'y' (use --distill to train without labels)"),
        ({"x": np.zeros((8, 64), np.float32), "y": np.arange(8) * 3}, [],
         "--data DATA: class labels 'y' span 0..21 but the model has 10 outputs"),
        ({"x": np.zeros((8, 64), np.float32), "y": np.zeros(7, np.int64)}, [],
         "--data DATA: 7 labels 'y' for 8 samples"),
        ({"x": np.full((8, 64), np.nan, np.float32), "y": np.zeros(8, np.int64)}, [],
         "--data DATA: array 'x' has non-finite values"),
        (None, [], "--data DATA: cannot read .npz"),
        ({"x": np.zeros((8, 64), np.float32)}, ["NODATA"], "--retrain needs --data FILE.npz"),
    ],
)
def test_mismatched_data_is_one_line_exit_2_and_writes_nothing(
    files, tmp_path: Path, capsys, data, extra: list[str], message: str
) -> None:
    path = tmp_path / "bad.npz"
    if data is None:
        path.write_bytes(b"not an npz")
    else:
        np.savez(path, **data)
    out = tmp_path / "out.onnx"
    args = ["--retrain"] if extra == ["NODATA"] else ["--retrain", "--data", str(path)]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert grimc_main(["prune", str(files["model"]), "-o", str(out), "--epochs", "1",
                       *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("grimc: error: ")
    assert message.replace("DATA", str(path)) in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_epoch_log_is_a_bar_on_a_terminal_and_lines_when_piped() -> None:
    import io

    from grimc.train.fit import Epoch, EpochLog

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    rows = [Epoch(1, 0.5, 0.8, 0.6, 0.75), Epoch(2, 0.25, 0.9, 0.4, 0.85)]
    piped, tty = io.StringIO(), Terminal()
    for stream in (piped, tty):
        log = EpochLog(2, stream)
        for row in rows:
            log(row)
        log.close()
    assert piped.getvalue().splitlines() == [
        "epoch 1/2  loss 0.5000  acc 80.00%  val loss 0.6000  val acc 75.00%",
        "epoch 2/2  loss 0.2500  acc 90.00%  val loss 0.4000  val acc 85.00%"]
    assert "retraining" in tty.getvalue() and "2/2" in tty.getvalue()
    assert "val acc 85.00%" in tty.getvalue() and "\r" in tty.getvalue()


def test_epoch_log_is_silent_when_quiet() -> None:
    """`grimc prune -q --retrain` prints no per-epoch bar or lines, like every other progress."""
    import io

    from grimc import progress
    from grimc.train.fit import Epoch, EpochLog

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    progress.set_quiet(True)
    try:
        for stream in (io.StringIO(), Terminal()):
            log = EpochLog(1, stream)
            log(Epoch(1, 0.5, 0.8))
            log.close()
            assert stream.getvalue() == ""
    finally:
        progress.set_quiet(False)
