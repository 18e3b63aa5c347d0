"""grimc.train: BCR masks on torch models. Masked training never revives a pruned weight,
the torch path selects exactly what `grimc prune` selects, schedules reach their rule,
and the exported ONNX is detected with the same BCR encoding and computes what the torch
model computes, under onnxruntime and compiled by grimc."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from grimc.artifacts import onnxruntime_reference
from grimc.driver import build_model, import_model
from grimc.names import sanitize
from grimc.pipeline import GRAPH_PIPELINE, PipelineRunner
from grimc.prune import PruneError, Settings, bcr_mask, find_layers, prune_model
from grimc.train import ADMM, BCRPruner, Cubic, OneShot
from grimc.transforms.bcr_detect import detect


class Net(nn.Module):
    """Grouped conv, GRU (input + recurrent), LSTM and Linear: every kind of prunable weight."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 64, 3, padding=1, groups=2)
        self.gru = nn.GRU(40, 48)
        self.lstm = nn.LSTM(48, 40)
        self.fc = nn.Linear(64 * 4 * 4 + 40, 10)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x)).flatten(1)
        seq, _ = self.gru(t)
        _, (h, _) = self.lstm(seq)
        return self.fc(torch.cat([y, h.squeeze(0)], 1))


def inputs(batch: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(batch, 8, 4, 4, generator=g), torch.randn(5, batch, 40, generator=g)


def net(seed: int = 0) -> Net:
    torch.manual_seed(seed)
    return Net()


def train(model: nn.Module, pruner: BCRPruner, steps: int, optimizer: str = "adam") -> None:
    x, t = inputs()
    target = torch.randn(4, 10, generator=torch.Generator().manual_seed(2))
    opt = (torch.optim.Adam(model.parameters(), 1e-2, weight_decay=1e-3) if optimizer == "adam"
           else torch.optim.SGD(model.parameters(), 0.05, momentum=0.9))
    pruner.attach(opt)
    for _ in range(steps):
        loss = (model(x, t) - target).square().mean() + pruner.penalty()
        opt.zero_grad()
        loss.backward()
        opt.step()


def assert_masked(pruner: BCRPruner) -> None:
    assert pruner.pruned
    for plan in pruner.pruned:
        mask = pruner.masks[plan.layer.weight]
        assert not plan.layer.param.detach()[~mask].any(), plan.layer.name


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_masked_training_never_revives_a_pruned_weight(optimizer: str) -> None:
    model = net()
    pruner = BCRPruner(model, rate=8, block="8x16", min_weights=1000)
    before = {k: m.clone() for k, m in pruner.masks.items()}
    params = {p.layer.weight: p.layer.param.detach().clone() for p in pruner.pruned}
    for _ in range(3):
        train(model, pruner, 4, optimizer)
        assert_masked(pruner)
    for plan in pruner.pruned:  # one-shot: the mask never changes, kept weights did train
        assert torch.equal(pruner.masks[plan.layer.weight], before[plan.layer.weight])
        assert not torch.equal(plan.layer.param.detach(), params[plan.layer.weight])
    grads = [p.layer.param.grad[~pruner.masks[p.layer.weight]] for p in pruner.pruned]
    assert all(not g.any() for g in grads)  # masked gradients: optimizer state stays 0 there


def test_gradual_schedule_reaches_the_rate_through_growing_sparsity() -> None:
    model = net()
    pruner = BCRPruner(model, rate=8, block="8x16", min_weights=1000, schedule=Cubic(0, 12, 3))
    fc = next(p for p in pruner.pruned if p.layer.name == "fc")
    densities = []
    for _ in range(4):
        train(model, pruner, 3)
        densities.append(float(pruner.masks[fc.layer.weight].float().mean()))
        assert_masked(pruner)
    assert densities == sorted(densities, reverse=True)
    assert densities[0] > 0.3 and densities[-1] == pytest.approx(1 / 8)
    assert pruner.progress == 1.0


def test_cubic_schedule_follows_zhu_and_gupta() -> None:
    s = Cubic(10, 110, 10)
    assert s.progress(0) == 0 and s.progress(110) == 1 and s.progress(500) == 1
    assert s.progress(35) == s.progress(30) == pytest.approx(1 - (1 - 0.2) ** 3)
    with pytest.raises(PruneError, match="begin < end"):
        Cubic(5, 5)


def test_admm_regularizes_then_hard_prunes() -> None:
    model = net()
    pruner = BCRPruner(model, rate=8, block="8x16", min_weights=1000,
                       schedule=ADMM(rho=0.05, prune_at=8, every=2))
    assert not pruner.masks and pruner.penalty().item() > 0  # Z = proj(W) differs from W
    train(model, pruner, 7)
    assert not pruner.masks
    train(model, pruner, 4)
    assert pruner.progress == 1.0 and pruner.penalty().item() == 0
    assert_masked(pruner)
    for plan in pruner.pruned:
        assert float(pruner.masks[plan.layer.weight].float().mean()) == pytest.approx(1 / 8,
                                                                                      abs=0.02)


def detected(path: Path) -> dict[str, tuple]:
    module = import_model(str(path))
    PipelineRunner().run(module, list(GRAPH_PIPELINE))
    return {r.layer: (r.kernel, r.block, r.nnz, r.size) for r in detect(module)}


def test_torch_path_selects_what_grimc_prune_selects(tmp_path: Path) -> None:
    """Prune the dense export with `prune_model` and the torch model with BCRPruner: the
    same weights survive, layer for layer (recurrent rows included, via the gate order)."""
    model = net().eval()
    x, t = inputs(1)
    torch.onnx.export(model, (x, t), tmp_path / "dense.onnx", dynamo=False, opset_version=17)
    dense = onnx.load(tmp_path / "dense.onnx")
    by_onnx = prune_model(dense, rate=8, block="8x16", min_weights=1000).model
    BCRPruner(model, rate=8, block="8x16", min_weights=1000).export_onnx(tmp_path / "p.onnx", (x, t))
    by_torch = onnx.load(tmp_path / "p.onnx")
    a = {layer.name: layer for layer in find_layers(by_onnx)}
    b = {layer.name: layer for layer in find_layers(by_torch)}
    assert a.keys() == b.keys() and len(a) == 6
    inits_a = {i.name: numpy_helper.to_array(i) for i in by_onnx.graph.initializer}
    inits_b = {i.name: numpy_helper.to_array(i) for i in by_torch.graph.initializer}
    for name in a:
        wa, wb = inits_a[a[name].weight], inits_b[b[name].weight]
        np.testing.assert_array_equal(wa != 0, wb != 0, err_msg=name)
        np.testing.assert_allclose(wa, wb, rtol=1e-6, atol=1e-7)


def test_export_is_detected_as_the_same_bcr_and_matches_ort_and_grimc(tmp_path: Path) -> None:
    model = net()
    pruner = BCRPruner(model, rate=8, block="8x16", min_weights=1000)
    train(model, pruner, 3)
    x, t = inputs(1)
    path = tmp_path / "pruned.onnx"
    pruner.export_onnx(path, (x, t))
    layers = {layer.weight: layer for layer in find_layers(onnx.load(path))}
    found = detected(path)
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(path).graph.initializer}
    keys = {sanitize(name): name for name in layers}
    assert len(found) == len(layers) == 6
    for key, (kernel, block, nnz, _) in found.items():
        name = keys[key.removesuffix(".W").removesuffix(".R")]
        mats = layers[name].gemm_view(inits[name])
        assert kernel == "bcr" and tuple(block) == (8, 16), key
        # the weights the pruner kept are exactly the BCR mask of the exported weights
        np.testing.assert_array_equal(mats != 0, bcr_mask(mats, Settings((8, 16), 8.0)), key)
        assert nnz == int((mats != 0).sum())
    ref = onnxruntime_reference(str(path), [x.numpy(), t.numpy()])[0]
    with torch.no_grad():
        np.testing.assert_allclose(model.eval()(x, t).numpy(), ref, rtol=1e-4, atol=1e-5)
    with build_model(path, tmp_path / "build") as compiled:
        out = compiled.run([x.numpy(), t.numpy()])[0]
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


def test_one_shot_at_a_later_step_and_dense_rules() -> None:
    model = net()
    pruner = BCRPruner(model, rate=4, schedule=OneShot(at=2), exclude=["fc"], min_weights=3000)
    names = {p.layer.name: p.dense_reason for p in pruner.plans}
    assert names["fc"] == "--exclude" and names["gru.weight_ih_l0"] is None
    assert not pruner.masks
    train(model, pruner, 2)
    assert pruner.masks and "fc.weight" not in pruner.masks
    assert_masked(pruner)
    rows = {row.name: row for row in pruner.summary()}
    assert rows["fc"].dense_reason == "--exclude" and rows["fc"].density == 1.0
    assert rows["conv"].dense_reason == "2304 < 3000 weights"
    hh = rows["gru.weight_hh_l0"]  # (144, 48): 8x16 at 4x keeps 8x4 per block
    assert hh.block == (8, 16) and hh.keep == (8, 4) and hh.density == 0.25
    pruner.remove()  # hooks gone: gradients of pruned weights flow again (weights stay 0)
    x, t = inputs()
    model(x, t).sum().backward()
    assert model.gru.weight_hh_l0.grad[~pruner.masks["gru.weight_hh_l0"]].any()
