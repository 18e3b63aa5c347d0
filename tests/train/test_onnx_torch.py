"""grimc.train.onnx_torch: ONNX -> torch -> ONNX keeps every initializer, a retrained
module written back computes what the module computes, and prunable parameters carry
`grimc prune`'s layer names."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from grimc import zoo
from grimc.artifacts import onnxruntime_reference
from grimc.prune import find_layers
from grimc.train.onnx_torch import OnnxModule, prunable_names, to_onnx

CASES = {
    "cnn": (lambda: zoo.small_cnn(), (1, 3, 32, 32)),
    "gru": (lambda: zoo.gru(input_size=16, hidden_size=32, seq_len=5), (5, 1, 16)),
}


def initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


@pytest.mark.parametrize("case", CASES)
def test_round_trip_keeps_every_initializer(case: str) -> None:
    model = CASES[case][0]()
    back = initializers(to_onnx(OnnxModule(model)))
    for name, array in initializers(model).items():
        np.testing.assert_array_equal(back[name], array, err_msg=name)


@pytest.mark.parametrize("case", CASES)
def test_trained_module_written_back_matches_onnxruntime(case: str) -> None:
    build, shape = CASES[case]
    module = OnnxModule(build()).train()
    torch.manual_seed(0)
    x = torch.randn(shape)
    opt = torch.optim.SGD([p for p in module.parameters() if p.requires_grad], 0.1)
    for _ in range(2):
        loss = module(x)[0].square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    module.eval()
    written = to_onnx(module)
    changed = [n for n, a in initializers(written).items()
               if not np.array_equal(a, initializers(module.onnx_model)[n])]
    assert changed  # training moved weights, and they were written back
    ref = onnxruntime_reference(written.SerializeToString(), [x.numpy()])
    with torch.no_grad():
        np.testing.assert_allclose(module(x)[0].numpy(), ref[0], rtol=1e-4, atol=1e-5)


def test_prunable_parameters_carry_the_prune_layer_names() -> None:
    model = zoo.gru(input_size=16, hidden_size=32, seq_len=5)
    names = prunable_names(OnnxModule(model))
    assert sorted(names.values()) == sorted(layer.name for layer in find_layers(model))
    assert any(q.endswith("weight_hh_l0") and n.endswith(".R") for q, n in names.items())


def test_exported_recurrent_model_with_shape_arithmetic_runs_at_any_batch(tmp_path) -> None:
    """torch's exporter wraps GRU/LSTM in Shape/Gather/Concat/Expand for the initial state;
    the translation runs them, so an ONNX model exported at batch 1 trains at batch N."""
    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru, self.lstm = torch.nn.GRU(6, 8), torch.nn.LSTM(8, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            _, (h, _) = self.lstm(self.gru(x)[0])
            return h.squeeze(0)

    net = Net().eval()
    x1 = torch.randn(4, 1, 6)
    torch.onnx.export(net, (x1,), tmp_path / "m.onnx", dynamo=False, opset_version=17)
    model = onnx.load(tmp_path / "m.onnx")
    assert {"Shape", "Gather", "Expand"} <= {n.op_type for n in model.graph.node}
    module = OnnxModule(model).eval()
    ref = onnxruntime_reference(model.SerializeToString(), [x1.numpy()])[0]
    x3 = torch.randn(4, 3, 6)
    with torch.no_grad():
        np.testing.assert_allclose(module(x1)[0].numpy(), ref, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(module(x3)[0].numpy(), net(x3).numpy(), rtol=1e-4, atol=1e-5)
