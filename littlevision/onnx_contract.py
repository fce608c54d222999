"""The contract of a bundle's ``model.onnx``, shared by the exporter, the runtime and the service.

Input ``image``: uint8 ``[N, S, S, 3]``, the whole image resized to S x S (S in ``card.json``),
normalisation inside the graph. Output ``probabilities``: float32 ``[N, C]`` in
``labels.json`` order. Nothing here imports ONNX: the names are plain strings.
"""

from __future__ import annotations

ONNX_INPUT = "image"
ONNX_OUTPUT = "probabilities"

__all__ = ["ONNX_INPUT", "ONNX_OUTPUT"]
