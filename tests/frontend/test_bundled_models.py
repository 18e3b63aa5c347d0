"""The model files bundled with the onnx package (onnx/backend/test/data).

Every file is classified: those using only supported operators must import
and verify; the others must fail with a one-line FrontendError giving the
expected reason, never a traceback. A file missing from the table fails, so
a new onnx release is noticed.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from grimc.frontend import FrontendError, import_onnx
from tests.frontend.helpers import ops, result_shapes

DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"

IMPORTS = (
    [f"light/light_{n}.onnx" for n in ["bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50", "shufflenet", "squeezenet", "vgg19", "zfnet512"]]
    + [
        f"pytorch-converted/test_{n}"
        for n in [
            "AvgPool1d", "AvgPool1d_stride", "AvgPool2d", "AvgPool2d_stride",
            "BatchNorm1d_3d_input_eval", "BatchNorm2d_eval", "BatchNorm2d_momentum_eval",
            "BatchNorm3d_eval", "BatchNorm3d_momentum_eval",
            "Conv1d", "Conv1d_dilated", "Conv1d_groups", "Conv1d_pad1", "Conv1d_pad1size1",
            "Conv1d_pad2", "Conv1d_pad2size1", "Conv1d_stride",
            "Conv2d", "Conv2d_depthwise", "Conv2d_depthwise_padded", "Conv2d_depthwise_strided",
            "Conv2d_depthwise_with_multiplier", "Conv2d_dilated", "Conv2d_groups", "Conv2d_groups_thnn",
            "Conv2d_no_bias", "Conv2d_padding", "Conv2d_strided",
            "LeakyReLU", "LeakyReLU_with_negval", "Linear", "Linear_no_bias",
            "MaxPool1d", "MaxPool1d_stride", "MaxPool1d_stride_padding_dilation",
            "MaxPool2d", "MaxPool2d_stride_padding_dilation",
            "PReLU_1d", "PReLU_1d_multiparam", "PReLU_2d", "PReLU_2d_multiparam", "PReLU_3d", "PReLU_3d_multiparam",
            "PixelShuffle", "ReLU", "Sigmoid", "Softmax", "Tanh", "softmax_functional_dim3", "softmax_lastdim",
            "PoissonNLLLLoss_no_reduce", "Softmin", "Softsign",
            "ConvTranspose2d", "ConvTranspose2d_no_bias",
            "ConstantPad2d", "GLU", "GLU_dim", "ReflectionPad2d", "ReplicationPad2d", "ZeroPad2d",
            "Embedding", "Embedding_sparse",  # int64 token ids at run time: graph.gather
        ]
    ]
    + [
        f"pytorch-operator/test_operator_{n}"
        for n in ["addmm", "clip", "concat2", "conv", "convtranspose", "flatten", "maxpool", "mm", "permute2", "view",
                  "basic", "exp", "max", "min", "params", "pow", "sqrt", "symbolic_override_nested",
                  "chunk", "index", "pad", "reduced_mean", "reduced_mean_keepdim", "reduced_sum",
                  "reduced_sum_keepdim"]
    ]
    + ["simple/test_single_relu_model"]
)  # fmt: skip

UNSUPPORTED_OP = "unsupported operator"
THREE_D = "only 1-D and 2-D"
DTYPE = "has dtype"

FAILS: dict[str, str] = {
    **{f"pytorch-converted/test_{n}": THREE_D for n in [
        "AvgPool3d", "AvgPool3d_stride", "AvgPool3d_stride1_pad0_gpu_input", "Conv3d", "Conv3d_dilated",
        "Conv3d_dilated_strided", "Conv3d_groups", "Conv3d_no_bias", "Conv3d_stride", "Conv3d_stride_padding",
        "MaxPool3d", "MaxPool3d_stride", "MaxPool3d_stride_padding",
    ]},
    **{f"pytorch-converted/test_{n}": f"({op}): {UNSUPPORTED_OP}" for n, op in [
        ("ELU", "Elu"), ("LogSoftmax", "LogSoftmax"),
        ("SELU", "Selu"), ("Softplus", "Softplus"),
        ("log_softmax_dim3", "LogSoftmax"), ("log_softmax_lastdim", "LogSoftmax"),
    ]},
    **{f"pytorch-operator/test_operator_{n}": "input '0' has dtype double" for n in [
        "add_broadcast", "add_size1_broadcast", "add_size1_right_broadcast", "add_size1_singleton_broadcast",
        "addconstant",
    ]},
    "pytorch-operator/test_operator_non_float_params": "input '0' has dtype int64",
    **{f"pytorch-operator/test_operator_{n}": f"({op}): {UNSUPPORTED_OP}" for n, op in [
        ("repeat", "Tile"), ("repeat_dim_overflow", "Tile"),
        ("selu", "Selu"), ("symbolic_override", "InstanceNormalization"),
    ]},
    **{f"simple/test_expand_shape_model{i}": "input 'shape' has dtype int64" for i in range(1, 5)},
    "simple/test_gradient_of_add": f"(ai.onnx.preview.training.Gradient): {UNSUPPORTED_OP}",
    "simple/test_gradient_of_add_and_mul": f"(ai.onnx.preview.training.Gradient): {UNSUPPORTED_OP}",
    **{f"simple/test_sequence_model{i}": UNSUPPORTED_OP for i in range(1, 7)},
    "simple/test_sequence_model7": "input 'X' has dtype double",
    "simple/test_sequence_model8": "input 'X' has a dynamic shape ([n])",
    "simple/test_shrink": f"(Shrink): {UNSUPPORTED_OP}",
    "simple/test_sign_model": f"node 'test' (Sign): {UNSUPPORTED_OP}",
    **{f"simple/test_strnorm_model_{n}": "input 'x' has dtype string" for n in [
        "monday_casesensintive_lower", "monday_casesensintive_nochangecase", "monday_casesensintive_upper",
        "monday_empty_output", "monday_insensintive_upper_twodim", "nostopwords_nochangecase",
    ]},
}  # fmt: skip


def _bundled() -> list[str]:
    light = sorted(str(p.relative_to(DATA)) for p in DATA.glob("light/*.onnx"))
    tests = sorted(str(p.parent.relative_to(DATA)) for p in DATA.glob("*/*/model.onnx"))
    return light + [t for t in tests if not t.startswith("real/")]


def _path(key: str) -> Path:
    return DATA / key if key.endswith(".onnx") else DATA / key / "model.onnx"


def test_every_bundled_model_is_classified() -> None:
    bundled = set(_bundled())
    assert not set(IMPORTS) & set(FAILS)
    assert bundled == set(IMPORTS) | set(FAILS), sorted(bundled ^ (set(IMPORTS) | set(FAILS)))


@pytest.mark.parametrize("key", IMPORTS)
def test_bundled_model_imports(key: str) -> None:
    path = _path(key)
    onnx_model = onnx.load(path, load_external_data=False)
    module = import_onnx(path)
    module.verify()
    declared = [
        tuple(d.dim_value for d in o.type.tensor_type.shape.dim) for o in onnx_model.graph.output
    ]
    assert result_shapes(module) == declared
    convs = sum(n.op_type in ("Conv", "ConvTranspose") for n in onnx_model.graph.node)
    assert len(ops(module, "graph.conv")) == convs


@pytest.mark.parametrize("key", sorted(FAILS))
def test_bundled_model_fails_cleanly(key: str) -> None:
    with pytest.raises(FrontendError) as info:
        import_onnx(_path(key))
    message = str(info.value)
    assert message.startswith(f"{_path(key)}: ") and "\n" not in message
    assert FAILS[key] in message
