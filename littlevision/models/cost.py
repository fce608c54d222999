"""What a model costs per image: multiply-adds, parameters and measured inference time.

A bigger backbone can buy accuracy; the card, ``info``, the report and the service say what it
costs, in a number that does not depend on the machine (multiply-adds, counted from the Keras
graph) and one that does (milliseconds per image through the bundle's ONNX model, measured when
the bundle is written, with the machine's load average beside it, since a shared machine can make
the same model look twice as slow).
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["count_multiply_adds", "describe_cost", "measure_onnx_speed", "model_cost"]


def _layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:  # a nested model: its own layers
            yield from _layers(layer)
        else:
            yield layer


def count_multiply_adds(model) -> int:
    """Multiply-adds of one forward pass for one image (convolutions and dense layers).

    Args:
        model: A built Keras model (nested models are walked).

    Returns:
        The count; element-wise layers (BatchNorm, activations, adds) are left out, as usual.
    """
    total = 0
    for layer in _layers(model):
        kind = type(layer).__name__
        try:
            out = tuple(layer.output.shape)[1:]
        except (AttributeError, ValueError):
            continue
        if kind == "DepthwiseConv2D":
            kh, kw = layer.kernel_size
            total += int(np.prod(out)) * kh * kw
        elif kind == "Conv2D":
            kh, kw = layer.kernel_size
            c_in = int(layer.input.shape[-1]) // max(int(getattr(layer, "groups", 1)), 1)
            total += int(np.prod(out)) * kh * kw * c_in
        elif kind == "Dense":
            total += int(layer.input.shape[-1]) * int(out[-1])
    return total


def measure_onnx_speed(
    onnx_path: str | os.PathLike, image_size: int, batch_size: int = 16, repeats: int = 2
) -> float:
    """Images per second through an ONNX model on random uint8 images (decoding excluded).

    The pixels do not change the speed of a convolutional network, so no real image is needed.
    """
    from littlevision.inference import make_session

    session = make_session(onnx_path)
    name = session.get_inputs()[0].name
    batch = np.random.default_rng(0).integers(
        0, 256, (batch_size, image_size, image_size, 3), np.uint8
    )
    session.run(None, {name: batch})
    t0 = time.perf_counter()
    for _ in range(repeats):
        session.run(None, {name: batch})
    return repeats * batch_size / max(time.perf_counter() - t0, 1e-9)


def model_cost(model, onnx_path: Path, image_size: int, backbone: str | None) -> dict[str, Any]:
    """The ``cost`` block of ``card.json``: per-image compute and measured speed."""
    from littlevision._system import available_cores

    speed = measure_onnx_speed(onnx_path, image_size)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "backbone": backbone,
        "image_size": int(image_size),
        "parameters": int(model.count_params()),
        "multiply_adds_per_image": count_multiply_adds(model),
        "ms_per_image": round(1000.0 / speed, 2),
        "images_per_s": round(speed, 1),
        "measured_with": (
            f"ONNX Runtime, batches of 16, {available_cores()} threads, "
            f"{platform.machine()}, decoding excluded"
        ),
        "load_average": None if load is None else round(load, 2),
    }


def describe_cost(cost: dict[str, Any] | None) -> str:
    """One line for ``info`` and the report: ``"0.39 G multiply-adds, 9.1 ms (110 img/s ...)"``."""
    if not cost:
        return "not recorded (bundle written before costs were)"
    macs = cost.get("multiply_adds_per_image") or 0
    load = cost.get("load_average")
    return (
        f"{macs / 1e9:.2f} G multiply-adds, {cost.get('ms_per_image', 0):.1f} ms per image "
        f"({cost.get('images_per_s', 0):.0f} img/s, {cost.get('measured_with', '')}"
        + (f", load {load:.1f}" if load is not None else "")
        + ")"
    )
