"""Walk a Keras model's layers in call order, through nested models, and tap their outputs.

Why this exists: a bundle's classifier holds its backbone as a *nested* model
(``pixels -> efficientnet_lite0 -> classifier``). Keras will not return an inner layer's output
from the outer model ("not connected to inputs"), so every explanation would need a different
bit of model surgery. Instead we re-trace the whole graph once on a fresh symbolic input, calling
every leaf layer again in inference mode and noting the tensors we want. The traced model
shares the original's layers and weights; nothing is copied.

Softmax outputs are traced too: where the model's output comes from a softmax (a ``Dense`` with
``activation="softmax"``, an ``Activation("softmax")`` or a ``Softmax`` layer) we also build its
*logits*, which Grad-CAM and activation maximisation need (a softmax saturates).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from littlevision.errors import UserError
from littlevision.models.keras_graph import is_model, walk

# Layers whose 4-D output is a "feature map" a person would call a convolutional activation.
CONV_LIKE = frozenset(
    {
        "Conv2D",
        "DepthwiseConv2D",
        "SeparableConv2D",
        "Conv2DTranspose",
        "Activation",
        "ReLU",
        "LeakyReLU",
        "ELU",
        "PReLU",
        "BatchNormalization",
        "Add",
        "Multiply",
    }
)
# Layers that prepare pixels rather than compute features: never a default to show or explain.
PREPROCESSING = frozenset(
    {
        "InputLayer",
        "Rescaling",
        "Normalization",
        "Resizing",
        "CenterCrop",
        "ZeroPadding2D",
        "Cropping2D",
    }
)


@dataclass(frozen=True)
class LayerInfo:
    """One leaf layer of a (possibly nested) model, in call order.

    Attributes:
        index: Position in call order among all leaf layers (what ``--layers 3`` means).
        name: The layer's own name (unique within its model).
        path: Names of the enclosing models and the layer, joined by ``/``
            (``efficientnet_lite0/top_activation``), unique in the whole model.
        class_name: The Keras class (``Conv2D``...).
        output_shape: Output shape without the batch axis, e.g. ``(7, 7, 1280)``.
    """

    index: int
    name: str
    path: str
    class_name: str
    output_shape: tuple

    @property
    def is_feature_map(self) -> bool:
        """A 4-D, spatially extended output of a convolution-like layer."""
        return (
            len(self.output_shape) == 3
            and self.class_name in CONV_LIKE
            and (self.output_shape[0] or 2) > 1
            and (self.output_shape[1] or 2) > 1
        )


Visitor = Callable[[Any, str, tuple, dict, Any], None]


def _call_leaf(layer, args: tuple, kwargs: dict):
    if getattr(layer, "_call_has_training_arg", False):
        kwargs = {**kwargs, "training": False}
    return layer(*args, **kwargs)


def _trace(model, inputs, visit: Visitor, prefix: str):
    """Run ``model`` on ``inputs`` layer by layer, calling ``visit`` after each leaf layer."""

    def run(layer, args: tuple, kwargs: dict):
        path = f"{prefix}{layer.name}"
        if is_model(layer):
            return _trace(layer, args[0] if len(args) == 1 else list(args), visit, path + "/")
        out = _call_leaf(layer, args, kwargs)
        visit(layer, path, args, kwargs, out)
        return out

    return walk(model, inputs, run)


def _input_shape(model) -> tuple:
    shape = tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else None
    if not shape:
        raise UserError("The model has no defined input: build or load it before explaining it.")
    return shape


def _softmax_logits(layer, args: tuple):
    """The pre-softmax tensor of a layer whose output is a softmax, else None."""
    from keras import ops

    cls = type(layer).__name__
    act = getattr(getattr(layer, "activation", None), "__name__", None)
    if cls == "Dense" and act == "softmax":
        y = ops.matmul(args[0], layer.kernel)
        return y + layer.bias if layer.use_bias else y
    if cls == "Softmax" or (cls == "Activation" and act == "softmax"):
        return args[0]
    return None


@dataclass
class Traced:
    """A re-traced model: a fresh input, the tapped tensors by layer path, logits and output."""

    input: Any
    taps: dict[str, Any]
    logits: Any  # pre-softmax scores [N, C] (log-probabilities when no softmax is found)
    output: Any  # the model's own output [N, C]; None when the trace stopped early
    layers: list[LayerInfo]


class _Stop(Exception):
    """Raised inside a trace once the last layer needed has been computed."""


def trace(
    model,
    tap: Sequence[str] | None = (),
    input_shape: tuple | None = None,
    stop_after: str | None = None,
) -> Traced:
    """Re-trace ``model`` symbolically, recording the outputs of the layers named in ``tap``.

    Args:
        model: A Keras Functional or Sequential model, backbones nested or not.
        tap: Layer paths (as in :attr:`LayerInfo.path`) whose outputs to keep; None keeps all.
        input_shape: Trace for another input shape than the model's own, e.g. ``(None, None, 3)``
            for a purely convolutional part (layers after a ``Flatten`` then need the original).
        stop_after: Stop tracing after this layer path: the rest of the model is not traced
            (so it may not accept ``input_shape``) and ``output``/``logits`` are None.

    Returns:
        A :class:`Traced` from which ``keras.Model(t.input, [...])`` builds a model that
        computes the tapped tensors together with the output, in one pass.
    """
    from littlevision._tf import quiet_keras

    keras = quiet_keras()
    wanted = set(tap) if tap is not None else None
    taps: dict[str, Any] = {}
    logits_of: dict[int, Any] = {}
    infos: list[LayerInfo] = []

    def visit(layer, path, args, kwargs, out):
        shape = tuple(getattr(out, "shape", ())[1:]) if hasattr(out, "shape") else ()
        infos.append(LayerInfo(len(infos), layer.name, path, type(layer).__name__, shape))
        if wanted is None or path in wanted:
            taps[path] = out
        if stop_after is not None and path == stop_after:
            raise _Stop
        z = _softmax_logits(layer, args) if args else None
        if z is not None:
            logits_of[id(out)] = z

    x = keras.Input(shape=input_shape or _input_shape(model), name="explain_pixels")
    try:
        out = _trace(model, x, visit, "")
    except _Stop:
        missing = (wanted or set()) - set(taps)
        if missing:
            raise UserError(f"No layer named {sorted(missing)[0]!r} in the model.") from None
        return Traced(input=x, taps=taps, logits=None, output=None, layers=infos)
    logits = logits_of.get(id(out))
    if logits is None:  # no softmax found: log-probabilities differ from logits by a constant
        logits = keras.ops.log(keras.ops.maximum(out, 1e-12))
    missing = (wanted or set()) - set(taps)
    if missing:
        raise UserError(f"No layer named {sorted(missing)[0]!r} in the model.")
    return Traced(input=x, taps=taps, logits=logits, output=out, layers=infos)


def as_keras_model(model):
    """A keras.Model, plus the Bundle when ``model`` was a run (folder or Bundle)."""
    from littlevision.bundle import Bundle

    if isinstance(model, (str, os.PathLike)):
        model = Bundle.load(model)
    if isinstance(model, Bundle):
        return model.load_keras(), model
    if not hasattr(model, "inputs"):
        raise TypeError(
            f"Expected a keras.Model, a Bundle or a run folder. Received: {type(model)}"
        )
    return model, None


def list_layers(model) -> list[LayerInfo]:
    """Every leaf layer of ``model`` (keras.Model, Bundle or run folder) in call order.

    Nested backbones are walked into; the indices are what ``--layers 3`` refers to.
    """
    return trace(as_keras_model(model)[0]).layers


def resolve_layers(layers: Sequence[LayerInfo], wanted: Sequence[str | int]) -> list[LayerInfo]:
    """Find layers by index (negative counts from the end), path or plain name.

    Raises:
        UserError: naming the first layer that is not in the model.
    """
    by_path = {info.path: info for info in layers}
    out = []
    for w in wanted:
        if isinstance(w, str) and w.lstrip("-").isdigit():
            w = int(w)
        if isinstance(w, int):
            if not -len(layers) <= w < len(layers):
                raise UserError(
                    f"Layer index {w} is out of range: the model has {len(layers)} "
                    "layers (see `littlevision layers RUN`)."
                )
            out.append(layers[w])
        elif w in by_path:
            out.append(by_path[w])
        else:
            named = [info for info in layers if info.name == w]
            if not named:
                raise UserError(
                    f"No layer named '{w}' in the model (see `littlevision layers RUN`)."
                )
            out.append(named[-1])
    return out


def last_feature_layer(layers: Sequence[LayerInfo], preferred: str | None = None) -> LayerInfo:
    """The layer Grad-CAM should look at: ``preferred`` if present, else the last feature map.

    Raises:
        UserError: when the model has no spatial feature map (e.g. a plain dense network).
    """
    if preferred:
        for info in reversed(layers):
            if preferred in (info.name, info.path):
                return info
    maps = [info for info in layers if info.is_feature_map]
    if not maps:
        raise UserError("The model has no convolutional feature map to explain.")
    return maps[-1]
