"""grimc.train.sensitivity: the loss change it reports for pruning one layer is the one of
the ONNX model pruned that way (`prune_model` with the --auto config), evaluated anew, for a
feed-forward and a recurrent model (gate order), without labels too."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from grimc import zoo
from grimc.prune import Options, prune_model
from grimc.prune.auto import Candidate, find_units, unit_config
from grimc.train.fit import Samples, evaluate
from grimc.train.onnx_torch import OnnxModule
from grimc.train.sensitivity import sensitivity
from tests.prune.models import mlp

CANDS = [Candidate((8, 16), 8.0), Candidate((16, 32), 4.0)]


def cases() -> list[tuple[onnx.ModelProto, Samples, Options]]:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((48, 256)).astype(np.float32)
    labelled = Samples([x], (x @ rng.standard_normal((256, 10))).argmax(1))
    gru = zoo.gru(input_size=16, hidden_size=32, seq_len=5)
    seqs = Samples([rng.standard_normal((5, 24, 16)).astype(np.float32)], None, [1])
    return [(mlp(), labelled, Options.resolve()),
            (gru, seqs, Options.resolve(min_weights=1000))]


@pytest.mark.parametrize("case", [0, 1], ids=["mlp-labels", "gru-no-labels"])
def test_sensitivity_is_the_loss_of_the_model_pruned_that_way(case: int) -> None:
    model, val, options = cases()[case]
    units = find_units(model, options)
    assert units
    base, found = sensitivity(model, units, CANDS, val, options)
    teacher = OnnxModule(model) if val.labels is None else None
    assert base == pytest.approx(evaluate(OnnxModule(model), val, teacher)[0], rel=1e-6)
    for unit in units:
        for cand in CANDS:
            config = unit_config(units, {u.name: cand if u is unit else None for u in units})
            pruned = prune_model(model, config=config, min_weights=options.base.get("min_weights"))
            assert sum(r.pruned for r in pruned.layers) == len(unit.layers)
            loss = evaluate(OnnxModule(pruned.model), val, teacher)[0]
            assert found[unit.name][cand] == pytest.approx(loss - base, rel=1e-4, abs=1e-6)
            assert found[unit.name][cand] != 0.0
