"""Shapes beyond `grimc.limits` are refused with one line naming the tensor.

Generated kernels index with C `int`; before the limits existed a 2^31 dim or a
product wrapping modulo 2^64 compiled into code that truncated its counts and
overflowed the heap (or did not compile at all). The boundaries are checked at
compile time, where no gigabyte tensors have to exist.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Block, Region

from grimc.dialects import graph as g
from grimc.driver import compile_model
from grimc.emit.codegen import generate
from grimc.errors import GrimcError
from grimc.frontend import FrontendError, import_onnx
from grimc.limits import MAX_ELEMENTS, LimitError
from grimc.runner import ExeModel
from grimc.toolchain import compile_object
from tests.conftest import run_tool
from tests.frontend.helpers import model, node, rand


def relu(dims: list[int]) -> onnx.ModelProto:
    return model([node("Relu", ["x"], ["y"])], {"x": dims}, ["y"])


def one_line_error(source: object, **kwargs: object) -> str:
    with pytest.raises(GrimcError) as info:
        compile_model(source, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message and info.value.exit_code == 2
    return message


@pytest.mark.parametrize(
    "dims",
    [
        [MAX_ELEMENTS + 1],
        [2**31 - 1],
        [2**31],
        [2**32, 2**32],  # the product wraps to 0 modulo 2^64
        [3, 2**62],  # the product wraps to 2^62 modulo 2^64
        [2**63 - 1],
        [2**21, 2**21, 2**21],  # each dim small, the product 2^63
    ],
)
def test_input_beyond_the_limit_is_refused(dims: list[int]) -> None:
    message = one_line_error(relu(dims))
    assert "input 'x'" in message and str(MAX_ELEMENTS) in message


@pytest.mark.parametrize("target", ["host", "aarch64"])
def test_largest_tensor_compiles_and_its_counts_are_exact(target: str, tmp_path: Path) -> None:
    """2^30 elements is accepted; its C compiles warning-free with the exact count."""
    gen = compile_model(relu([MAX_ELEMENTS]), target=target)
    assert gen.inputs[0].shape == (MAX_ELEMENTS,)
    assert gen.buffers[0].nbytes == 4 * MAX_ELEMENTS
    assert str(MAX_ELEMENTS) in gen.source
    c_path = tmp_path / "m.c"
    c_path.write_text(gen.source)
    (tmp_path / f"{gen.prefix}.h").write_text(gen.header)
    compile_object(c_path, tmp_path / "m.o", target, werror=True)


@pytest.mark.parametrize(
    ("op", "a", "b"),
    [
        ("MatMul", [2**16, 1], [1, 2**16]),  # outer product: 2^32 results
        ("Add", [2**16, 1], [1, 2**16]),  # broadcast: 2^32 results
    ],
)
def test_intermediate_beyond_the_limit_names_its_node(op: str, a: list, b: list) -> None:
    source = model([node(op, ["a", "b"], ["y"], name="big")], {"a": a, "b": b}, ["y"])
    message = one_line_error(source)
    assert message.startswith("model: node 'big'") and "output 'y'" in message


def test_input_shape_override_beyond_the_limit() -> None:
    with pytest.raises(FrontendError, match=r"input 'x'.*2147483648 elements"):
        import_onnx(relu(["n"]), input_shapes={"x": [2**31]})


def test_ir_file_beyond_the_limit_is_refused(tmp_path: Path) -> None:
    """IR files skip the importer: they are checked when parsed."""
    big = "tensor<2147483648xf32>"
    path = tmp_path / "big.mlir"
    path.write_text(
        "builtin.module {\n"
        f"  func.func @main(%x: {big}) -> {big} {{\n"
        f'    %y = "graph.relu"(%x) : ({big}) -> {big}\n'
        f"    func.return %y : {big}\n  }}\n}}\n"
    )
    proc = run_tool(["grimc", str(path), "-o", str(tmp_path / "big.c")])
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "2147483648 elements" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.mlir"]


def test_cli_refuses_a_2_63_dim_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(relu([2**63 - 1]), path)
    proc = run_tool(["grimc", str(path), "-o", str(tmp_path / "m.c")])
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "9223372036854775807 elements" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


@pytest.mark.parametrize(
    ("target", "sanitize"), [("host", ("address", "undefined")), ("aarch64", ())]
)
def test_wide_softmax_and_transpose_run_exactly(
    target: str, sanitize: tuple[str, ...], tmp_path: Path
) -> None:
    """Counts past 2^24 (where float counters would round) stay exact, clean under
    ASan/UBSan on the host and under qemu on aarch64: Softmax over rows of 2^20,
    then a Transpose of the 16 x 2^20 result."""
    shape = [16, 2**20]
    source = model(
        [node("Softmax", ["x"], ["s"], axis=1), node("Transpose", ["s"], ["y"], perm=[1, 0])],
        {"x": shape},
        ["y"],
    )
    x = rand(*shape)
    gen = compile_model(source, target=target)
    with ExeModel.build(gen, tmp_path, target=target, sanitize=sanitize) as m:
        (y,) = m.run([x])
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(y, (e / e.sum(axis=1, keepdims=True)).T, rtol=1e-4, atol=1e-5)


def test_code_generation_refuses_a_module_beyond_the_limit() -> None:
    """Modules built through the API skip both importer and IR parser."""
    big = g.tensor([2**31])
    block = Block(arg_types=[big])
    block.add_ops([relu := g.ReluOp(block.args[0]), func.ReturnOp(relu.y)])
    module = ModuleOp([func.FuncOp("main", ([big], [big]), Region(block))])
    with pytest.raises(LimitError, match=r"^input 'input0' \(buffer 0\) needs 8589934592 bytes"):
        generate(module, "host")
