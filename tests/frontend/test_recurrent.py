"""RNN, GRU and LSTM: every direction, optional inputs, attribute checks."""

from __future__ import annotations

import numpy as np
import pytest

from grimc.frontend import FrontendError, import_onnx
from tests.frontend.helpers import model, node, prop, rand, result_shapes, the, weight_of

SEQ, BATCH, INPUT, HIDDEN = 5, 2, 3, 4
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
DIRS = {"forward": 1, "reverse": 1, "bidirectional": 2}


def recurrent_model(
    op_type: str,
    direction: str = "forward",
    *,
    bias: bool = True,
    initial: bool = False,
    outputs: tuple[str, ...] = ("y", "y_h"),
    extra: dict[str, np.ndarray] | None = None,
    **attrs: object,
):
    dirs, gates = DIRS[direction], GATES[op_type]
    inits = {
        "w": rand(dirs, gates * HIDDEN, INPUT),
        "r": rand(dirs, gates * HIDDEN, HIDDEN, seed=1),
    }
    names = ["x", "w", "r", "", "", ""]
    if bias:
        inits["b"] = rand(dirs, 2 * gates * HIDDEN, seed=2)
        names[3] = "b"
    if initial:
        inits["h0"] = rand(dirs, BATCH, HIDDEN, seed=3)
        names[5] = "h0"
        if op_type == "LSTM":
            inits["c0"] = rand(dirs, BATCH, HIDDEN, seed=4)
            inits["p"] = rand(dirs, 3 * HIDDEN, seed=5)
            names += ["c0", "p"]
    for name, value in (extra or {}).items():
        inits[name] = value
        names[4] = name
    node_outputs = list(outputs) + [""] * (3 - len(outputs))
    rnn = node(
        op_type,
        names,
        node_outputs if op_type == "LSTM" else node_outputs[:2],
        hidden_size=HIDDEN,
        direction=direction,
        **attrs,
    )
    return model([rnn], {"x": [SEQ, BATCH, INPUT]}, [o for o in outputs if o], inits)


@pytest.mark.parametrize("direction", list(DIRS))
@pytest.mark.parametrize("op_type", list(GATES))
@pytest.mark.parametrize("initial", [False, True])
def test_directions_and_initial_states(op_type: str, direction: str, initial: bool) -> None:
    outputs = ("y", "y_h", "y_c") if op_type == "LSTM" else ("y", "y_h")
    m = import_onnx(recurrent_model(op_type, direction, initial=initial, outputs=outputs))
    op = the(m, f"graph.{op_type.lower()}")
    dirs = DIRS[direction]
    assert prop(op, "direction") == direction
    assert prop(op, "hidden_size") == HIDDEN
    assert (op.initial_h is not None) == initial
    state = (dirs, BATCH, HIDDEN)
    assert result_shapes(m) == [(SEQ, dirs, BATCH, HIDDEN), state, state][: len(outputs)]
    np.testing.assert_array_equal(weight_of(m, op.w), rand(dirs, GATES[op_type] * HIDDEN, INPUT))
    if op_type == "LSTM":
        assert (op.initial_c is not None, op.p is not None) == (initial, initial)


@pytest.mark.parametrize("op_type", list(GATES))
def test_without_bias_and_only_y_h(op_type: str) -> None:
    m = import_onnx(recurrent_model(op_type, bias=False, outputs=("", "y_h")))
    assert the(m, f"graph.{op_type.lower()}").b is None
    assert result_shapes(m) == [(1, BATCH, HIDDEN)]


def test_gru_linear_before_reset_and_clip() -> None:
    op = the(import_onnx(recurrent_model("GRU", linear_before_reset=1, clip=3.0)), "graph.gru")
    assert prop(op, "linear_before_reset") == 1
    assert prop(op, "clip") == 3.0


def test_lstm_input_forget() -> None:
    assert (
        prop(
            the(import_onnx(recurrent_model("LSTM", input_forget=1)), "graph.lstm"), "input_forget"
        )
        == 1
    )


def test_explicit_default_activations_are_accepted() -> None:
    attrs = {"activations": ["Sigmoid", "Tanh"] * 2}
    the(import_onnx(recurrent_model("GRU", "bidirectional", **attrs)), "graph.gru")


def test_constant_full_sequence_lens_are_accepted() -> None:
    lens = {"lens": np.full(BATCH, SEQ, np.int32)}
    the(import_onnx(recurrent_model("RNN", extra=lens)), "graph.rnn")


@pytest.mark.parametrize(
    ("op_type", "kwargs", "message"),
    [
        ("GRU", {"layout": 2}, "layout must be 0 or 1"),
        (
            "LSTM",
            {"activations": ["Relu", "Tanh", "Tanh"]},
            r"activations \['Relu', 'Tanh', 'Tanh'\] are not supported",
        ),
        ("RNN", {"activation_alpha": [0.5]}, "activation_alpha"),
        (
            "RNN",
            {"extra": {"lens": np.array([SEQ, 2], np.int32)}},
            r"sequence_lens \[5, 2\] differ",
        ),
    ],
)
def test_unsupported_recurrent_forms(op_type: str, kwargs: dict, message: str) -> None:
    with pytest.raises(FrontendError, match=message):
        import_onnx(recurrent_model(op_type, **kwargs))


def test_direction_must_be_known() -> None:
    onnx_model = recurrent_model("GRU")
    (attr,) = [a for a in onnx_model.graph.node[0].attribute if a.name == "direction"]
    attr.s = b"sideways"
    with pytest.raises(FrontendError, match="unsupported direction 'sideways'"):
        import_onnx(onnx_model)
