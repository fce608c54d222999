"""One walker over a Keras model's layer graph, through nested models.

The ONNX exporter (each layer becomes ONNX nodes) and the explainers (each layer is called again
on a fresh symbolic input, and its output tapped) both need "call every layer of this model in
order, feeding it what the layers before it produced". Keras has no public API for that; the
one private entry point used, ``Function._run_through_graph(inputs, operation_fn=...)``, is used
here and only here, and ``operation_fn`` is the argument every Keras 3 release has (the newer
``call_fn`` appeared in 3.14). ``tests/models/test_keras_graph.py`` checks it on the installed
Keras, and the lowest-versions check runs that test on the oldest Keras allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: ``call(layer, args, kwargs) -> output``: what the walker does with each layer.
LayerCall = Callable[[Any, tuple, dict], Any]


def is_model(layer) -> bool:
    """Whether ``layer`` is itself a model (Functional or Sequential) holding layers."""
    return hasattr(layer, "_run_through_graph") or type(layer).__name__ == "Sequential"


def walk(model, inputs, call: LayerCall):
    """Run ``model`` on ``inputs`` layer by layer, each layer through ``call``.

    ``call`` decides what a layer means: call it on tensors (explain), or turn it into ONNX
    nodes on tensor names (the exporter). Nested models reach ``call`` as layers too; call
    :func:`walk` on them again to go inside.

    Args:
        model: A Keras Functional or Sequential model.
        inputs: One value per model input (a list), or the single value.
        call: ``call(layer, args, kwargs)`` returns the layer's output for the arguments the
            graph gives it (values produced by earlier calls).

    Returns:
        The model's output: one value, or a list for a model with several outputs.

    Raises:
        TypeError: when ``model`` is not a Functional or Sequential model.
    """
    if type(model).__name__ == "Sequential":
        x = inputs[0] if isinstance(inputs, (list, tuple)) and len(inputs) == 1 else inputs
        for layer in model.layers:  # Keras 3 leaves the implicit InputLayer out
            x = call(layer, (x,), {})
        return x
    if not hasattr(model, "_run_through_graph"):
        raise TypeError(f"Expected a Keras Functional or Sequential model. Received: {type(model)}")

    def operation_fn(layer):
        return lambda *args, **kwargs: call(layer, args, kwargs)

    out = model._run_through_graph(inputs, operation_fn=operation_fn)
    return out[0] if isinstance(out, (list, tuple)) and len(out) == 1 else out
