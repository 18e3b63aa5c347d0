"""A small ONNX graph builder with seeded random weights and static shape tracking.

Every method takes tensor names and returns the name of its output, so a network
reads like PyTorch's forward(). Weights come from one `np.random.default_rng(seed)`
stream in build order, so the same calls give the same bytes. Initialization keeps
activations near unit scale through deep nets (He-normal for convs and linears),
because grimc compares its outputs with onnxruntime under tight tolerances, which
is meaningless once values blow up or vanish.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
import onnx
from onnx import TensorProto, helper

Shape = tuple[int, ...]

MIN_OPSET = 11
"""Clip takes min/max as inputs from opset 11 on; ReLU6 relies on that."""


def _conv_out(size: int, k: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - k) // stride + 1


class GraphBuilder:
    """Accumulates nodes and initializers; shapes are static and tracked per tensor."""

    def __init__(self, seed: int = 0, opset: int = 17) -> None:
        if opset < MIN_OPSET:
            raise ValueError(f"opset {opset} is unsupported; grimc.zoo needs >= {MIN_OPSET}")
        self.opset = opset
        self.rng = np.random.default_rng(seed)
        # Weights go straight into the final proto: VGG-16's 553 MB must not be copied.
        self.model = onnx.ModelProto()
        self.graph = self.model.graph
        self.shapes: dict[str, Shape] = {}
        self.dtypes: dict[str, int] = {}
        """Inputs that are not float32 (control inputs), by name."""
        self._nodes = self.graph.node
        """Where nodes go: the main graph, or a branch being built (`branch`)."""
        self._counts: dict[str, int] = {}

    # ----- names, weights, raw nodes -------------------------------------------------

    def fresh(self, prefix: str) -> str:
        """A new name `prefix_N`, unique per prefix and plain ([a-z0-9_])."""
        n = self._counts.get(prefix, 0)
        self._counts[prefix] = n + 1
        return f"{prefix}_{n}"

    def const(self, name: str, value: np.ndarray) -> str:
        """Register an initializer (float tensors are stored as float32)."""
        if value.dtype.kind == "f":
            value = value.astype(np.float32, copy=False)
        value = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<"))
        tensor = self.graph.initializer.add()
        tensor.name = name
        tensor.data_type = helper.np_dtype_to_tensor_dtype(value.dtype)
        tensor.dims.extend(value.shape)
        tensor.raw_data = value.tobytes()
        self.shapes[name] = tuple(value.shape)
        return name

    def node(
        self,
        op_type: str,
        inputs: Sequence[str],
        shape: Shape,
        prefix: str | None = None,
        **attrs: object,
    ) -> str:
        """Append a single-output node; its node and output tensor share one fresh name."""
        return self._emit(self.fresh(prefix or op_type.lower()), op_type, inputs, shape, **attrs)

    def _emit(
        self, name: str, op_type: str, inputs: Sequence[str], shape: Shape, **attrs: object
    ) -> str:
        self._nodes.append(helper.make_node(op_type, list(inputs), [name], name=name, **attrs))
        self.shapes[name] = shape
        return name

    def input(self, name: str, shape: Shape, dtype: int = TensorProto.FLOAT) -> str:
        """Declare a graph input with a static shape (float32 unless `dtype` says)."""
        self.shapes[name] = tuple(shape)
        if dtype != TensorProto.FLOAT:
            self.dtypes[name] = dtype
        return name

    # ----- control flow -----------------------------------------------------------------

    @contextmanager
    def branch(self, name: str) -> Iterator[onnx.GraphProto]:
        """Nodes built inside go to a new graph (an If branch). Its weights stay
        initializers of the main graph, which the branch reads as outer scope,
        as exporters write it."""
        graph = onnx.GraphProto(name=name)
        outer, self._nodes = self._nodes, graph.node
        try:
            yield graph
        finally:
            self._nodes = outer

    def if_(self, cond: str, then: Callable[[], str], otherwise: Callable[[], str]) -> str:
        """If(cond) with one float output; both branches must give it the same shape."""
        name = self.fresh("if")
        branches = []
        for tag, build in (("then", then), ("else", otherwise)):
            with self.branch(f"{name}_{tag}") as graph:
                out = build()
            dims = list(self.shapes[out])
            graph.output.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, dims))
            branches.append((graph, self.shapes[out]))
        (then_graph, shape), (else_graph, other) = branches
        if shape != other:
            raise ValueError(f"If branches give shapes {shape} and {other}")
        return self._emit(name, "If", [cond], shape, then_branch=then_graph, else_branch=else_graph)

    def _normal(self, shape: Shape, std: float) -> np.ndarray:
        """float32 draws directly: VGG-16 has 138M weights, float64 would double the time."""
        return self.rng.standard_normal(shape, dtype=np.float32) * np.float32(std)

    def _he(self, shape: Shape, fan_in: int) -> np.ndarray:
        return self._normal(shape, np.sqrt(2.0 / fan_in))

    def _uniform(self, shape: Shape, bound: float) -> np.ndarray:
        return (self.rng.random(shape, dtype=np.float32) * 2 - 1) * np.float32(bound)

    # ----- convolution and normalization ---------------------------------------------

    def conv(
        self,
        x: str,
        cout: int,
        k: int = 3,
        stride: int = 1,
        pad: int | None = None,
        group: int = 1,
        bias: bool = True,
    ) -> str:
        """Conv2d; `pad=None` means k//2 ("same" at stride 1). He-normal weights."""
        n, cin, h, w = self.shapes[x]
        if cin % group or cout % group:
            raise ValueError(f"conv group {group} does not divide {cin}->{cout} channels")
        pad = k // 2 if pad is None else pad
        fan_in = cin // group * k * k
        name = self.fresh("conv")
        inputs = [x, self.const(f"{name}_w", self._he((cout, cin // group, k, k), fan_in))]
        if bias:
            inputs.append(self.const(f"{name}_b", self._uniform((cout,), 1.0 / np.sqrt(fan_in))))
        shape = (n, cout, _conv_out(h, k, stride, pad), _conv_out(w, k, stride, pad))
        return self._emit(
            name,
            "Conv",
            inputs,
            shape,
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[pad] * 4,
            group=group,
        )

    def conv_transpose(
        self, x: str, cout: int, k: int = 2, stride: int = 2, pad: int = 0, output_padding: int = 0
    ) -> str:
        """ConvTranspose2d (upsampling by `stride`), He-normal weights [Cin, Cout, k, k]."""
        n, cin, h, w = self.shapes[x]
        name = self.fresh("deconv")
        fan_in = cin * k * k // (stride * stride)
        inputs = [
            x,
            self.const(f"{name}_w", self._he((cin, cout, k, k), max(1, fan_in))),
            self.const(f"{name}_b", self._uniform((cout,), 1.0 / np.sqrt(cin * k * k))),
        ]
        size = [(d - 1) * stride - 2 * pad + k + output_padding for d in (h, w)]
        return self._emit(
            name,
            "ConvTranspose",
            inputs,
            (n, cout, *size),
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[pad] * 4,
            output_padding=[output_padding] * 2,
        )

    def resize(self, x: str, scale: int, mode: str = "nearest") -> str:
        """Resize of the spatial axes by an integer factor (scales input, opset >= 13)."""
        n, c, h, w = self.shapes[x]
        name = self.fresh("resize")
        scales = self.const(f"{name}_scales", np.array([1, 1, scale, scale], dtype=np.float32))
        attrs: dict[str, object] = {"mode": mode}
        if mode == "nearest":
            attrs.update(coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        return self._emit(name, "Resize", [x, "", scales], (n, c, h * scale, w * scale), **attrs)

    def bn(self, x: str, gamma_scale: float = 1.0, eps: float = 1e-5) -> str:
        """Inference BatchNormalization with random statistics.

        `gamma_scale` shrinks the last BN of a residual branch so that stacked
        additions do not grow the activations (SkipInit/Fixup style).
        """
        c = self.shapes[x][1]
        name = self.fresh("bn")
        params = [
            self.rng.uniform(0.5, 1.5, c) * gamma_scale,
            self.rng.normal(0.0, 0.1, c),
            self.rng.normal(0.0, 0.1, c),
            self.rng.uniform(0.5, 1.5, c),
        ]
        inputs = [x] + [
            self.const(f"{name}_{suffix}", p)
            for suffix, p in zip(("scale", "bias", "mean", "var"), params, strict=True)
        ]
        return self._emit(name, "BatchNormalization", inputs, self.shapes[x], epsilon=eps)

    # ----- elementwise -----------------------------------------------------------------

    def relu(self, x: str) -> str:
        return self.node("Relu", [x], self.shapes[x])

    def clip(self, x: str, lo: float = 0.0, hi: float = 6.0) -> str:
        """Clip with min/max as scalar initializers (ReLU6 by default)."""
        name = self.fresh("clip")
        bounds = [
            self.const(f"{name}_{tag}", np.array(v, dtype=np.float32))
            for tag, v in (("min", lo), ("max", hi))
        ]
        return self._emit(name, "Clip", [x, *bounds], self.shapes[x])

    def add(self, a: str, b: str) -> str:
        if self.shapes[a] != self.shapes[b]:
            raise ValueError(f"add of mismatched shapes {self.shapes[a]} and {self.shapes[b]}")
        return self.node("Add", [a, b], self.shapes[a])

    def dropout(self, x: str) -> str:
        """Dropout (ratio 0.5 default); an identity at inference, kept for fidelity."""
        return self.node("Dropout", [x], self.shapes[x])

    def softmax(self, x: str, axis: int = -1) -> str:
        return self.node("Softmax", [x], self.shapes[x], axis=axis)

    def scalar(self, op_type: str, x: str, value: float) -> str:
        """x <op> c with a scalar initializer c (Mul, Div, Add, Pow, ...)."""
        c = self.const(self.fresh("c"), np.array(value, dtype=np.float32))
        return self.node(op_type, [x, c], self.shapes[x])

    def binary(self, op_type: str, a: str, b: str) -> str:
        """Element-wise op of two tensors with numpy broadcasting."""
        shape = tuple(np.broadcast_shapes(self.shapes[a], self.shapes[b]))
        return self.node(op_type, [a, b], shape)

    def unary(self, op_type: str, x: str, **attrs: object) -> str:
        return self.node(op_type, [x], self.shapes[x], **attrs)

    def silu(self, x: str) -> str:
        """x * sigmoid(x), as exporters write SiLU/Swish."""
        return self.binary("Mul", x, self.unary("Sigmoid", x))

    def gelu(self, x: str) -> str:
        """Exact GELU as torch.onnx exports it: x * 0.5 * (1 + erf(x / sqrt(2)))."""
        e = self.scalar("Add", self.unary("Erf", self.scalar("Div", x, float(np.sqrt(2.0)))), 1.0)
        return self.scalar("Mul", self.binary("Mul", x, e), 0.5)

    def layer_norm(self, x: str, eps: float = 1e-5) -> str:
        """LayerNormalization over the last axis, scale ~ 1 and bias ~ 0."""
        d = self.shapes[x][-1]
        name = self.fresh("ln")
        scale = self.const(f"{name}_scale", self.rng.uniform(0.8, 1.2, d))
        bias = self.const(f"{name}_bias", self.rng.normal(0.0, 0.1, d))
        return self._emit(
            name, "LayerNormalization", [x, scale, bias], self.shapes[x], axis=-1, epsilon=eps
        )

    def matmul(self, a: str, b: str) -> str:
        """MatMul of two activations (batch dims broadcast)."""
        sa, sb = self.shapes[a], self.shapes[b]
        batch = tuple(np.broadcast_shapes(sa[:-2], sb[:-2]))
        return self.node("MatMul", [a, b], (*batch, sa[-2], sb[-1]))

    def concat(self, xs: Sequence[str], axis: int) -> str:
        shape = list(self.shapes[xs[0]])
        shape[axis] = sum(self.shapes[x][axis] for x in xs)
        return self.node("Concat", list(xs), tuple(shape), axis=axis)

    def split(self, x: str, sizes: Sequence[int], axis: int) -> list[str]:
        """Split into pieces of `sizes` along `axis` (opset >= 13: sizes as an input)."""
        name = self.fresh("split")
        outs = [f"{name}_{i}" for i in range(len(sizes))]
        sizes_t = self.const(f"{name}_sizes", np.array(sizes, dtype=np.int64))
        self._nodes.append(helper.make_node("Split", [x, sizes_t], outs, name=name, axis=axis))
        for out, size in zip(outs, sizes, strict=True):
            shape = list(self.shapes[x])
            shape[axis] = size
            self.shapes[out] = tuple(shape)
        return outs

    def conv1d(self, x: str, cout: int, k: int, stride: int = 1, pad: int = 0) -> str:
        """Conv1d on [N, C, L] (an audio front end), He-normal weights and a bias."""
        n, cin, length = self.shapes[x]
        name = self.fresh("conv1d")
        inputs = [
            x,
            self.const(f"{name}_w", self._he((cout, cin, k), cin * k)),
            self.const(f"{name}_b", self._uniform((cout,), 1.0 / np.sqrt(cin * k))),
        ]
        shape = (n, cout, _conv_out(length, k, stride, pad))
        return self._emit(
            name, "Conv", inputs, shape, kernel_shape=[k], strides=[stride], pads=[pad, pad]
        )

    # ----- pooling and reshaping -------------------------------------------------------

    def _pool(self, op_type: str, x: str, k: int, stride: int, pad: int) -> str:
        n, c, h, w = self.shapes[x]
        shape = (n, c, _conv_out(h, k, stride, pad), _conv_out(w, k, stride, pad))
        return self.node(
            op_type, [x], shape, kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4
        )

    def maxpool(self, x: str, k: int = 2, stride: int | None = None, pad: int = 0) -> str:
        return self._pool("MaxPool", x, k, stride or k, pad)

    def avgpool(self, x: str, k: int = 2, stride: int | None = None, pad: int = 0) -> str:
        return self._pool("AveragePool", x, k, stride or k, pad)

    def global_avgpool(self, x: str) -> str:
        n, c = self.shapes[x][:2]
        return self.node("GlobalAveragePool", [x], (n, c, 1, 1), prefix="gap")

    def flatten(self, x: str) -> str:
        shape = self.shapes[x]
        return self.node("Flatten", [x], (shape[0], int(np.prod(shape[1:]))), axis=1)

    def squeeze(self, x: str, axis: int) -> str:
        shape = self.shapes[x]
        out = shape[:axis] + shape[axis + 1 :]
        if self.opset < 13:
            return self.node("Squeeze", [x], out, axes=[axis])
        axes = self.const(self.fresh("axes"), np.array([axis], dtype=np.int64))
        return self.node("Squeeze", [x, axes], out)

    def transpose(self, x: str, perm: Sequence[int]) -> str:
        shape = self.shapes[x]
        return self.node("Transpose", [x], tuple(shape[p] for p in perm), perm=list(perm))

    def reshape(self, x: str, shape: Shape) -> str:
        target = self.const(self.fresh("shape"), np.array(shape, dtype=np.int64))
        return self.node("Reshape", [x, target], tuple(shape))

    # ----- dense layers ----------------------------------------------------------------

    def gemm(self, x: str, n_out: int, gain: float = 2.0) -> str:
        """Linear layer as Gemm(transB=1), B is [out, in] like torch.nn.Linear.

        `gain` 2 is He (followed by ReLU); 1 suits a final classifier.
        """
        batch, k = self.shapes[x]
        name = self.fresh("gemm")
        w = self._normal((n_out, k), np.sqrt(gain / k))
        b = self._uniform((n_out,), 1.0 / np.sqrt(k))
        inputs = [x, self.const(f"{name}_w", w), self.const(f"{name}_b", b)]
        return self._emit(name, "Gemm", inputs, (batch, n_out), transB=1)

    def linear(self, x: str, n_out: int) -> str:
        """MatMul by a constant [in, out] plus Add bias, for inputs of any rank."""
        shape = self.shapes[x]
        k = shape[-1]
        name = self.fresh("linear")
        w = self.const(f"{name}_w", self._normal((k, n_out), np.sqrt(1.0 / k)))
        b = self.const(f"{name}_b", self._uniform((n_out,), 1.0 / np.sqrt(k)))
        out_shape = shape[:-1] + (n_out,)
        y = self.node("MatMul", [x, w], out_shape)
        return self.node("Add", [y, b], out_shape)

    # ----- recurrent layers ------------------------------------------------------------

    def _recurrent(
        self,
        op_type: str,
        x: str,
        hidden: int,
        gates: int,
        direction: str,
        extra_inputs: Sequence[str] = (),
        **attrs: object,
    ) -> str:
        """One ONNX RNN/GRU/LSTM layer (layout 0); returns Y [seq, dirs, batch, hidden].

        Weights are U(-1/sqrt(H), 1/sqrt(H)) like PyTorch; Y_h/Y_c are not produced.
        """
        seq, batch, size = self.shapes[x]
        dirs = 2 if direction == "bidirectional" else 1
        bound = 1.0 / np.sqrt(hidden)
        name = self.fresh(op_type.lower())
        inputs = [
            x,
            self.const(f"{name}_w", self._uniform((dirs, gates * hidden, size), bound)),
            self.const(f"{name}_r", self._uniform((dirs, gates * hidden, hidden), bound)),
            self.const(f"{name}_b", self._uniform((dirs, 2 * gates * hidden), bound)),
            *extra_inputs,
        ]
        shape = (seq, dirs, batch, hidden)
        return self._emit(
            name, op_type, inputs, shape, hidden_size=hidden, direction=direction, **attrs
        )

    def gru(
        self, x: str, hidden: int, direction: str = "forward", linear_before_reset: int = 1
    ) -> str:
        """ONNX GRU; linear_before_reset=1 matches PyTorch/cuDNN."""
        return self._recurrent(
            "GRU", x, hidden, 3, direction, linear_before_reset=linear_before_reset
        )

    def lstm(self, x: str, hidden: int, direction: str = "forward", peepholes: bool = False) -> str:
        """ONNX LSTM; peephole weights P [dirs, 3H] when asked (PyTorch has none)."""
        extra: list[str] = []
        if peepholes:
            dirs = 2 if direction == "bidirectional" else 1
            p = self._uniform((dirs, 3 * hidden), 1.0 / np.sqrt(hidden))
            extra = ["", "", "", self.const(self.fresh("peephole"), p)]
        return self._recurrent("LSTM", x, hidden, 4, direction, extra)

    def rnn(self, x: str, hidden: int, direction: str = "forward") -> str:
        """ONNX RNN with the default Tanh activation."""
        return self._recurrent("RNN", x, hidden, 1, direction)

    def merge_directions(self, y: str) -> str:
        """Y [seq, dirs, batch, H] -> [seq, batch, dirs*H], the next layer's input."""
        seq, dirs, batch, hidden = self.shapes[y]
        if dirs == 1:
            return self.squeeze(y, 1)
        return self.reshape(self.transpose(y, (0, 2, 1, 3)), (seq, batch, dirs * hidden))

    # ----- model ------------------------------------------------------------------------

    def finish(
        self, inputs: Sequence[str], outputs: Mapping[str, str], name: str = "grimc_zoo"
    ) -> onnx.ModelProto:
        """Complete and return the model (call once); `outputs` maps public names to tensors."""
        renames = {internal: public for public, internal in outputs.items()}
        for node in self.graph.node:
            node.output[:] = [renames.get(t, t) for t in node.output]
            node.input[:] = [renames.get(t, t) for t in node.input]

        def value_info(tensor: str, shape: Shape) -> onnx.ValueInfoProto:
            dtype = self.dtypes.get(tensor, TensorProto.FLOAT)
            return helper.make_tensor_value_info(tensor, dtype, list(shape))

        self.graph.name = name
        self.graph.input.extend(value_info(t, self.shapes[t]) for t in inputs)
        self.graph.output.extend(value_info(p, self.shapes[t]) for p, t in outputs.items())
        opset = self.model.opset_import.add()
        opset.domain, opset.version = "", self.opset
        self.model.ir_version = helper.find_min_ir_version_for([opset])
        self.model.producer_name = "grimc.zoo"
        return self.model
