"""Compile-time resources: constant folding cannot be made to build gigabytes,
and long element-wise chains compile in time linear in their length."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from xdsl.dialects import func

from grimc import limits
from grimc.artifacts import onnxruntime_reference
from grimc.dialects import graph as g
from grimc.driver import build_model, compile_model, optimize
from grimc.emit.blob import Deferred
from grimc.emit.codegen import KERNELS_PER_PART, generate
from grimc.emit.kernels.gemm import pack_panels
from grimc.frontend import FrontendError, import_onnx
from grimc.weights import FINITE_CHUNK, all_finite, store_for
from tests.adversarial.test_graph_validity import constant_module
from tests.frontend.helpers import model, node, op_names, rand


def constant_of_shape(shape: list[int], name: str = "c") -> onnx.NodeProto:
    """A node filling `shape` with ones (the shape is an initializer named `<name>_shape`)."""
    return node(
        "ConstantOfShape",
        [f"{name}_shape"],
        [name],
        value=numpy_helper.from_array(np.array([1.0], np.float32)),
    )


def generated(*shapes: list[int]) -> onnx.ModelProto:
    """y = x + c0 + c1 + ...: each c_i a ConstantOfShape of shapes[i]."""
    names = [f"c{i}" for i in range(len(shapes))]
    nodes = [constant_of_shape(s, n) for s, n in zip(shapes, names, strict=True)]
    current = "x"
    for i, n in enumerate(names):
        nodes.append(node("Add", [current, n], [f"s{i}"]))
        current = f"s{i}"
    inits = {f"{n}_shape": np.array(s, np.int64) for s, n in zip(shapes, names, strict=True)}
    return model(nodes, {"x": [1]}, [current], inits)


def test_a_gigabyte_constant_is_refused_before_it_is_built() -> None:
    """A 200-byte model asking for 16384 x 16384 ones used to take gigabytes."""
    source = generated([16384, 16384])
    assert source.ByteSize() < 300
    with pytest.raises(FrontendError) as info:
        import_onnx(source)
    assert str(info.value) == (
        "model: node #0 (ConstantOfShape): its constant result of 1073741824 bytes is more than "
        "grimc computes at compile time (512 MiB per constant, 1024 MiB in all), and the "
        "operator has no run-time kernel"
    )


def test_generated_constants_share_one_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_FOLDED_BYTES", 4096)
    monkeypatch.setattr(limits, "MAX_FOLDED_TOTAL_BYTES", 8192)
    import_onnx(generated([1024], [1024]))  # 4 KiB each, 8 KiB in all
    with pytest.raises(FrontendError, match=r"node #2 \(ConstantOfShape\): its constant result"):
        import_onnx(generated([1024], [1024], [4]))
    with pytest.raises(FrontendError, match="of 4100 bytes"):
        import_onnx(generated([1025]))


def test_a_large_broadcast_of_constants_runs_at_run_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above the cap the op is not folded: it stays a graph op with the same meaning."""
    monkeypatch.setattr(limits, "MAX_FOLDED_BYTES", 1024)
    a, b = rand(64, 1), rand(1, 64, seed=1)
    source = model(
        [node("Add", ["a", "b"], ["s"]), node("Mul", ["x", "s"], ["y"])],
        {"x": [64, 64]},
        ["y"],
        {"a": a, "b": b},
    )
    module = optimize(import_onnx(source), passes=["graph-constant-fold"])
    assert op_names(module) == ["graph.add", "graph.mul"]
    x = rand(64, 64, seed=2)
    (expected,) = onnxruntime_reference(source.SerializeToString(), [x])
    np.testing.assert_allclose(x * (a + b), expected, rtol=1e-6)


def test_constant_fold_pass_keeps_large_broadcasts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_FOLDED_BYTES", 1024)
    module, _ = constant_module(g.AddOp, rand(64, 1), rand(1, 64, seed=1))
    optimize(module, passes=["graph-constant-fold"])
    assert op_names(module) == ["graph.add", "graph.add"]
    small, _ = constant_module(g.AddOp, rand(8, 1), rand(1, 8, seed=1))
    optimize(small, passes=["graph-constant-fold"])
    assert op_names(small) == ["graph.add"]


# --------------------------------------------------------------------------
# long element-wise chains


def chain(kinds: list[str], n: int, **attrs: dict) -> onnx.ModelProto:
    """x -> kinds[0] -> kinds[1] -> ... (n nodes, kinds repeated)."""
    nodes = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        nodes.append(node(kind, [f"t{i}" if i else "x"], [f"t{i + 1}"], **attrs.get(kind, {})))
    return model(nodes, {"x": [2, 40]}, [f"t{n}"])


def run_both(source: onnx.ModelProto, tmp_path) -> tuple[np.ndarray, np.ndarray]:
    x = 4 * rand(2, 40, seed=3)
    (expected,) = onnxruntime_reference(source.SerializeToString(), [x])
    with build_model(source, tmp_path) as m:
        (y,) = m.run([x])
    return y, expected


def test_a_clamp_chain_becomes_one_op(tmp_path) -> None:
    kinds = ["Relu", "Clip", "Relu", "Clip"]
    bounds = {"c_lo": np.float32(-1.0), "c_hi": np.float32(2.5)}
    nodes = [
        node(k, [f"t{i}" if i else "x", *(["c_lo", "c_hi"] if k == "Clip" else [])], [f"t{i + 1}"])
        for i, k in enumerate(kinds * 50)
    ]
    source = model(nodes, {"x": [2, 40]}, [f"t{len(nodes)}"], bounds)
    assert op_names(optimize(import_onnx(source))) == ["graph.clip"]
    y, expected = run_both(source, tmp_path)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_a_long_chain_compiles_as_parts_of_shared_kernels(tmp_path) -> None:
    """600 alternating sigmoid/tanh kernels: two kernel functions, called from
    non-inlined parts of at most KERNELS_PER_PART calls, with ORT's results."""
    source = chain(["Sigmoid", "Tanh"], 600)
    gen = compile_model(source)
    assert len(gen.kernels) == 600
    assert gen.source.count("__attribute__((noinline)) static void k") == 2
    parts = gen.source.split("__attribute__((noinline)) static void run_part")[1:]
    assert len(parts) == -(-600 // KERNELS_PER_PART)
    assert all(part.count("GRIMC_TIMED(") <= KERNELS_PER_PART for part in parts)
    y, expected = run_both(source, tmp_path)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------
# compile memory


def test_import_holds_large_weights_once(tmp_path: Path) -> None:
    """Importing a file with a 32 MiB weight: the payload is read straight into
    its array and checked for finiteness a chunk at a time, so the import's
    Python-side peak is the weight itself (the file's bytes, protobuf's copy, a
    numpy copy and a full-size boolean mask made it several times that)."""
    w = rand(4096, 2048)
    path = tmp_path / "m.onnx"
    onnx.save(model([node("Gemm", ["x", "w"], ["y"], transB=1)], {"x": [1, 2048]}, ["y"],
                    {"w": w}), path)
    tracemalloc.start()
    try:
        module = import_onnx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(store_for(module)[next(iter(store_for(module)))], w)
    assert peak <= 1.1 * w.nbytes, f"import peak {peak / w.nbytes:.2f}x the weight bytes"


@pytest.mark.parametrize("where", [0, FINITE_CHUNK - 1, FINITE_CHUNK, 2 * FINITE_CHUNK + 6])
def test_all_finite_sees_every_chunk(where: int) -> None:
    a = np.zeros(2 * FINITE_CHUNK + 7, np.float32)
    assert all_finite(a) and all_finite(a[::3]) and all_finite(a.reshape(-1, 1)[:0])
    a[where] = np.inf if where % 2 else np.nan
    assert not all_finite(a)
    assert not all_finite(a.reshape(-1, 1)[::-1])


def _generation_peaks(w: np.ndarray, path: Path) -> tuple[int, int]:
    """Python-side peak bytes of generating, then of writing the blob, for a Gemm with weight `w`."""
    source = model([node("Gemm", ["x", "w"], ["y"], transB=1)], {"x": [1, w.shape[1]]}, ["y"],
                   {"w": w})
    module = optimize(import_onnx(source))
    tracemalloc.start()
    try:
        gen = generate(module)
        _, generating = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        gen.write_blob(path)
        _, writing = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert path.stat().st_size >= w.nbytes
    return generating, writing


def test_code_generation_copies_no_large_weight(tmp_path: Path) -> None:
    """A 32 MiB fully connected weight: code generation packs it panel by panel
    while the blob is written to its file, so neither generating nor writing
    holds a second copy (they made five once: a padded and a transposed
    packing, per-entry bytes, the blob buffer and its bytes copy).

    What generation allocates whatever the weight's size (the C source, the
    rendered templates: about 2.8 MB, close to a tenth of this weight) is
    measured on the same layer with a 64 KiB weight and taken off, so the
    bound is on what grows with the weight.
    """
    w = rand(4096, 2048)
    small_gen, small_write = _generation_peaks(rand(128, 128), tmp_path / "small.weights.bin")
    generating, writing = _generation_peaks(w, tmp_path / "m.weights.bin")
    growth = (generating - small_gen) / w.nbytes
    assert growth <= 0.1, f"generating: {growth:.2f}x the weights beyond the fixed cost"
    growth = (writing - small_write) / w.nbytes
    assert growth <= 0.1, f"writing: {growth:.2f}x the weights beyond the fixed cost"


def test_streamed_blob_is_the_blob(tmp_path: Path) -> None:
    """The file written panel by panel is byte for byte the blob built in memory,
    and the packed panels are those of `pack_panels`."""
    w = rand(37, 50)
    source = model([node("Gemm", ["x", "w"], ["y"], transB=1, alpha=0.5)], {"x": [3, 50]},
                   ["y"], {"w": w})
    gen = generate(optimize(import_onnx(source)))
    gen.write_blob(tmp_path / "m.weights.bin")
    assert (tmp_path / "m.weights.bin").read_bytes() == gen.blob
    entry = next(e for e in gen.blob_arrays if isinstance(e, Deferred))
    packed = np.concatenate([c.reshape(-1) for c in entry.chunks()])
    nr = entry.shape[-1]
    np.testing.assert_array_equal(packed, pack_panels(w.T, nr, 0.5).reshape(-1))


@pytest.mark.slow
def test_compile_peak_rss_stays_within_twice_the_weights(tmp_path: Path) -> None:
    """`grimc model.onnx -o out.c` for a VGG-like head with 205 MB of weights
    (two 512-channel 3x3 convolutions, a 25088 x 1792 and a 1792 x 1000 fully
    connected layer): the whole process, Python included, peaks below twice
    the weight bytes (it took 2.3x before the importer read payloads straight
    from the file and the blob was streamed)."""
    rng = np.random.default_rng(0)
    inits = {
        "c1": rng.standard_normal((512, 512, 3, 3), dtype=np.float32) * 0.02,
        "c2": rng.standard_normal((512, 512, 3, 3), dtype=np.float32) * 0.02,
        "f1": rng.standard_normal((1792, 25088), dtype=np.float32) * 0.01,
        "f2": rng.standard_normal((1000, 1792), dtype=np.float32) * 0.02,
    }
    nodes = [
        node("Conv", ["x", "c1"], ["a"], pads=[1, 1, 1, 1]),
        node("Relu", ["a"], ["b"]),
        node("Conv", ["b", "c2"], ["c"], pads=[1, 1, 1, 1]),
        node("Relu", ["c"], ["d"]),
        node("Flatten", ["d"], ["e"]),
        node("Gemm", ["e", "f1"], ["f"], transB=1),
        node("Relu", ["f"], ["g"]),
        node("Gemm", ["g", "f2"], ["y"], transB=1),
    ]
    weight_bytes = sum(a.nbytes for a in inits.values())
    onnx.save(model(nodes, {"x": [1, 512, 7, 7]}, ["y"], inits), tmp_path / "m.onnx")
    del inits
    grimc = Path(sys.executable).with_name("grimc")
    probe = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(grimc), "m.onnx", "-o", "out.c"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    )
    peak = int(done.stdout.split()[-1]) * 1024  # ru_maxrss is in KiB on Linux
    assert (tmp_path / "out.weights.bin").stat().st_size >= weight_bytes
    assert peak <= 2 * weight_bytes, f"peak RSS {peak / weight_bytes:.2f}x the weight bytes"


def test_release_weights_empties_the_store_as_it_packs() -> None:
    """Callers that drop the module let code generation free each weight once
    packed, so the store and the blob are not both held; the C and the blob
    are the same either way."""
    w, b = rand(64, 32), rand(64, seed=1)
    source = model(
        [node("Gemm", ["x", "w", "b"], ["y"], transB=1), node("Add", ["y", "b"], ["z"])],
        {"x": [1, 32]},
        ["z", "b2"],
        {"w": w, "b": b},
    )
    source.graph.node.append(node("Identity", ["b"], ["b2"]))
    kept = optimize(import_onnx(source))
    released = optimize(import_onnx(source))
    everything = set(store_for(kept))
    a = generate(kept)
    r = generate(released, release_weights=True)
    assert a.source == r.source and a.blob == r.blob
    assert set(store_for(kept)) == everything
    main = next(op for op in released.walk() if isinstance(op, func.ReturnOp))
    outputs = {v.owner.key.data for v in main.operands if isinstance(v.owner, g.WeightOp)}
    assert outputs and set(store_for(released)) == outputs  # a model output is still needed
