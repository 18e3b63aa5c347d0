"""The bcr dialect (ops, #bcr.encoding, #bcr.schedule) and the BCRC storage format."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xdsl.dialects.builtin import IntegerType, ModuleOp, StringAttr, TensorType
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.irdl import IRDLOperation
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import ParseError, VerifyException

from grimc.bcr_format import BCRFormatError, BCRMatrix, pack, packed_bytes, store_keys, unpack
from grimc.dialects.bcr import (
    Conv2dOp,
    EncodingAttr,
    GRUOp,
    LSTMOp,
    MatMulOp,
    RNNOp,
    ScheduleAttr,
)
from grimc.dialects.graph import ActivationAttr, WeightOp, f32_attr, i64_attr, tensor
from grimc.universe import make_context

# --------------------------------------------------------------------------
# helpers


def enc(matrix: Sequence[int], groups: int = 1, **kw: object) -> EncodingAttr:
    """A dense-ish encoding of the given GEMM view (keep = block)."""
    block = kw.pop("block", (4, 4))
    keep = kw.pop("keep", tuple(min(b, m) for b, m in zip(block, matrix, strict=True)))
    density = kw.pop("density", 0.5)
    return EncodingAttr(matrix=matrix, groups=groups, block=block, keep=keep, density=density, **kw)


def recurrent(
    cls: type[IRDLOperation],
    x: SSAValue,
    hidden: int,
    direction: str,
    optional: dict[str, SSAValue | None],
    extra_props: dict[str, Attribute],
) -> IRDLOperation:
    """Build a bcr recurrent op the way the BCR lowering will: by field name."""
    seq, batch, inp = x.type.get_shape()
    dirs = 2 if direction == "bidirectional" else 1
    rows = cls.GATES * hidden
    state = tensor((dirs, batch, hidden))
    results = [tensor((seq, dirs, batch, hidden)), state] + [state] * (cls is LSTMOp)
    names = [name for name, _ in cls.get_irdl_definition().operands]
    return cls.build(
        operands=[x] + [[] if optional.get(n) is None else [optional[n]] for n in names[1:]],
        result_types=results,
        properties={
            "w_weights": StringAttr("cell_w"),
            "w_encoding": enc((rows, inp), dirs, block=(8, 4)),
            "r_weights": StringAttr("cell_r"),
            "r_encoding": enc((rows, hidden), dirs, block=(4, 8), schedule=ScheduleAttr(threads=3)),
            "hidden_size": i64_attr(hidden),
            "direction": StringAttr(direction),
            **extra_props,
        },
    )


def every_op() -> ModuleOp:
    """A module with each bcr op, every optional operand used at least once."""
    img, vec, seq = tensor((1, 8, 6, 6)), tensor((3, 2, 20)), tensor((5, 2, 6))
    block = Block(arg_types=[img, vec, seq])
    x, v, s = block.args
    ops: list[Operation] = []

    def weight(key: str, shape: Sequence[int]) -> SSAValue:
        ops.append(op := WeightOp(key, shape))
        return op.result

    schedule = ScheduleAttr(reorder=True, threads=2)
    conv = Conv2dOp(
        x, "conv", enc((4, 36), 2, block=(2, 16), keep=(1, 3), density=0.0938, balanced=True, schedule=schedule),
        weight("conv_b", (8,)), (1, 8, 3, 3), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 2,
        residual=weight("conv_res", (1, 8, 3, 3)), act=ActivationAttr("clip", (0.0, 6.0)),
    )  # fmt: skip
    fc = MatMulOp(v, "fc", enc((7, 20), block=(4, 16)), weight("fc_b", (7,)), act=ActivationAttr("relu"))
    fc_res = MatMulOp(v, "fc2", enc((7, 20)), residual=fc.y)
    gru = recurrent(GRUOp, s, 3, "forward", {"b": weight("gru_b", (1, 18))}, {"linear_before_reset": i64_attr(1)})
    h0 = weight("lstm_h0", (2, 2, 3))
    lstm = recurrent(
        LSTMOp, s, 3, "bidirectional",
        {"b": weight("lstm_b", (2, 24)), "initial_h": h0, "initial_c": h0, "p": weight("lstm_p", (2, 9))},
        {"input_forget": i64_attr(0)},
    )  # fmt: skip
    rnn = recurrent(RNNOp, s, 3, "reverse", {"initial_h": weight("rnn_h0", (1, 2, 3))}, {"clip": f32_attr(2.5)})
    ops += [conv, fc, fc_res, gru, lstm, rnn, ReturnOp()]
    block.add_ops(ops)
    func = FuncOp("main", ([img, vec, seq], []), Region(block))
    return ModuleOp([func])


def print_ir(module: ModuleOp, generic: bool = False) -> str:
    out = io.StringIO()
    Printer(stream=out, print_generic_format=generic).print_op(module)
    return out.getvalue()


def parse_ir(text: str) -> ModuleOp:
    module = Parser(make_context(), text).parse_module()
    module.verify()
    return module


# --------------------------------------------------------------------------
# ops: print / parse round trip


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
def test_every_op_round_trips(generic: bool) -> None:
    module = every_op()
    module.verify()
    text = print_ir(module, generic)
    parsed = parse_ir(text)
    assert module.is_structurally_equivalent(parsed)
    assert print_ir(parsed, generic) == text


def test_custom_syntax_reads_well() -> None:
    text = print_ir(every_op())
    assert (
        'bcr.conv2d %0 weights("conv", #bcr.encoding<matrix = [4, 36], groups = 2, block = [2, 16], '
        "keep = [1, 3], balanced, density = 0.0938, schedule = {reorder, threads = 2}>) bias(" in text
    )
    assert 'bcr.matmul %1 weights("fc2", #bcr.encoding<matrix = [7, 20], groups = 1, block = [4, 4], ' in text
    assert "bcr.lstm %2 w(" in text and ") r(" in text and "p(%" in text
    assert "schedule = {threads = 3}" in text


def test_lstm_results_in_onnx_order() -> None:
    lstm = next(op for op in every_op().walk() if isinstance(op, LSTMOp))
    assert list(lstm.results) == [lstm.y, lstm.y_h, lstm.y_c]
    assert lstm.y.type.get_shape() == (5, 2, 2, 3)


# --------------------------------------------------------------------------
# ops: verifiers


def _conv(**change: object) -> Conv2dOp:
    args: dict[str, object] = {
        "x": Block(arg_types=[tensor((1, 8, 6, 6))]).args[0],
        "weights": "conv",
        "encoding": enc((8, 72)),
        "b": None,
        "out_shape": (1, 8, 6, 6),
        "kernel_shape": (3, 3),
        "strides": (1, 1),
        "pads": (1, 1, 1, 1),
        "dilations": (1, 1),
        "group": 1,
    }
    return Conv2dOp(**{**args, **change})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"encoding": enc((8, 8))}, r"weights encoding holds 1 x \[8, 8\], expected 1 x \[8, 72\]"),
        ({"group": 2}, r"weights encoding holds 1 x \[8, 72\], expected 2 x \[4, 36\]"),
        ({"group": 3}, "channels 8 -> 8 not divisible by group 3"),
        ({"weights": "9lives"}, "weights key '9lives' is not a sanitized identifier"),
        ({"out_shape": (1, 8, 5, 6)}, "spatial dim 0 is 5, expected 6"),
        ({"out_shape": (2, 8, 6, 6)}, "result batch must be 1"),
        ({"kernel_shape": (3, 3, 1)}, "kernel_shape needs 2 values"),
        ({"b": Block(arg_types=[tensor((4,))]).args[0]}, r"bias must be \[8\]"),
        ({"residual": Block(arg_types=[tensor((1, 8, 3, 3))]).args[0]}, "residual must match result"),
    ],
)
def test_conv_verifier(change: dict[str, object], message: str) -> None:
    _conv().verify()
    with pytest.raises(VerifyException, match=f"^bcr.conv2d: {message}"):
        _conv(**change).verify()


def test_matmul_verifier() -> None:
    v = Block(arg_types=[tensor((2, 20))]).args[0]
    MatMulOp(v, "fc", enc((7, 20))).verify()
    with pytest.raises(VerifyException, match=r"expected 1 x \[7, 20\]"):
        MatMulOp(v, "fc", enc((7, 20), 2)).verify()
    with pytest.raises(VerifyException, match=r"expected 1 x \[7, 20\]"):
        MatMulOp(v, "fc", enc((7, 21))).verify()
    ints = Block(arg_types=[TensorType(IntegerType(32), [2, 20])]).args[0]
    with pytest.raises(VerifyException, match="bcr.matmul: expected f32 tensors"):
        MatMulOp(ints, "fc", enc((7, 20))).verify()


def test_recurrent_verifier() -> None:
    s = Block(arg_types=[tensor((5, 2, 6))]).args[0]
    gru = recurrent(GRUOp, s, 3, "forward", {}, {"linear_before_reset": i64_attr(0)})
    gru.verify()
    gru.properties["r_encoding"] = enc((9, 4))
    with pytest.raises(VerifyException, match=r"^bcr.gru: R encoding holds 1 x \[9, 4\], expected 1 x \[9, 3\]"):
        gru.verify()
    with pytest.raises(VerifyException, match=r"^bcr.lstm: initial_c must be \[2, 2, 3\]"):
        h = Block(arg_types=[tensor((1, 2, 3))]).args[0]
        recurrent(LSTMOp, s, 3, "bidirectional", {"initial_c": h}, {"input_forget": i64_attr(0)}).verify()


# --------------------------------------------------------------------------
# attributes


def parse_attr(text: str) -> Attribute:
    return Parser(make_context(), text).parse_attribute()


def test_encoding_defaults_and_any_order() -> None:
    a = parse_attr("#bcr.encoding<density = 1, keep = [2, 4], block = [2, 4], matrix = [3, 5]>")
    assert isinstance(a, EncodingAttr)
    assert (a.matrix_shape, a.block_shape, a.keep_counts, a.num_groups) == ((3, 5), (2, 4), (2, 4), 1)
    assert not a.is_balanced and a.schedule == ScheduleAttr() and a.density.data == 1.0
    assert str(a) == "#bcr.encoding<matrix = [3, 5], groups = 1, block = [2, 4], keep = [2, 4], density = 1.0>"
    s = parse_attr("#bcr.schedule<threads = 4, reorder>")
    assert s == ScheduleAttr(reorder=True, threads=4)
    assert str(s) == "#bcr.schedule<reorder, threads = 4>"
    assert str(parse_attr("#bcr.schedule<>")) == "#bcr.schedule<threads = 1>"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("matrix = [0, 5], block = [1, 1], keep = [0, 0], density = 0.0", r"matrix \[0, 5\] must be positive"),
        ("matrix = [4, 5], block = [0, 1], keep = [0, 0], density = 0.0", r"block \[0, 1\] must be positive"),
        ("matrix = [4, 5], block = [2, 8], keep = [1, 6], density = 0.5", "keeps 6 columns per block, expected 0 to 5"),
        ("matrix = [4, 5], block = [2, 2], keep = [3, 1], density = 0.5", "keeps 3 rows per block, expected 0 to 2"),
        ("matrix = [4, 5], block = [2, 2], keep = [0, 1], density = 0.5", "keeps rows iff it keeps columns"),
        ("matrix = [4, 5], block = [2, 2], keep = [1, 1], density = 1.5", "density 1.5 not in"),
        ("matrix = [4, 5], block = [2, 2], keep = [1, 1], density = 0.0", "density is 0 iff"),
        ("matrix = [4, 5], groups = 0, block = [2, 2], keep = [1, 1], density = 0.5", "groups must be >= 1"),
        ("matrix = [4, 5, 6], block = [2, 2], keep = [1, 1], density = 0.5", "need 2 values each"),
        ("matrix = [4, 5], block = [2, 2], keep = [1, 1]", "missing density"),
        ("matrix = [4, 5], block = [2, 2], keep = [1, 1], density = 0.5, tile = 3", "unknown field 'tile'"),
        ("matrix = [4, 5], matrix = [4, 5]", "field 'matrix' given twice"),
        ("matrix = [4, 5], block = [2, 2], keep = [1, 1], density = 0.5, schedule = {threads = 0}", "threads must be >= 1"),
        # kernel knobs live in the op's #sched.* schedule, not in the encoding
        ("matrix = [4, 5], block = [2, 2], keep = [1, 1], density = 0.5, schedule = {rows = 8}", "unknown field 'rows'"),
    ],
)
def test_encoding_errors(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_attr(f"#bcr.encoding<{text}>")


@st.composite
def encodings(draw: st.DrawFn) -> EncodingAttr:
    matrix = (draw(st.integers(1, 5000)), draw(st.integers(1, 5000)))
    block = (draw(st.integers(1, 64)), draw(st.integers(1, 64)))
    keep = tuple(draw(st.integers(1, min(b, m))) for b, m in zip(block, matrix, strict=True))
    schedule = ScheduleAttr(reorder=draw(st.booleans()), threads=draw(st.integers(1, 64)))
    return EncodingAttr(
        matrix=matrix,
        groups=draw(st.integers(1, 4)),
        block=block,
        keep=keep,
        balanced=draw(st.booleans()),
        density=draw(st.floats(1e-9, 1.0) | st.sampled_from([1e-05, 1.0, 0.5])),
        schedule=schedule,
    )


@settings(max_examples=200, deadline=None)
@given(encodings())
def test_encoding_print_parse_round_trip(e: EncodingAttr) -> None:
    assert parse_attr(str(e)) == e
    assert parse_attr(str(e.schedule)) == e.schedule


def test_encoding_verifies_on_construction() -> None:
    with pytest.raises(VerifyException, match="keeps 5 rows per block, expected 0 to 4"):
        EncodingAttr(matrix=(8, 8), block=(4, 4), keep=(5, 1), density=0.1)
    with pytest.raises(VerifyException, match="threads must be >= 1"):
        ScheduleAttr(threads=0)


def test_describe_matrices() -> None:
    w = np.zeros((6, 10), np.float32)
    w[0:2, 0:2] = 1.0  # block (0, 0) of 4x8 keeps 2 rows x 2 cols
    w[4:6, 8:10] = 2.0  # partial edge block (1, 1) keeps 2 x 2
    mats = [BCRMatrix.from_dense(w, (4, 8)), BCRMatrix.from_dense(w[::-1].copy(), (4, 8))]
    e = EncodingAttr.describe(mats, ScheduleAttr(reorder=True))
    assert (e.matrix_shape, e.num_groups, e.block_shape, e.keep_counts) == ((6, 10), 2, (4, 8), (2, 2))
    assert not e.is_balanced  # the full block (0, 1) keeps nothing
    assert e.density.data == pytest.approx(16 / 120, rel=1e-3) and e.schedule.reorder.data == 1
    w[0:2, 4:6] = 3.0
    assert EncodingAttr.describe([BCRMatrix.from_dense(w, (4, 8))]).keep_counts == (2, 4)


# --------------------------------------------------------------------------
# bcr_format: the layout, spelled out on a small case


def test_pack_layout_by_hand() -> None:
    # 3 x 5 matrix, 2 x 4 blocks: grid 2 x 2, blocks (1, *) and (*, 1) partial.
    w = np.array(
        [
            [0, 1, 0, 2, 0],
            [0, 0, 0, 0, 0],
            [5, 0, 0, 6, 7],
        ],
        dtype=np.float32,
    )
    m = BCRMatrix.from_dense(w, (2, 4))
    arrays = pack([m])
    # block (0,0): rows [0], cols [1, 3]; block (0,1): empty;
    # block (1,0): rows [2], cols [0, 3]; block (1,1): rows [2], cols [4].
    # Indices are local to the block and stored only for blocks not keeping their
    # whole extent: (1, 0) keeps its one row, (1, 1) its one row and column.
    # Block (0, 1) keeps nothing, so the counts are not uniform and are listed.
    assert arrays["head"].tolist() == [2, 1, 3, 5, 2, 4, -1, -1]
    assert arrays["cols"].tolist() == [1, 3, 0, 3]
    assert arrays["rows"].tolist() == [0]
    assert arrays["vals"].tolist() == [1, 2, 5, 6, 7]
    assert arrays["counts"].reshape(-1, 2).tolist() == [[1, 2], [0, 0], [1, 2], [1, 1]]
    assert arrays["perm"].tolist() == []  # rows in order
    assert {k: a.dtype.name for k, a in arrays.items()} == {
        "head": "int32", "vals": "float32", "cols": "uint8", "rows": "uint8", "counts": "uint8",
        "perm": "int32",
    }  # fmt: skip
    assert m.total_bytes() == sum(a.nbytes for a in arrays.values()) == 32 + 4 * 5 + 4 + 1 + 8
    assert m.keep_counts() == (1, 2) and m.stored_values() == 5 and m.density() == 5 / 15
    assert m.is_balanced()  # the only full block, (0, 0), keeps the most: 1 x 2
    w[1, 1] = 9.0  # now (0, 0) keeps 2 x 2 ...
    w[0, 1] = 0.0
    assert BCRMatrix.from_dense(w, (2, 4)).is_balanced()
    assert not BCRMatrix.from_dense(w, (2, 4)).is_balanced((1, 2))
    assert store_keys("fc") == {
        s: f"fc_{s}" for s in ("vals", "cols", "rows", "counts", "perm", "head")
    }


def test_values_are_column_major_within_a_block() -> None:
    w = np.array([[1, 2], [3, 4]], dtype=np.float32)
    assert pack([BCRMatrix.from_dense(w, (2, 2))])["vals"].tolist() == [1, 3, 2, 4]


def test_explicit_zeros_inside_the_kept_sub_block() -> None:
    w = np.array([[1, 0], [0, 4]], dtype=np.float32)
    m = BCRMatrix.from_dense(w, (2, 2))
    assert m.stored_values() == 4 and m.blocks[0][0].counts == (2, 2)
    assert np.array_equal(m.to_dense(), w)


# --------------------------------------------------------------------------
# bcr_format: properties over random BCR matrices


def _pick(rng: np.random.Generator, extent: int, count: int, offset: int) -> np.ndarray:
    return np.sort(rng.choice(extent, size=count, replace=False)) + offset


@st.composite
def planted(draw: st.DrawFn, balanced: bool = False) -> tuple[np.ndarray, tuple[int, int], dict]:
    """A random matrix with a planted BCR structure and nonzero kept values.

    Shapes are often not multiples of the block; blocks are empty, full or random.
    Returns (w, block, {(stripe, block col): (rows, cols)}).
    """
    m, k = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    br, bc = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    keep = (draw(st.integers(1, br)), draw(st.integers(1, bc)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w = np.zeros((m, k), np.float32)
    sets = {}
    for s, r0 in enumerate(range(0, m, br)):
        for b, c0 in enumerate(range(0, k, bc)):
            er, ec = min(br, m - r0), min(bc, k - c0)
            if balanced:
                nr, nc = min(keep[0], er), min(keep[1], ec)
            else:
                kind = rng.choice(3, p=[0.25, 0.25, 0.5])  # empty, full, random
                nr, nc = [(0, 0), (er, ec), (rng.integers(1, er + 1), rng.integers(1, ec + 1))][kind]
            rows, cols = _pick(rng, er, nr, r0), _pick(rng, ec, nc, c0)
            signs = rng.choice([-1.0, 1.0], size=(nr, nc))
            w[np.ix_(rows, cols)] = signs * rng.uniform(0.5, 2.0, size=(nr, nc))
            sets[s, b] = (rows, cols)
    return w, (br, bc), sets


@settings(max_examples=150, deadline=None)
@given(planted())
def test_detects_exactly_the_planted_structure(case: tuple) -> None:
    w, block, sets = case
    m = BCRMatrix.from_dense(w, block)
    blocks = m.blocks  # a property that builds every Block: read it once
    for (s, b), (rows, cols) in sets.items():
        assert np.array_equal(blocks[s][b].rows, rows)
        assert np.array_equal(blocks[s][b].cols, cols)
    assert np.array_equal(m.to_dense(), w)
    assert m.stored_values() == sum(len(r) * len(c) for r, c in sets.values()) == np.count_nonzero(w)


@settings(max_examples=100, deadline=None)
@given(planted(), st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_pack_unpack_round_trip(case: tuple, groups: int, seed: int) -> None:
    w, block, _ = case
    rng = np.random.default_rng(seed)
    mats = [BCRMatrix.from_dense(rng.permutation(w), block, rng.permutation(w.shape[0])) for _ in range(groups)]
    arrays = pack(mats)
    assert all(a.ndim == 1 for a in arrays.values())
    back = unpack(arrays, w.shape, block)
    assert back == mats
    for got, want in zip(back, mats, strict=True):
        assert np.array_equal(got.to_dense(), want.to_dense())
    s, b = mats[0].grid
    kept = [np.stack(counts) for counts in zip(*(m.kept() for m in mats), strict=True)]
    permuted = any(m.permuted() for m in mats)
    assert sum(a.nbytes for a in arrays.values()) == packed_bytes(*kept, w.shape, block, permuted)
    assert arrays["head"][1] == groups
    assert len(arrays["counts"]) == (0 if arrays["head"][6] >= 0 else 2 * groups * s * b)


@settings(max_examples=100, deadline=None)
@given(planted(), st.integers(0, 2**32 - 1))
def test_permuted_rows(case: tuple, seed: int) -> None:
    w, block, _ = case
    perm = np.random.default_rng(seed).permutation(w.shape[0])
    m = BCRMatrix.from_dense(w, block, perm)
    assert np.array_equal(m.to_dense(), w)
    plain = BCRMatrix.from_dense(w[perm], block)
    assert plain.blocks == m.blocks


@settings(max_examples=100, deadline=None)
@given(planted())
def test_total_bytes_is_values_plus_small_index(case: tuple) -> None:
    w, block, _ = case
    m = BCRMatrix.from_dense(w, block)
    assert m.index_bytes() == sum(a.nbytes for s, a in pack([m]).items() if s != "vals")
    assert m.total_bytes() == 4 * np.count_nonzero(w) + m.index_bytes()


@settings(max_examples=100, deadline=None)
@given(planted(balanced=True))
def test_balanced_structure(case: tuple) -> None:
    w, block, sets = case
    m = BCRMatrix.from_dense(w, block)
    assert m.is_balanced()
    full = [
        (len(r), len(c))
        for (s, b), (r, c) in sets.items()
        if m.row_spans()[s][1] - m.row_spans()[s][0] == block[0]
        and m.col_spans()[b][1] - m.col_spans()[b][0] == block[1]
    ]
    if full:
        assert m.keep_counts() == full[0]
    e = EncodingAttr.describe([m])
    assert e.is_balanced and e.keep_counts == m.keep_counts()


@settings(max_examples=60, deadline=None)
@given(planted(), st.integers(0, 2**32 - 1))
def test_zeros_inside_kept_blocks_round_trip(case: tuple, seed: int) -> None:
    w, block, sets = case
    rng = np.random.default_rng(seed)
    w = np.where(rng.random(w.shape) < 0.3, 0.0, w).astype(np.float32)
    m = BCRMatrix.from_dense(w, block)
    assert np.array_equal(m.to_dense(), w)
    blocks = m.blocks
    for (s, b), (rows, cols) in sets.items():
        assert set(blocks[s][b].rows) <= set(rows) and set(blocks[s][b].cols) <= set(cols)
    assert unpack(pack([m]), w.shape, block) == [m]


# --------------------------------------------------------------------------
# bcr_format: invalid input is rejected with a clear message


def _packed() -> dict[str, np.ndarray]:
    w = np.arange(1, 31, dtype=np.float32).reshape(5, 6)
    w[:, 2] = 0
    w[1] = 0  # block (0, 0) of 3x4 keeps rows 0, 2 and columns 0, 1, 3: both stored
    return pack([BCRMatrix.from_dense(w, (3, 4))])


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda a: a.pop("rows"), "has no 'rows' array"),
        (lambda a: a.update(vals=a["vals"].astype(np.int32)), "'vals' must be a 1-D array"),
        (lambda a: a.update(head=a["head"][:-1]), "'head' must hold 8 words"),
        (lambda a: a.update(perm=np.arange(4, dtype=np.int32)), "'perm' length must be 0 or 5"),
        (lambda a: a.update(perm=np.zeros(5, np.int32)), "must be a permutation"),
        (lambda a: a.update(cols=a["cols"] + 1), r"\(0, 0\) cols: indices must strictly increase within \[0, 4\)"),
        (lambda a: a.update(rows=a["rows"][::-1].copy()), r"\(0, 0\) rows: indices must strictly increase within \[0, 3\)"),
        (lambda a: a.update(vals=a["vals"][:-1]), "'vals' holds 19 values, the counts need 20"),
    ],
)
def test_unpack_rejects_corrupt_arrays(corrupt, message: str) -> None:
    arrays = _packed()
    unpack(arrays, (5, 6), (3, 4))
    corrupt(arrays)
    with pytest.raises(BCRFormatError, match=message):
        unpack(arrays, (5, 6), (3, 4))


def test_from_dense_rejects_bad_input() -> None:
    with pytest.raises(BCRFormatError, match="expected a 2-D matrix"):
        BCRMatrix.from_dense(np.ones(4), (2, 2))
    with pytest.raises(BCRFormatError, match="must be 2 positive ints"):
        BCRMatrix.from_dense(np.ones((4, 4)), (0, 2))
    with pytest.raises(BCRFormatError, match="must be 2 positive ints"):
        BCRMatrix.from_dense(np.ones((0, 4)), (2, 2))
    with pytest.raises(BCRFormatError, match="permutation"):
        BCRMatrix.from_dense(np.ones((4, 4)), (2, 2), np.array([0, 0, 1, 2]))
    with pytest.raises(BCRFormatError, match="cannot pack"):
        pack([BCRMatrix.from_dense(np.ones((4, 4)), (2, 2)), BCRMatrix.from_dense(np.ones((4, 4)), (2, 4))])
