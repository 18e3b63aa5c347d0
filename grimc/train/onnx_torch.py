"""A small ONNX -> torch.nn translation, and back: retraining an ONNX model in torch.

Why not onnx2torch: grimc needs the *same* weights on both sides (to retrain a
pruned ONNX model and write it back, and for the peer benchmark's PyTorch row).
The ONNX graph is the single source of truth: each node becomes the equivalent
torch.nn module (Conv2d, BatchNorm2d, GRU, Linear, ...) with its initializers
copied in, `forward` runs the nodes in graph order, and `to_onnx` writes the
(retrained) parameters back into a copy of the ONNX model, graph untouched.
`prunable_names` maps each prunable parameter to its `grimc prune` layer name,
so rules and config patterns mean the same on both sides.

Supported: Conv, BatchNormalization, Relu, Clip, MaxPool, AveragePool,
GlobalAveragePool, Add, Mul, Flatten, Reshape, Squeeze, Unsqueeze, Transpose,
Gemm, MatMul, Dropout, Identity, Softmax, Sigmoid, Tanh, GRU, LSTM, RNN (with
an initial state), and the shape arithmetic torch's exporter emits around
recurrent layers (Shape, Gather, Concat, Expand).
Anything else raises `UnsupportedOp` naming the op, which the benchmark
reports as the reason the PyTorch row is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn


class UnsupportedOp(Exception):
    """The ONNX graph uses an op (or an attribute value) this translation lacks."""


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array, dtype=np.float32, copy=True))


class _Fn(nn.Module):
    """A stateless op as a module, so that every node is one module call."""

    def __init__(self, fn: Callable[..., torch.Tensor]):
        super().__init__()
        self.fn = fn

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.fn(*xs)


def _pads2d(a: dict[str, Any]) -> tuple[int, int]:
    pads = list(a.get("pads", [0, 0, 0, 0]))
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise UnsupportedOp("auto_pad")
    if pads[:2] != pads[2:]:
        raise UnsupportedOp(f"asymmetric pads {pads}")
    return pads[0], pads[1]


class _Source(NamedTuple):
    """Where a parameter or buffer came from, and how to turn it back into that initializer."""

    initializer: str
    qualname: str
    encode: Callable[[np.ndarray], np.ndarray]
    part: int | None = None
    """RNN B is two parameters concatenated: which half this one is."""


def _same(a: np.ndarray) -> np.ndarray:
    return a


def _transposed(a: np.ndarray) -> np.ndarray:
    return a.T


class OnnxModule(nn.Module):
    """An ONNX graph as a torch.nn.Module (float32)."""

    def __init__(self, model: onnx.ModelProto):
        super().__init__()
        self.onnx_model = model
        graph = model.graph
        self.sources: list[_Source] = []
        self.consts: dict[str, np.ndarray] = {
            init.name: numpy_helper.to_array(init) for init in graph.initializer
        }
        for node in graph.node:
            if node.op_type == "Constant":
                self.consts[node.output[0]] = numpy_helper.to_array(_attrs(node)["value"])
        self.input_names = [i.name for i in graph.input if i.name not in self.consts]
        self.output_names = [o.name for o in graph.output]
        self.layers = nn.ModuleList()
        self.wiring: list[tuple[list[str], list[str]]] = []
        for node in graph.node:
            if node.op_type == "Constant":
                continue
            module, inputs = self._translate(node)
            self._track(len(self.layers), module)
            self.layers.append(module)
            self.wiring.append((inputs, [o for o in node.output if o]))

    def _track(self, index: int, module: nn.Module) -> None:
        """Prefix the pending sources of `module` with its place in `layers`."""
        for i, source in enumerate(self.sources):
            if not source.qualname.startswith("layers."):
                self.sources[i] = source._replace(qualname=f"layers.{index}.{source.qualname}")

    def _source(self, initializer: str, attr: str, encode: Callable = _same,
                part: int | None = None) -> None:
        self.sources.append(_Source(initializer, attr, encode, part))

    def _const(self, name: str) -> np.ndarray:
        if name not in self.consts:
            raise UnsupportedOp(f"non-constant weight '{name}'")
        return self.consts[name]

    def _translate(self, node: onnx.NodeProto) -> tuple[nn.Module, list[str]]:
        handler = getattr(self, f"_op_{node.op_type}", None)
        if handler is None:
            raise UnsupportedOp(node.op_type)
        return handler(node, _attrs(node))

    # ----- layers with weights ---------------------------------------------------------

    def _op_Conv(self, node, a):
        w = self._const(node.input[1])
        bias = len(node.input) > 2 and node.input[2] != ""
        cout, cin_g, kh, kw = w.shape
        group = int(a.get("group", 1))
        conv = nn.Conv2d(
            cin_g * group, cout, (kh, kw), stride=tuple(a.get("strides", [1, 1])),
            padding=_pads2d(a), dilation=tuple(a.get("dilations", [1, 1])), groups=group,
            bias=bias,
        )
        conv.weight.data = _tensor(w)
        self._source(node.input[1], "weight")
        if bias:
            conv.bias.data = _tensor(self._const(node.input[2]))
            self._source(node.input[2], "bias")
        return conv, [node.input[0]]

    def _op_BatchNormalization(self, node, a):
        scale, b, mean, var = (self._const(n) for n in node.input[1:5])
        bn = nn.BatchNorm2d(len(scale), eps=float(a.get("epsilon", 1e-5)))
        bn.weight.data, bn.bias.data = _tensor(scale), _tensor(b)
        bn.running_mean.data, bn.running_var.data = _tensor(mean), _tensor(var)
        for name, attr in zip(node.input[1:5], ("weight", "bias", "running_mean", "running_var"),
                              strict=True):
            self._source(name, attr)
        return bn, [node.input[0]]

    def _op_Gemm(self, node, a):
        if a.get("transA", 0) or float(a.get("alpha", 1.0)) != 1.0:
            raise UnsupportedOp("Gemm with transA or alpha != 1")
        w = self._const(node.input[1])
        trans_b = bool(a.get("transB", 0))
        w = w if trans_b else w.T
        self._source(node.input[1], "weight", _same if trans_b else _transposed)
        has_c = len(node.input) > 2 and node.input[2] != ""
        lin = nn.Linear(w.shape[1], w.shape[0], bias=has_c)
        lin.weight.data = _tensor(w)
        if has_c:
            c, beta = self._const(node.input[2]), float(a.get("beta", 1.0))
            if c.size != w.shape[0]:
                raise UnsupportedOp(f"Gemm bias of shape {list(c.shape)}")
            lin.bias.data = _tensor(beta * c.reshape(-1))
            self._source(node.input[2], "bias", lambda b: (b / beta).reshape(c.shape))
        return lin, [node.input[0]]

    def _op_MatMul(self, node, a):
        if node.input[1] not in self.consts:
            return _Fn(torch.matmul), list(node.input)
        w = self._const(node.input[1])
        lin = nn.Linear(w.shape[0], w.shape[1], bias=False)
        lin.weight.data = _tensor(w.T)
        self._source(node.input[1], "weight", _transposed)
        return lin, [node.input[0]]

    def _recurrent(self, node, a, cls: type[nn.RNNBase], gates: int, **kw) -> tuple[nn.Module, list]:
        if a.get("direction", b"forward") not in (b"forward", "forward"):
            raise UnsupportedOp(f"{node.op_type} direction {a.get('direction')}")
        if a.get("layout", 0) != 0 or len(node.input) > 4 and node.input[4]:
            raise UnsupportedOp(f"{node.op_type} with layout/sequence_lens")
        states = [n for n in node.input[5:7] if n]
        if node.op_type == "LSTM" and len(states) == 1:
            raise UnsupportedOp("LSTM with only one of initial_h, initial_c")
        w, r = self._const(node.input[1])[0], self._const(node.input[2])[0]
        hidden = r.shape[1]
        rnn = cls(w.shape[1], hidden, **kw)
        order = GATE_ORDER[node.op_type]

        def perm(m: np.ndarray) -> np.ndarray:
            return gate_rows(m, order, hidden)

        def unperm(m: np.ndarray) -> np.ndarray:
            return gate_rows(m, inverse_order(order), hidden)

        rnn.weight_ih_l0.data, rnn.weight_hh_l0.data = _tensor(perm(w)), _tensor(perm(r))
        self._source(node.input[1], "rnn.weight_ih_l0", lambda m: unperm(m)[None])
        self._source(node.input[2], "rnn.weight_hh_l0", lambda m: unperm(m)[None])
        if len(node.input) > 3 and node.input[3]:
            b = self._const(node.input[3])[0]
            rnn.bias_ih_l0.data = _tensor(perm(b[: gates * hidden]))
            rnn.bias_hh_l0.data = _tensor(perm(b[gates * hidden:]))
            self._source(node.input[3], "rnn.bias_ih_l0", unperm, part=0)
            self._source(node.input[3], "rnn.bias_hh_l0", unperm, part=1)
        else:  # no B in the model: nothing to write a trained bias into
            for bias in (rnn.bias_ih_l0, rnn.bias_hh_l0):
                bias.data.zero_()
                bias.requires_grad_(False)
        recurrent = _Recurrent(rnn)
        if not states:
            return recurrent, [node.input[0]]
        const = {n: _tensor(self.consts[n]) for n in states if n in self.consts}
        if const:  # a constant initial state (the exporter's zeros): bound, not wired
            return _Fn(lambda x: recurrent(x, *(const[n] for n in states))), [node.input[0]]
        return recurrent, [node.input[0], *states]

    def _op_GRU(self, node, a):
        if int(a.get("linear_before_reset", 0)) != 1:
            raise UnsupportedOp("GRU with linear_before_reset=0 (torch computes the other form)")
        return self._recurrent(node, a, nn.GRU, 3)

    def _op_LSTM(self, node, a):
        if len(node.input) > 7 and node.input[7]:
            raise UnsupportedOp("LSTM peepholes")
        return self._recurrent(node, a, nn.LSTM, 4)

    def _op_RNN(self, node, a):
        return self._recurrent(node, a, nn.RNN, 1, nonlinearity="tanh")

    # ----- stateless ops ----------------------------------------------------------------

    def _op_Relu(self, node, a):
        return nn.ReLU(), [node.input[0]]

    def _op_Sigmoid(self, node, a):
        return nn.Sigmoid(), [node.input[0]]

    def _op_Tanh(self, node, a):
        return nn.Tanh(), [node.input[0]]

    def _op_Clip(self, node, a):
        def bound(i: int) -> float | None:
            if len(node.input) <= i or not node.input[i]:
                return None
            return float(np.asarray(self._const(node.input[i])).reshape(-1)[0])

        lo, hi = bound(1), bound(2)
        if lo == 0.0 and hi == 6.0:
            return nn.ReLU6(), [node.input[0]]
        return _Fn(lambda x: torch.clamp(x, lo, hi)), [node.input[0]]

    def _op_MaxPool(self, node, a):
        if a.get("ceil_mode", 0):
            raise UnsupportedOp("MaxPool ceil_mode")
        pool = nn.MaxPool2d(tuple(a["kernel_shape"]), stride=tuple(a.get("strides", [1, 1])),
                            padding=_pads2d(a))
        return pool, [node.input[0]]

    def _op_AveragePool(self, node, a):
        pool = nn.AvgPool2d(tuple(a["kernel_shape"]), stride=tuple(a.get("strides", [1, 1])),
                            padding=_pads2d(a), count_include_pad=bool(a.get("count_include_pad", 0)))
        return pool, [node.input[0]]

    def _op_GlobalAveragePool(self, node, a):
        return nn.AdaptiveAvgPool2d(1), [node.input[0]]

    def _op_Flatten(self, node, a):
        return nn.Flatten(int(a.get("axis", 1))), [node.input[0]]

    def _op_Dropout(self, node, a):
        return nn.Identity(), [node.input[0]]

    def _op_Identity(self, node, a):
        return nn.Identity(), [node.input[0]]

    def _op_Add(self, node, a):
        return self._binary(node, torch.add)

    def _op_Mul(self, node, a):
        return self._binary(node, torch.mul)

    def _binary(self, node, fn):
        const = [n for n in node.input if n in self.consts]
        if not const:
            return _Fn(fn), list(node.input)
        c = _tensor(self._const(const[0]))
        other = [n for n in node.input if n not in self.consts]
        return _Fn(lambda x: fn(x, c)), other

    def _mixed(self, node, fn: Callable[..., torch.Tensor]) -> tuple[nn.Module, list[str]]:
        """`fn` over all inputs in order, constants bound now and the rest wired."""
        names = list(node.input)
        const = {i: torch.from_numpy(np.array(self.consts[n])) for i, n in enumerate(names)
                 if n in self.consts}
        wired = [n for i, n in enumerate(names) if i not in const]

        def call(*xs: torch.Tensor) -> torch.Tensor:
            it = iter(xs)
            return fn(*(const[i] if i in const else next(it) for i in range(len(names))))

        return _Fn(call), wired

    def _op_Shape(self, node, a):
        start, end = int(a.get("start", 0)), a.get("end")

        def shape(x: torch.Tensor) -> torch.Tensor:
            dims = list(x.shape)[start:None if end is None else int(end)]
            return torch.tensor(dims, dtype=torch.int64)

        return _Fn(shape), [node.input[0]]

    def _op_Gather(self, node, a):
        axis = int(a.get("axis", 0))

        def gather(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
            index = torch.where(index < 0, index + x.shape[axis], index)
            flat = torch.index_select(x, axis, index.reshape(-1).long())
            return flat.reshape((*x.shape[:axis], *index.shape, *x.shape[axis + 1:]))

        return self._mixed(node, gather)

    def _op_Concat(self, node, a):
        axis = int(a["axis"])
        return self._mixed(node, lambda *xs: torch.cat(xs, axis))

    def _op_Expand(self, node, a):
        def expand(x: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
            return x.expand(torch.broadcast_shapes(x.shape, tuple(int(d) for d in shape)))

        return self._mixed(node, expand)

    def _op_Softmax(self, node, a):
        return nn.Softmax(int(a.get("axis", -1))), [node.input[0]]

    def _op_Reshape(self, node, a):
        shape = [int(d) for d in self._const(node.input[1])]
        if 0 in shape:
            raise UnsupportedOp("Reshape with 0 (copy) dims")
        return _Fn(lambda x: torch.reshape(x, shape)), [node.input[0]]

    def _op_Transpose(self, node, a):
        perm = list(a["perm"])
        return _Fn(lambda x: x.permute(*perm).contiguous()), [node.input[0]]

    def _op_Squeeze(self, node, a):
        axes = [int(d) for d in self._const(node.input[1])] if len(node.input) > 1 else a["axes"]
        return _Fn(lambda x: torch.squeeze(x, tuple(axes))), [node.input[0]]

    def _op_Unsqueeze(self, node, a):
        axes = [int(d) for d in self._const(node.input[1])] if len(node.input) > 1 else a["axes"]

        def unsqueeze(x: torch.Tensor) -> torch.Tensor:
            for ax in sorted(axes):
                x = x.unsqueeze(ax)
            return x

        return _Fn(unsqueeze), [node.input[0]]

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        env: dict[str, torch.Tensor] = dict(zip(self.input_names, inputs, strict=True))
        for layer, (ins, outs) in zip(self.layers, self.wiring, strict=True):
            result = layer(*(env[n] for n in ins))
            if isinstance(result, tuple):
                env.update(zip(outs, result, strict=False))
            else:
                env[outs[0]] = result
        return tuple(env[n] for n in self.output_names)


def gate_rows(m: np.ndarray, order: tuple[int, ...], hidden: int) -> np.ndarray:
    """The gate blocks (`hidden` rows each) of `m` in `order`."""
    return np.concatenate([m[g * hidden:(g + 1) * hidden] for g in order])


def inverse_order(order: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argsort(order))


# ONNX gate order -> torch gate order, as indices into the ONNX gate blocks.
GATE_ORDER = {
    "GRU": (1, 0, 2),  # ONNX z, r, h -> torch r, z, n
    "LSTM": (0, 2, 3, 1),  # ONNX i, o, f, c -> torch i, f, g(c), o
    "RNN": (0,),
}


class _Recurrent(nn.Module):
    """torch RNN/GRU/LSTM with ONNX's Y layout [seq, num_directions=1, batch, hidden]."""

    def __init__(self, rnn: nn.RNNBase):
        super().__init__()
        self.rnn = rnn

    def forward(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(Y, Y_h) or, for LSTM, (Y, Y_h, Y_c); `state` is ONNX's initial_h (, initial_c)."""
        h0 = None if not state else (tuple(state) if len(state) == 2 else state[0])
        if h0 is not None and isinstance(self.rnn, nn.LSTM):
            h0 = (h0[0], h0[1])
        y, h = self.rnn(x, h0)
        return (y.unsqueeze(1), *(h if isinstance(h, tuple) else (h,)))


def convert(model: onnx.ModelProto) -> OnnxModule:
    """The ONNX model as an eval-mode torch module; raises UnsupportedOp."""
    return OnnxModule(model).eval()


def prunable_names(module: OnnxModule) -> dict[str, str]:
    """Parameter qualname -> `grimc prune` layer name, for every prunable ONNX weight."""
    from grimc.prune import find_layers

    by_init = {s.initializer: s.qualname for s in module.sources if s.qualname.endswith(
        ("weight", "weight_ih_l0", "weight_hh_l0"))}
    return {by_init[layer.weight]: layer.name for layer in find_layers(module.onnx_model)
            if layer.weight in by_init}


def to_onnx(module: OnnxModule) -> onnx.ModelProto:
    """A copy of the source ONNX model with the module's current parameters and BN statistics."""
    model = onnx.ModelProto()
    model.CopyFrom(module.onnx_model)
    state = module.state_dict()
    inits = {t.name: t for t in model.graph.initializer}
    values: dict[str, np.ndarray] = {}
    halves: dict[str, dict[int, np.ndarray]] = {}
    for source in module.sources:
        value = source.encode(state[source.qualname].detach().cpu().numpy())
        if source.part is None:
            values[source.initializer] = value
        else:
            halves.setdefault(source.initializer, {})[source.part] = value
    values.update({name: np.concatenate([h[0], h[1]])[None] for name, h in halves.items()})
    for name, array in values.items():
        tensor = inits[name]
        old = numpy_helper.to_array(tensor)
        new = numpy_helper.from_array(np.asarray(array, dtype=old.dtype).reshape(old.shape), name)
        new.doc_string = tensor.doc_string
        tensor.CopyFrom(new)
    return model
