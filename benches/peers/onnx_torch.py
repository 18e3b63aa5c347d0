"""A tiny ONNX -> torch.nn translation for the op types of the benchmark models.

Why not torchvision or onnx2torch: torchvision is not installed here, and the
benchmark must run the *same* weights in every framework (the seeded zoo models
and their BCR-pruned copies). The ONNX graph is the single source of truth, so
each node becomes the equivalent torch.nn module (Conv2d, BatchNorm2d, GRU,
Linear, ...) with its initializers copied in, and `forward` runs the nodes in
graph order. That is what a PyTorch user's eager model does too: one module
call per layer, BatchNorm not folded, oneDNN/MKL kernels underneath.

Supported: Conv, BatchNormalization, Relu, Clip, MaxPool, AveragePool,
GlobalAveragePool, Add, Mul, Flatten, Reshape, Squeeze, Unsqueeze, Transpose,
Gemm, MatMul, Dropout, Identity, Softmax, Sigmoid, Tanh, GRU, LSTM, RNN.
Anything else raises `UnsupportedOp` naming the op, which the benchmark
reports as the reason the PyTorch row is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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


class OnnxModule(nn.Module):
    """An ONNX graph as a torch.nn.Module (float32, inference)."""

    def __init__(self, model: onnx.ModelProto):
        super().__init__()
        graph = model.graph
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
            self.layers.append(module)
            self.wiring.append((inputs, [o for o in node.output if o]))

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
        if bias:
            conv.bias.data = _tensor(self._const(node.input[2]))
        return conv, [node.input[0]]

    def _op_BatchNormalization(self, node, a):
        scale, b, mean, var = (self._const(n) for n in node.input[1:5])
        bn = nn.BatchNorm2d(len(scale), eps=float(a.get("epsilon", 1e-5)))
        bn.weight.data, bn.bias.data = _tensor(scale), _tensor(b)
        bn.running_mean.data, bn.running_var.data = _tensor(mean), _tensor(var)
        return bn, [node.input[0]]

    def _op_Gemm(self, node, a):
        if a.get("transA", 0) or float(a.get("alpha", 1.0)) != 1.0:
            raise UnsupportedOp("Gemm with transA or alpha != 1")
        w = self._const(node.input[1])
        w = w if a.get("transB", 0) else w.T
        has_c = len(node.input) > 2 and node.input[2] != ""
        lin = nn.Linear(w.shape[1], w.shape[0], bias=has_c)
        lin.weight.data = _tensor(w)
        if has_c:
            lin.bias.data = _tensor(float(a.get("beta", 1.0)) * self._const(node.input[2]))
        return lin, [node.input[0]]

    def _op_MatMul(self, node, a):
        if node.input[1] not in self.consts:
            return _Fn(torch.matmul), list(node.input)
        w = self._const(node.input[1])
        lin = nn.Linear(w.shape[0], w.shape[1], bias=False)
        lin.weight.data = _tensor(w.T)
        return lin, [node.input[0]]

    def _recurrent(self, node, a, cls: type[nn.RNNBase], gates: int, **kw) -> tuple[nn.Module, list]:
        if a.get("direction", b"forward") not in (b"forward", "forward"):
            raise UnsupportedOp(f"{node.op_type} direction {a.get('direction')}")
        if a.get("layout", 0) != 0 or len(node.input) > 4 and any(node.input[4:]):
            raise UnsupportedOp(f"{node.op_type} with layout/sequence_lens/initial state")
        w, r = self._const(node.input[1])[0], self._const(node.input[2])[0]
        hidden = r.shape[1]
        rnn = cls(w.shape[1], hidden, **kw)
        order = _GATE_ORDER[node.op_type]
        def perm(m: np.ndarray) -> np.ndarray:
            return np.concatenate([m[g * hidden:(g + 1) * hidden] for g in order])
        rnn.weight_ih_l0.data, rnn.weight_hh_l0.data = _tensor(perm(w)), _tensor(perm(r))
        if len(node.input) > 3 and node.input[3]:
            b = self._const(node.input[3])[0]
            rnn.bias_ih_l0.data = _tensor(perm(b[: gates * hidden]))
            rnn.bias_hh_l0.data = _tensor(perm(b[gates * hidden:]))
        else:
            rnn.bias_ih_l0.data.zero_()
            rnn.bias_hh_l0.data.zero_()
        return _Recurrent(rnn), [node.input[0]]

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


# ONNX gate order -> torch gate order, as indices into the ONNX gate blocks.
_GATE_ORDER = {
    "GRU": (1, 0, 2),  # ONNX z, r, h -> torch r, z, n
    "LSTM": (0, 2, 3, 1),  # ONNX i, o, f, c -> torch i, f, g(c), o
    "RNN": (0,),
}


class _Recurrent(nn.Module):
    """torch RNN/GRU/LSTM with ONNX's Y layout [seq, num_directions=1, batch, hidden]."""

    def __init__(self, rnn: nn.RNNBase):
        super().__init__()
        self.rnn = rnn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.rnn(x)
        return y.unsqueeze(1)


def convert(model: onnx.ModelProto) -> OnnxModule:
    """The ONNX model as an eval-mode torch module; raises UnsupportedOp."""
    return OnnxModule(model).eval()
