"""Reading an ONNX model and bringing it into the form the converters expect.

Steps, each with a one-line error: parse (path, bytes or ModelProto), convert
to `TARGET_OPSET` when possible, fix the input shapes (overrides, dynamic
dims), run ONNX shape inference and read initializers into numpy.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import onnx
from google.protobuf.message import DecodeError, Message
from onnx import numpy_helper, shape_inference, version_converter

from grimc.frontend import wire
from grimc.frontend.context import FrontendError, first_line, node_label
from grimc.limits import shape_problem
from grimc.names import quote_for_message

TARGET_OPSET = 17
"""The ai.onnx opset models are converted to; converters also accept 9..latest."""

Source = str | os.PathLike | bytes | onnx.ModelProto


def load_model(source: Source, name: str) -> tuple[onnx.ModelProto, str]:
    """Parse `source`; returns the model and the label used in diagnostics."""
    if isinstance(source, onnx.ModelProto):
        model, label = source, _label(name)
    elif isinstance(source, bytes):
        label = _label(name)
        model = _parse(source, label)
    else:
        path = Path(os.fspath(source))
        label = _label(str(path))
        model = _read_file(path, label)
    _check_is_model(model, label)
    return model, label


Stored = dict[int, np.ndarray]
"""Initializers read straight from the file, by index in `graph.initializer`."""


def load_for_import(
    source: Source, name: str, *, arrays: bool = True
) -> tuple[onnx.ModelProto, str, Stored]:
    """Like `load_model`, but a file's large initializers are read straight into
    numpy (see `grimc.frontend.wire`) and are not in the returned model: pass
    the third result to `initializers`. With `arrays=False` they are not read."""
    if isinstance(source, onnx.ModelProto | bytes):
        return (*load_model(source, name), {})
    path = Path(os.fspath(source))
    label = _label(str(path))
    try:
        with path.open("rb") as f:
            loaded = _read_split(f, path, label, arrays)
    except OSError as exc:
        raise FrontendError(f"{label}: cannot read file ({exc.strerror or exc})") from None
    if loaded is None:  # not walkable: protobuf reads it whole and says what is wrong
        return (*load_model(path, name), {})
    _check_is_model(loaded[0], label)
    return loaded[0], label, loaded[1]


def _read_split(
    f: BinaryIO, path: Path, label: str, arrays: bool
) -> tuple[onnx.ModelProto, Stored] | None:
    """The parsed model and its stored arrays; None when the file is not walkable
    (empty, not a regular file, not protobuf as far as the walk can tell)."""
    info = os.fstat(f.fileno())
    size = info.st_size
    if not stat.S_ISREG(info.st_mode) or size == 0:
        return None
    try:
        split = wire.split_payloads(f, size)
    except wire.NotWalkable:
        return None
    model = _parse(split.model, label)
    tensors = model.graph.initializer
    for index in split.payloads:
        if index >= len(tensors) or tensors[index].HasField("raw_data"):
            return None  # protobuf saw other tensors than the walk: trust protobuf
    _load_external_data(model, path, label)
    stored: Stored = {}
    for index, payload in split.payloads.items() if arrays else ():
        tensor = tensors[index]
        where = f"{label}: tensor {quote_for_message(tensor.name)}: cannot read data"
        try:
            stored[index] = wire.read_payload(f, payload, list(tensor.dims), where)
        except ValueError as exc:
            raise FrontendError(str(exc)) from None
    return model, stored


def input_names(path: str | os.PathLike, specialized: Collection[str] = ()) -> list[str]:
    """The original names of the model's real inputs, in the order `import_onnx`
    gives its arguments (IR names are sanitized, so may collide with originals);
    `specialized` inputs (given compile-time values) are not among them."""
    model, _, _ = load_for_import(path, str(path), arrays=False)
    graph = model.graph
    constants = {t.name for t in graph.initializer} | {
        s.values.name for s in graph.sparse_initializer
    }
    return [vi.name for vi in graph.input if vi.name not in constants | set(specialized)]


def _label(text: str) -> str:
    """File names and model names are printed as is unless they need escaping."""
    plain = text.isprintable() and text.isascii() and 0 < len(text) <= 200
    return text if plain else quote_for_message(text, 200)


def _parse(data: bytes, label: str) -> onnx.ModelProto:
    if not data:
        raise FrontendError(f"{label}: empty model")
    try:
        return onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise FrontendError(f"{label}: not a valid ONNX model ({first_line(exc)})") from None


def _read_file(path: Path, label: str) -> onnx.ModelProto:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FrontendError(f"{label}: cannot read file ({exc.strerror or exc})") from None
    model = _parse(data, label)
    _load_external_data(model, path, label)
    return model


def _load_external_data(model: onnx.ModelProto, path: Path, label: str) -> None:
    try:
        onnx.external_data_helper.load_external_data_for_model(model, str(path.parent))
    except (OSError, ValueError, onnx.checker.ValidationError) as exc:
        raise FrontendError(f"{label}: cannot load external data ({first_line(exc)})") from None


def _check_is_model(model: onnx.ModelProto, label: str) -> None:
    """Protobuf happily parses many byte strings; insist on the basics of a model."""
    if model.ir_version <= 0 or not model.HasField("graph") or not model.graph.output:
        raise FrontendError(f"{label}: not an ONNX model (no IR version, graph or outputs)")
    try:
        valid = _valid_text(model)
    except (UnicodeDecodeError, RecursionError):
        valid = False
    if not valid:
        raise FrontendError(f"{label}: not a valid ONNX model (a name or string is not UTF-8)")


def _valid_text(message: Message) -> bool:
    """Whether every string field decodes: upb defers UTF-8 checks to field access,
    which then raises or returns bytes deep inside the importer."""
    for field in message.DESCRIPTOR.fields:
        if field.type not in (field.TYPE_STRING, field.TYPE_MESSAGE):
            continue
        value = getattr(message, field.name)
        if field.type == field.TYPE_STRING:
            if not all(
                isinstance(v, str) for v in ([value] if isinstance(value, str | bytes) else value)
            ):
                return False
        elif isinstance(value, Message):
            if message.HasField(field.name) and not _valid_text(value):
                return False
        elif not all(_valid_text(v) for v in value):
            return False
    return True


def ai_onnx_opset(model: onnx.ModelProto, label: str) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return entry.version
    raise FrontendError(f"{label}: model imports no ai.onnx opset")


def check_graph(model: onnx.ModelProto, label: str) -> None:
    """What onnxruntime refuses before looking at any op: versions newer than the
    installed ONNX knows, and tensor names defined twice (the graph is SSA)."""
    if model.ir_version > onnx.IR_VERSION:
        raise FrontendError(
            f"{label}: IR version {model.ir_version} is newer than this grimc reads "
            f"(at most {onnx.IR_VERSION})"
        )
    latest = onnx.defs.onnx_opset_version()
    opset = ai_onnx_opset(model, label)
    if opset > latest:
        raise FrontendError(
            f"{label}: ai.onnx opset {opset} is newer than this grimc knows (at most {latest})"
        )
    graph = model.graph
    _unique(label, "graph input", [vi.name for vi in graph.input])
    _unique(label, "initializer", [t.name for t in graph.initializer])
    declared = {vi.name for vi in graph.input} | {t.name for t in graph.initializer}
    defined: set[str] = set()
    for index, node in enumerate(graph.node):
        for name in node.output:
            if not name:
                continue
            if name in declared or name in defined:
                where = node_label(node, index)
                raise FrontendError(
                    f"{label}: {where}: output {quote_for_message(name)} is already defined "
                    "(a tensor may be produced only once)"
                )
            defined.add(name)


def _unique(label: str, what: str, names: Sequence[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise FrontendError(f"{label}: {what} {quote_for_message(name)} is declared twice")
        seen.add(name)


def check_nodes(model: onnx.ModelProto, label: str) -> None:
    """Validate ai.onnx nodes against their schemas before ONNX's C++ passes see
    them: the version converter crashes the process on some malformed nodes.
    Ops without a schema are left to the unsupported-operator error."""
    ctx = onnx.checker.C.CheckerContext()
    ctx.ir_version = model.ir_version
    ctx.opset_imports = {entry.domain: entry.version for entry in model.opset_import}
    scoped: list[int] = []
    for index, node in enumerate(model.graph.node):
        if node.domain not in ("", "ai.onnx") or not onnx.defs.has(node.op_type):
            continue
        if any(
            a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
            for a in node.attribute
        ):
            scoped.append(index)  # its subgraphs may read outer tensors: checked with the graph
            continue
        try:
            onnx.checker.check_node(node, ctx)
        except onnx.checker.ValidationError as exc:
            where = node_label(node, index)
            raise FrontendError(f"{label}: {where}: invalid node ({first_line(exc)})") from None
    if scoped:
        _check_control_flow(model, label, scoped[0])


def _check_control_flow(model: onnx.ModelProto, label: str, first: int) -> None:
    """Nodes with subgraphs (If, Loop, Scan) are checked with their outer scope,
    which check_node cannot be given: the whole graph (without its large
    initializers) goes through the model checker."""
    try:
        onnx.checker.check_model(skeleton(model))
    except onnx.checker.ValidationError as exc:
        where = node_label(model.graph.node[first], first)
        raise FrontendError(f"{label}: {where}: invalid node ({first_line(exc)})") from None


SKELETON_MAX_ELEMENTS = 1024
"""Initializers larger than this leave the skeleton (see `skeleton`)."""


def skeleton(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model without its large initializers, which become typed graph inputs.

    Version conversion and shape inference serialize the whole model; on
    VGG-16 that is seconds per pass for data they never look at. Small
    initializers (shape tensors, scalars) stay for data propagation. The
    caller's model is never modified.
    """
    source = model.graph
    graph = onnx.GraphProto(name=source.name)
    graph.node.extend(source.node)
    graph.input.extend(source.input)
    graph.output.extend(source.output)
    graph.value_info.extend(source.value_info)
    declared = {vi.name for vi in source.input}
    for tensor in source.initializer:
        if math.prod(tensor.dims) <= SKELETON_MAX_ELEMENTS:
            graph.initializer.append(tensor)
        elif tensor.name not in declared:
            graph.input.append(
                onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, tensor.dims)
            )
    for sparse in source.sparse_initializer:
        if sparse.values.name not in declared:
            graph.input.append(
                onnx.helper.make_tensor_value_info(
                    sparse.values.name, sparse.values.data_type, sparse.dims
                )
            )
    result = onnx.ModelProto(ir_version=model.ir_version, graph=graph)
    result.opset_import.extend(model.opset_import)
    result.functions.extend(model.functions)
    return result


def normalize_opset(model: onnx.ModelProto, opset: int) -> tuple[onnx.ModelProto, int]:
    """Convert an older `opset` up to TARGET_OPSET; when ONNX cannot, keep the model as is.

    Newer models are never converted down: down-conversion can change
    semantics (e.g. MaxPool-22's ceil_mode rule that the last window starts
    inside the input), and opsets 18+ differ from 17 for grimc's operators
    only in accepted types.

    The converters handle the opset differences that matter (Clip bounds,
    Softmax axis semantics, Squeeze axes, Reshape shape attribute, ...).
    """
    if opset >= TARGET_OPSET:
        return model, opset
    try:
        converted = version_converter.convert_version(model, TARGET_OPSET)
    except Exception:  # noqa: BLE001 - any converter failure means "import as is"
        return model, opset
    return converted, TARGET_OPSET


def initializers(
    model: onnx.ModelProto, label: str, stored: Stored | None = None
) -> dict[str, np.ndarray]:
    """Initializers (dense and sparse) as numpy arrays, in their stored dtype;
    `stored` gives those read straight from the file (`load_for_import`)."""
    arrays: dict[str, np.ndarray] = {}
    graph = model.graph
    stored = stored or {}
    for index, tensor in enumerate(graph.initializer):
        arrays[tensor.name] = stored[index] if index in stored else _to_array(tensor, label)
    for sparse in graph.sparse_initializer:
        arrays[sparse.values.name] = _sparse_to_array(sparse, label)
    return arrays


def _to_array(tensor: onnx.TensorProto, label: str) -> np.ndarray:
    where = f"{label}: tensor {quote_for_message(tensor.name)}"
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        raise FrontendError(
            f"{where}: data is stored in an external file; import the model from its path"
        )
    try:
        return numpy_helper.to_array(tensor)
    except Exception as exc:  # noqa: BLE001 - onnx raises many types on bad tensors
        raise FrontendError(f"{where}: cannot read data ({first_line(exc)})") from None


def _sparse_to_array(sparse: onnx.SparseTensorProto, label: str) -> np.ndarray:
    try:
        return sparse_to_dense(sparse)
    except Exception as exc:  # noqa: BLE001 - onnx and numpy raise many types here
        where = quote_for_message(sparse.values.name)
        raise FrontendError(f"{label}: sparse tensor {where}: {first_line(exc)}") from None


def sparse_to_dense(sparse: onnx.SparseTensorProto) -> np.ndarray:
    """Densify: BCR detection works on dense weights (zeros are zeros)."""
    values = numpy_helper.to_array(sparse.values)
    indices = numpy_helper.to_array(sparse.indices).astype(np.int64)
    dense = np.zeros(tuple(sparse.dims), dtype=values.dtype)
    if indices.ndim == 2:
        dense[tuple(indices.T)] = values
    else:
        dense.reshape(-1)[indices] = values
    return dense


# --------------------------------------------------------------------------
# compile-time input values

_INPUT_DTYPES = {
    onnx.TensorProto.FLOAT: np.float32,
    onnx.TensorProto.DOUBLE: np.float64,
    onnx.TensorProto.FLOAT16: np.float16,
    onnx.TensorProto.INT64: np.int64,
    onnx.TensorProto.INT32: np.int32,
    onnx.TensorProto.INT16: np.int16,
    onnx.TensorProto.INT8: np.int8,
    onnx.TensorProto.UINT8: np.uint8,
    onnx.TensorProto.BOOL: np.bool_,
}
"""Input dtypes a compile-time value (`--input-value`) may be given for."""


def specialize_inputs(
    model: onnx.ModelProto,
    values: Mapping[str, np.ndarray] | None,
    label: str,
    declared: Collection[str],
) -> None:
    """Turn the inputs named in `values` into initializers of `model` (a skeleton:
    modified in place), in the input's declared dtype and shape, so that they
    are constants for shape inference and folding and leave the run-time inputs.

    `declared` are the original model's graph inputs (the skeleton adds its
    large initializers as inputs); one with an initializer is a default the
    value replaces, as a run-time feed would in onnxruntime."""
    if not values:
        return
    graph = model.graph
    inputs = {vi.name: vi for vi in graph.input if vi.name in declared}
    for name, value in values.items():
        if name not in inputs:
            names = [quote_for_message(n) for n in inputs]
            listed = ", ".join(names[:10]) or "none"
            listed += f", ... ({len(names)} in all)" if len(names) > 10 else ""
            raise FrontendError(
                f"{label}: --input-value names unknown input {quote_for_message(name)}; "
                f"inputs are: {listed}"
            )
        array = _value_for(
            inputs[name], np.asarray(value), f"{label}: --input-value {cli_name(name)}"
        )
        defaults = [i for i, t in enumerate(graph.initializer) if t.name == name]
        for index in reversed(defaults):
            del graph.initializer[index]
        graph.initializer.append(numpy_helper.from_array(array, name))
    kept = [vi for vi in graph.input if vi.name not in values]
    del graph.input[:]
    graph.input.extend(kept)


def _value_for(vi: onnx.ValueInfoProto, value: np.ndarray, where: str) -> np.ndarray:
    """`value` in the dtype and shape input `vi` declares, or a one-line error."""
    elem = vi.type.tensor_type.elem_type if vi.type.HasField("tensor_type") else 0
    dtype = _INPUT_DTYPES.get(elem)
    if dtype is None:
        raise FrontendError(
            f"{where}: the input has dtype {_dtype_name(elem)}, which grimc cannot specialize"
        )
    kind = np.dtype(dtype).kind
    given = value.dtype.kind
    if kind == "b" and given != "b" and not np.isin(value, (0, 1)).all():
        raise FrontendError(f"{where}: the input is bool; give true/false (or 1/0)")
    if kind in "iu":
        if given == "f" and not np.all(np.mod(value, 1) == 0):
            raise FrontendError(f"{where}: the input is {_dtype_name(elem)}; give integers")
        info = np.iinfo(dtype)
        if value.min() < info.min or value.max() > info.max:
            raise FrontendError(
                f"{where}: out of the range of {_dtype_name(elem)} [{info.min}, {info.max}]"
            )
    if kind == "f" and given == "b":
        raise FrontendError(
            f"{where}: the input is {_dtype_name(elem)}; give numbers, not true/false"
        )
    declared = _dims(vi)
    shape = tuple(value.shape)
    if declared is not None and None not in declared:
        static = tuple(d for d in declared if d is not None)
        if math.prod(static) != value.size:
            raise FrontendError(
                f"{where}: {value.size} value(s) given; the input's shape {list(static)} "
                f"holds {math.prod(static)}"
            )
        shape = static
    elif declared is not None and (
        len(declared) != len(shape)
        or any(d not in (None, s) for d, s in zip(declared, shape, strict=True))
    ):
        raise FrontendError(
            f"{where}: shape {list(shape)} does not fit the input's {_format_dims(_symbolic(vi))}"
        )
    return np.asarray(value.astype(dtype).reshape(shape), order="C")  # 0-d stays 0-d


# --------------------------------------------------------------------------
# input shapes


def _dims(value_info: onnx.ValueInfoProto) -> list[int | None] | None:
    """Declared dims (None where symbolic or missing); None when rank is unknown."""
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    return [
        d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
        for d in tensor_type.shape.dim
    ]


def _format_dims(dims: Sequence[int | str | None]) -> str:
    """`[N, 3, ?, 224]`; symbolic names come from the model, so may be escaped."""
    return "[" + ", ".join("?" if d is None else cli_name(str(d)) for d in dims) + "]"


def fix_input_shapes(
    model: onnx.ModelProto,
    real_inputs: Sequence[onnx.ValueInfoProto],
    overrides: Mapping[str, Sequence[int]] | None,
    label: str,
) -> list[tuple[int, ...]]:
    """Static shape of every real input, written back into `model` for inference."""
    overrides = dict(overrides or {})
    names = [vi.name for vi in real_inputs]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        listed = ", ".join(quote_for_message(n) for n in names) or "none"
        raise FrontendError(
            f"{label}: --input-shape names unknown input {quote_for_message(unknown[0])}; "
            f"inputs are: {listed}"
        )
    shapes = [_input_shape(vi, overrides.get(vi.name), label) for vi in real_inputs]
    if overrides:
        # Declared intermediate/output shapes may contradict the new inputs.
        del model.graph.value_info[:]
        for output in model.graph.output:
            output.type.tensor_type.ClearField("shape")
    for vi, shape in zip(real_inputs, shapes, strict=True):
        vi.type.tensor_type.ClearField("shape")
        for dim in shape:
            vi.type.tensor_type.shape.dim.add().dim_value = dim
    return shapes


INDEX_INPUT_DTYPES = {
    onnx.TensorProto.INT64: "int64", onnx.TensorProto.INT32: "int32", onnx.TensorProto.BOOL: "bool",
}
"""Non-float input dtypes that may be run-time inputs (what may read them:
grimc.frontend.onnx_import.TYPED_READERS)."""


def index_dtype(vi: onnx.ValueInfoProto) -> str | None:
    """"int64"/"int32"/"bool" for an input that may be fed at run time, else None."""
    return INDEX_INPUT_DTYPES.get(vi.type.tensor_type.elem_type)


def non_float_input(vi: onnx.ValueInfoProto, label: str) -> FrontendError:
    """The error for a non-float32 input used where grimc needs floats."""
    elem = vi.type.tensor_type.elem_type
    hint = (
        f": give it a compile-time value with --input-value {cli_name(vi.name)}=VALUE"
        if elem in _INPUT_DTYPES
        else ""
    )
    return FrontendError(
        f"{label}: input {quote_for_message(vi.name)} has dtype {_dtype_name(elem)}; "
        f"grimc computes in float32 only{hint}"
    )


def _input_shape(
    vi: onnx.ValueInfoProto, override: Sequence[int] | None, label: str
) -> tuple[int, ...]:
    where = f"{label}: input {quote_for_message(vi.name)}"
    if not vi.type.HasField("tensor_type"):
        raise FrontendError(f"{where} is not a tensor")
    if vi.type.tensor_type.elem_type != onnx.TensorProto.FLOAT and index_dtype(vi) is None:
        raise non_float_input(vi, label)
    declared = _dims(vi)
    if override is not None:
        shape = tuple(int(d) for d in override)
        if declared is not None and len(declared) != len(shape):
            raise FrontendError(
                f"{where}: --input-shape gives rank {len(shape)}, the model declares rank {len(declared)}"
            )
        if not shape or min(shape) < 1:
            raise FrontendError(f"{where}: --input-shape dims must be positive, got {list(shape)}")
        return _within_limits(shape, where)
    if declared is None or None in declared:
        shown = "unknown rank" if declared is None else _format_dims(_symbolic(vi))
        example = "x".join(str(d or 1) for d in declared) if declared else "1x3x224x224"
        raise FrontendError(
            f"{where} has a dynamic shape ({shown}); give a static one with "
            f"--input-shape {cli_name(vi.name)}={example}"
        )
    return _within_limits(tuple(d for d in declared if d is not None), where)


def _within_limits(shape: tuple[int, ...], where: str) -> tuple[int, ...]:
    problem = shape_problem(shape)
    if problem is not None:
        raise FrontendError(f"{where}: {problem}")
    return shape


def _dtype_name(elem: int) -> str:
    known = elem in onnx.TensorProto.DataType.values()
    return onnx.TensorProto.DataType.Name(elem).lower() if known else f"#{elem}"


def _symbolic(vi: onnx.ValueInfoProto) -> list[int | str | None]:
    dims = vi.type.tensor_type.shape.dim
    return [
        d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (d.dim_param or None)
        for d in dims
    ]


def cli_name(name: str) -> str:
    safe = name and all(c.isalnum() or c in "_-./:" for c in name) and len(name) <= 60
    return name if safe else quote_for_message(name)


# --------------------------------------------------------------------------
# shape inference


@dataclass
class Inference:
    """ONNX shape inference: static shapes it knows, and its complaint, if any.

    A strict-mode failure is kept, not raised: the converters usually report
    the same problem at its node with a clearer message, and the importer
    raises `error` only if conversion found nothing.
    """

    shapes: dict[str, tuple[int, ...]]
    error: str | None


_INFERENCE_ERRORS = (
    onnx.shape_inference.InferenceError,
    onnx.checker.ValidationError,
    RuntimeError,
)


def infer_shapes(model: onnx.ModelProto, label: str) -> Inference:
    error = None
    try:
        inferred = shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except _INFERENCE_ERRORS as exc:
        error = f"{label}: ONNX shape inference failed: {first_line(exc)}"
        try:
            inferred = shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
        except _INFERENCE_ERRORS:
            inferred = model
    shapes: dict[str, tuple[int, ...]] = {}
    for vi in (*inferred.graph.value_info, *inferred.graph.output):
        dims = _dims(vi) if vi.type.HasField("tensor_type") else None
        if dims is not None and None not in dims:
            shapes[vi.name] = tuple(d for d in dims if d is not None)
    return Inference(shapes, error)
