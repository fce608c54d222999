"""Export a Keras classifier to ONNX, with the bundle's contract built into the graph.

Why our own converter: the models littlevision makes use a dozen layer types, and converting them
directly is fast (well under a second), exact, and free of tf2onnx's version pins. The graph:

    image: uint8 [N, S, S, 3]  -> Cast -> Transpose to NCHW -> the model's layers -> probabilities

Layers that only act in training (dropout, random augmentation) become identities. A layer type
that is not supported raises ``NotImplementedError`` naming it, never a silently wrong model.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from littlevision._io import atomic_path
from littlevision.models.keras_graph import is_model, walk
from littlevision.onnx_contract import ONNX_INPUT, ONNX_OUTPUT

OPSET = 17

# Layers that are the identity at inference time.
_IDENTITY = {
    "InputLayer",
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
    "Identity",
}


class _Graph:
    """Collects ONNX nodes and initializers; tensors in 4D are kept NCHW."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._ids = itertools.count()
        self.inputs_of: dict[str, list[str]] = {}  # layer output -> the tensors it was given

    def name(self, hint: str) -> str:
        return f"{hint}_{next(self._ids)}"

    def const(self, array: np.ndarray, hint: str) -> str:
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str, **attrs) -> str:
        out = self.name(hint)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


def _activation(g: _Graph, x: str, name: str, hint: str, ndim: int) -> str:
    name = (name or "linear").lower()
    if name == "linear":
        return x
    if name == "relu":
        return g.op("Relu", [x], hint)
    if name == "relu6":
        return g.op(
            "Clip", [x, g.const(np.float32(0), "zero"), g.const(np.float32(6), "six")], hint
        )
    if name == "sigmoid":
        return g.op("Sigmoid", [x], hint)
    if name == "tanh":
        return g.op("Tanh", [x], hint)
    if name in ("swish", "silu"):
        return g.op("Mul", [x, g.op("Sigmoid", [x], hint + "_sig")], hint)
    if name == "softmax":
        axis = 1 if ndim == 4 else -1  # channels sit on axis 1 in NCHW
        return g.op("Softmax", [x], hint, axis=axis)
    raise NotImplementedError(f"ONNX export: activation '{name}' is not supported.")


def _act_name(fn) -> str:
    if fn is None:
        return "linear"
    return getattr(fn, "__name__", str(fn))


def _pads(layer, ndim_spatial: int = 2) -> dict:
    return {"auto_pad": "SAME_UPPER"} if layer.padding == "same" else {"auto_pad": "VALID"}


#: ``converter(g, layer, args, x, rank) -> (output name, rank)``: ONNX nodes for one layer.
Converter = Callable[["_Graph", Any, list[str], str, int], tuple[str, int]]

_CONVERTERS: dict[str, Converter] = {}


def register_converter(*class_names: str) -> Callable[[Converter], Converter]:
    """Make the decorated function the ONNX converter of the Keras layer classes named.

    ``x`` is the layer's first input and ``rank`` its rank (4: NCHW images, 2: [N, D]).
    A class with two converters is an error, never a silent overwrite.
    """

    def add(fn: Converter) -> Converter:
        for name in class_names:
            if name in _CONVERTERS:
                raise ValueError(
                    f"An ONNX converter for '{name}' is already registered ({_CONVERTERS[name]})."
                )
            _CONVERTERS[name] = fn
        return fn

    return add


def _convert_layer(g: _Graph, layer, args: list[str], ranks: dict[str, int]) -> tuple[str, int]:
    """Return (output tensor name, rank) for one Keras layer applied to ``args``."""
    cls = type(layer).__name__
    x = args[0] if args else None
    rank = ranks.get(x, 4) if x else 4
    if cls in _IDENTITY or cls.startswith("Random") or getattr(layer, "onnx_identity", False):
        return x, rank
    if cls in _CONVERTERS:
        return _CONVERTERS[cls](g, layer, args, x, rank)
    if is_model(layer):
        return _convert_model(g, layer, args, ranks)
    raise NotImplementedError(f"ONNX export: layer '{layer.name}' of type {cls} is not supported.")


@register_converter("Normalization")
def _normalization(g: _Graph, layer, args, x, rank):
    mean = np.asarray(layer.mean, np.float32).reshape(-1)
    std = np.maximum(np.sqrt(np.asarray(layer.variance, np.float32).reshape(-1)), 1e-7)
    shape = (1, -1, 1, 1) if rank == 4 else (1, -1)
    y = g.op("Sub", [x, g.const(mean.reshape(shape), "mean")], layer.name + "_sub")
    return g.op("Div", [y, g.const(std.reshape(shape), "std")], layer.name), rank


@register_converter("Rescaling")
def _rescaling(g: _Graph, layer, args, x, rank):
    hint = layer.name
    scale = np.asarray(layer.scale, np.float32)
    offset = np.asarray(layer.offset, np.float32)
    shape = (1, -1, 1, 1) if rank == 4 and scale.size > 1 else scale.shape
    y = g.op(
        "Mul",
        [x, g.const(scale.reshape(shape if scale.size > 1 else ()), "scale")],
        hint + "_mul",
    )
    oshape = (1, -1, 1, 1) if rank == 4 and offset.size > 1 else ()
    return g.op("Add", [y, g.const(offset.reshape(oshape), "offset")], hint), rank


@register_converter("Conv2D", "DepthwiseConv2D")
def _conv(g: _Graph, layer, args, x, rank):
    cls, hint = type(layer).__name__, layer.name
    if tuple(layer.dilation_rate) != (1, 1):
        raise NotImplementedError(f"ONNX export: dilated convolution in '{layer.name}'.")
    w = np.asarray(layer.kernel.numpy() if hasattr(layer.kernel, "numpy") else layer.kernel)
    if cls == "Conv2D":
        if layer.groups != 1:
            raise NotImplementedError(f"ONNX export: grouped Conv2D '{layer.name}'.")
        kernel = w.transpose(3, 2, 0, 1)  # HWIO -> OIHW
        group = 1
    else:
        kh, kw, c, m = w.shape
        kernel = w.transpose(2, 3, 0, 1).reshape(c * m, 1, kh, kw)
        group = c
    inputs = [x, g.const(kernel.astype(np.float32), hint + "_w")]
    if layer.use_bias:
        inputs.append(g.const(np.asarray(layer.bias.numpy(), np.float32), hint + "_b"))
    y = g.op(
        "Conv",
        inputs,
        hint,
        kernel_shape=list(kernel.shape[2:]),
        strides=list(layer.strides),
        group=group,
        **_pads(layer),
    )
    return _activation(g, y, _act_name(layer.activation), hint + "_act", 4), 4


@register_converter("BatchNormalization")
def _batch_norm(g: _Graph, layer, args, x, rank):
    if rank == 4 and layer.axis not in (-1, 3):
        raise NotImplementedError(f"ONNX export: BatchNormalization axis {layer.axis}.")
    c = layer.moving_mean.shape[0]
    gamma = layer.gamma.numpy() if layer.scale else np.ones(c, np.float32)
    beta = layer.beta.numpy() if layer.center else np.zeros(c, np.float32)
    params = [
        np.asarray(a, np.float32)
        for a in (gamma, beta, layer.moving_mean.numpy(), layer.moving_variance.numpy())
    ]
    names = [
        g.const(p, f"{layer.name}_{k}") for p, k in zip(params, ("g", "b", "m", "v"), strict=True)
    ]
    return g.op("BatchNormalization", [x, *names], layer.name, epsilon=float(layer.epsilon)), rank


@register_converter("ReLU")
def _relu(g: _Graph, layer, args, x, rank):
    if layer.negative_slope or layer.threshold:
        raise NotImplementedError(f"ONNX export: leaky/thresholded ReLU '{layer.name}'.")
    if layer.max_value is None:
        return g.op("Relu", [x], layer.name), rank
    lo, hi = g.const(np.float32(0), "zero"), g.const(np.float32(layer.max_value), "max")
    return g.op("Clip", [x, lo, hi], layer.name), rank


@register_converter("Activation")
def _activation_layer(g: _Graph, layer, args, x, rank):
    return _activation(g, x, _act_name(layer.activation), layer.name, rank), rank


@register_converter("Softmax")
def _softmax(g: _Graph, layer, args, x, rank):
    return _activation(g, x, "softmax", layer.name, rank), rank


_MERGE_OPS = {
    "Add": "Add",
    "Multiply": "Mul",
    "Subtract": "Sub",
    "Maximum": "Max",
    "Minimum": "Min",
    "Average": "Sum",
}


@register_converter(*_MERGE_OPS)
def _merge(g: _Graph, layer, args, x, rank):
    cls, hint = type(layer).__name__, layer.name
    op = _MERGE_OPS[cls]
    y = g.op(op, list(args), hint) if op in ("Max", "Min", "Sum") or len(args) == 2 else None
    if y is None:  # chain n-ary Add/Mul
        y = args[0]
        for other in args[1:]:
            y = g.op(op, [y, other], hint)
    if cls == "Average":
        y = g.op("Div", [y, g.const(np.float32(len(args)), "n")], hint + "_avg")
    return y, rank


@register_converter("ZeroPadding2D")
def _zero_padding(g: _Graph, layer, args, x, rank):
    (top, bottom), (left, right) = layer.padding
    pads = g.const(np.array([0, 0, top, left, 0, 0, bottom, right], np.int64), "pads")
    return g.op("Pad", [x, pads], layer.name), 4


@register_converter("MaxPooling2D", "AveragePooling2D")
def _pooling(g: _Graph, layer, args, x, rank):
    op = "MaxPool" if type(layer).__name__ == "MaxPooling2D" else "AveragePool"
    extra = {} if op == "MaxPool" else {"count_include_pad": 0}
    y = g.op(
        op,
        [x],
        layer.name,
        kernel_shape=list(layer.pool_size),
        strides=list(layer.strides),
        **_pads(layer),
        **extra,
    )
    return y, 4


@register_converter("GlobalAveragePooling2D", "GlobalMaxPooling2D")
def _global_pooling(g: _Graph, layer, args, x, rank):
    cls = type(layer).__name__
    op = "GlobalAveragePool" if cls == "GlobalAveragePooling2D" else "GlobalMaxPool"
    y = g.op(op, [x], layer.name)
    if layer.keepdims:
        return y, 4
    return g.op("Flatten", [y], layer.name + "_flat", axis=1), 2


@register_converter("Flatten")
def _flatten(g: _Graph, layer, args, x, rank):
    if rank == 4:  # Keras flattens NHWC: go back to that order first
        x = g.op("Transpose", [x], layer.name + "_nhwc", perm=[0, 2, 3, 1])
    return g.op("Flatten", [x], layer.name, axis=1), 2


@register_converter("Dense")
def _dense(g: _Graph, layer, args, x, rank):
    hint = layer.name
    if rank != 2:
        raise NotImplementedError(f"ONNX export: Dense '{layer.name}' on a {rank}-D input.")
    w = np.asarray(layer.kernel.numpy(), np.float32)
    b = (
        np.asarray(layer.bias.numpy(), np.float32)
        if layer.use_bias
        else np.zeros(w.shape[1], np.float32)
    )
    y = g.op("Gemm", [x, g.const(w, hint + "_w"), g.const(b, hint + "_b")], hint)
    return _activation(g, y, _act_name(layer.activation), hint + "_act", 2), 2


def _convert_model(g: _Graph, model, args: list[str], ranks: dict[str, int]) -> tuple[str, int]:

    def call(layer, call_args: tuple, kwargs: dict) -> str:
        names = [a for a in call_args if isinstance(a, str)]
        for a in call_args:
            if isinstance(a, (list, tuple)):
                names.extend(a)
        out, rank = _convert_layer(g, layer, names, ranks)
        ranks[out] = rank
        g.inputs_of.setdefault(out, names)
        return out

    out = walk(model, args, call)
    if isinstance(out, (list, tuple)):
        if len(out) != 1:
            raise NotImplementedError("ONNX export: models with several outputs are not supported.")
        out = out[0]
    return out, ranks[out]


def export_onnx(
    model,
    path: str | Path,
    image_size: int,
    output_name: str = ONNX_OUTPUT,
    features_output: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write ``model`` as ONNX with the bundle contract and return the path.

    Args:
        model: A Keras model taking float RGB pixels 0..255 [N, S, S, 3] and returning class
            probabilities (softmax over C, or one sigmoid unit for two classes).
        path: Where to write ``model.onnx``.
        image_size: S.
        output_name: The output's name (``probabilities`` for a classifier; a feature
            extractor names its output ``features`` and is not given the two-class expansion).
        features_output: Also output, under this name and *after* the first output, the
            [N, D] tensor the model's last layer was given (the pooled backbone features of a
            bottleneck model): the novelty score reads it at no extra cost, while every
            consumer of the first output sees the same graph as before.
        metadata: Written as the model's ``metadata_props`` (a bundle stores its labels,
            image size and littlevision version there, so a bare ONNX file describes itself).

    Returns:
        The path written.
    """
    g = _Graph()
    x = g.op("Cast", [ONNX_INPUT], "to_float", to=TensorProto.FLOAT)
    x = g.op("Transpose", [x], "to_nchw", perm=[0, 3, 1, 2])
    ranks = {x: 4}
    y, rank = _convert_model(g, model, [x], ranks)
    model_out = y
    if rank != 2:
        raise NotImplementedError("ONNX export: the model must end in a [N, C] output.")
    n_out = int(model.outputs[0].shape[-1])
    if (
        n_out == 1 and output_name == ONNX_OUTPUT
    ):  # a sigmoid unit: P(class 1); make it [P(class 0), P(class 1)]
        one = g.const(np.float32(1.0), "one")
        y = g.op("Concat", [g.op("Sub", [one, y], "p0"), y], "p01", axis=1)
    g.nodes.append(helper.make_node("Identity", [y], [output_name], name="output"))
    n_classes = max(2, n_out) if output_name == ONNX_OUTPUT else n_out
    outputs = [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["N", n_classes])]
    if features_output:
        feats = g.inputs_of.get(model_out, [None])[0]
        if feats is None or ranks.get(feats) != 2:
            raise NotImplementedError("ONNX export: no [N, D] input to the model's last layer.")
        g.nodes.append(helper.make_node("Identity", [feats], [features_output], name="features"))
        outputs.append(
            helper.make_tensor_value_info(features_output, TensorProto.FLOAT, ["N", "D"])
        )
    graph = helper.make_graph(
        g.nodes,
        "littlevision",
        [
            helper.make_tensor_value_info(
                ONNX_INPUT, TensorProto.UINT8, ["N", image_size, image_size, 3]
            )
        ],
        outputs,
        initializer=g.inits,
    )
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="littlevision"
    )
    proto.ir_version = 8  # readable by older runtimes too
    from littlevision import __version__

    proto.producer_version = __version__
    if metadata:
        helper.set_model_props(proto, {str(k): str(v) for k, v in metadata.items()})
    onnx.checker.check_model(proto)
    path = Path(path)
    with atomic_path(path) as tmp:
        onnx.save(proto, tmp)
    return path
