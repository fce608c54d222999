"""Filters: the first layer's kernels, and patterns that excite chosen filters or classes.

First-layer kernels act directly on RGB pixels, so they can be shown as tiny colour images
(mid-grey = 0, brighter/darker = positive/negative weight per channel). Deeper filters act on
other filters, so instead we *synthesise* an input that excites them: activation maximisation,
gradient ascent on the pixels (Erhan et al., 2009). Raw ascent produces high-frequency noise
that excites the unit but means nothing to a person; the usual regularisers make it readable
(Yosinski et al., 2015): random jitter of the image at each step, L2 decay towards grey and a
periodic Gaussian blur.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from littlevision.errors import UserError
from littlevision.explain import _imaging
from littlevision.explain._graph import LayerInfo, resolve_layers, trace
from littlevision.models.keras_graph import is_model

__all__ = [
    "AscentConfig",
    "default_filter_layer",
    "first_conv_layer",
    "first_layer_filters",
    "filters_grid",
    "maximize_activation",
    "maximize_class",
]


def _keras_model(model):
    from littlevision.explain._graph import as_keras_model

    return as_keras_model(model)[0]


def _leaf_layers(model) -> dict[str, object]:
    """Leaf layer objects by path, in call order."""
    out: dict[str, object] = {}

    def walk(m, prefix: str) -> None:
        for layer in m.layers:
            if hasattr(layer, "layers") and is_model(layer):
                walk(layer, f"{prefix}{layer.name}/")
            else:
                out[f"{prefix}{layer.name}"] = layer

    walk(model, "")
    return out


def first_conv_layer(model) -> LayerInfo:
    """The first Conv2D in call order: the one that looks at the RGB pixels.

    Raises:
        UserError: when the model has no Conv2D layer.
    """
    for info in trace(_keras_model(model)).layers:
        if info.class_name == "Conv2D":
            return info
    raise UserError("The model has no Conv2D layer, so it has no first-layer filters to show.")


def first_layer_filters(model) -> np.ndarray:
    """The first convolution's kernels as RGB images, [K, kh, kw, 3] float32 in 0..1.

    Each kernel is scaled by its own largest absolute weight, so 0.5 (grey) is a zero weight.
    Kernels that read more than 3 input channels show their first three.
    """
    keras_model = _keras_model(model)
    info = first_conv_layer(keras_model)
    layer = _leaf_layers(keras_model)[info.path]
    w = np.asarray(
        layer.kernel.numpy() if hasattr(layer.kernel, "numpy") else layer.kernel, np.float32
    )  # [kh, kw, in, K]
    w = w[:, :, :3] if w.shape[2] >= 3 else np.repeat(w[:, :, :1], 3, axis=2)
    w = np.moveaxis(w, -1, 0)  # [K, kh, kw, 3]
    scale = np.abs(w).reshape(len(w), -1).max(axis=1)[:, None, None, None]
    return (0.5 + 0.5 * w / np.maximum(scale, 1e-12)).astype(np.float32)


def filters_grid(model, tile: int = 36, columns: int = 16) -> np.ndarray:
    """The first layer's kernels as one uint8 RGB image (square pixels, ``tile`` px each)."""
    kernels = first_layer_filters(model)
    factor = max(1, tile // max(kernels.shape[1:3]))
    images = (_imaging.upscale_nearest(kernels, factor) * 255 + 0.5).astype(np.uint8)
    return _imaging.tile(images, columns=min(columns, len(images)), pad=3)


@dataclass(frozen=True)
class AscentConfig:
    """Settings of activation maximisation (defaults: readable in a few seconds on 2 cores).

    Attributes:
        steps: Gradient-ascent steps in all, shared among the octaves.
        octaves: Image sides as fractions of the final size, smallest first: ascent starts on a
            small image and is continued on enlarged copies, which gives large, smooth patterns
            instead of pixel noise, and makes most steps cheap.
        step_size: Pixel change per step (0..255 scale) for a gradient of unit RMS.
        jitter: Largest random shift in pixels applied before each step (undone after).
        decay: L2 decay towards mid-grey per step.
        blur_every: Blur the image every this many steps (0: never).
        blur_sigma: Gaussian blur width in pixels.
        size: Side of the synthesised image; the model's input size when None (and always for
            models whose head needs that size, such as Flatten + Dense).
        seed: For the starting noise and the jitter.
    """

    steps: int = 36
    octaves: tuple[float, ...] = (0.5, 0.75, 1.0)
    step_size: float = 6.0
    jitter: int = 6
    decay: float = 0.01
    blur_every: int = 0
    blur_sigma: float = 0.7
    size: int | None = 128
    decorrelate: bool = True
    grad_blur_sigma: float = 1.0
    seed: int = 0


# Square root of the colour covariance of natural images (RGB, from Lucid / Olah et al. 2017).
# Preconditioning the pixel gradient with C C^T moves pixels along the colour directions real
# photos vary in, instead of the saturated rainbow noise plain ascent produces.
_COLOUR_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)


def _colour_preconditioner() -> np.ndarray:
    p = _COLOUR_SQRT @ _COLOUR_SQRT.T
    p = p / np.linalg.eigvalsh(p).max()
    return (0.8 * p + 0.2 * np.eye(3)).astype(np.float32)  # a little pure colour stays possible


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(round(2 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    g /= g.sum()
    k2 = np.outer(g, g)
    return np.repeat(k2[:, :, None, None], 3, axis=2)  # [k, k, 3, 1] depthwise


def _blur(x, kernel):
    """Gaussian blur with mirrored borders (zero padding would darken the edges each time)."""
    import tensorflow as tf

    r = kernel.shape[0] // 2
    padded = tf.pad(x, [[0, 0], [r, r], [r, r], [0, 0]], mode="REFLECT")
    return tf.nn.depthwise_conv2d(padded, kernel, [1, 1, 1, 1], "VALID")


def _objective_model(keras_model, tap: str | None, size: int):
    """A model from pixels [N, size, size, 3] to the tapped layer's output (or the logits)."""
    from littlevision._tf import quiet_keras

    keras = quiet_keras()
    t = trace(keras_model, tap=[tap] if tap else (), input_shape=(size, size, 3), stop_after=tap)
    return keras.Model(t.input, t.taps[tap] if tap else t.logits)


def _sizes(final: int, octaves: Sequence[float]) -> list[int]:
    return [max(16, int(round(final * f))) for f in octaves] or [final]


def _ascend(
    keras_model, tap: str | None, targets: np.ndarray, sizes: Sequence[int], config: AscentConfig
) -> np.ndarray:
    """Gradient ascent on a batch of images, image i maximising target i.

    The target is channel ``targets[i]`` of layer ``tap`` (its mean activation) or, when
    ``tap`` is None, class ``targets[i]`` (its centred logit: evidence against the others).
    """
    import logging

    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    # Each octave traces its own step function on purpose (new size, new model); TensorFlow
    # would warn about "excessive retracing" on the shared code object.
    tf_logger.setLevel(logging.ERROR)
    try:
        return _ascend_quietly(keras_model, tap, targets, sizes, config)
    finally:
        tf_logger.setLevel(level)


def _ascend_quietly(
    keras_model, tap: str | None, targets: np.ndarray, sizes: Sequence[int], config: AscentConfig
) -> np.ndarray:
    import tensorflow as tf

    rng = np.random.default_rng(config.seed)
    n = len(targets)
    idx = tf.constant(targets, tf.int32)
    blur = tf.constant(_gaussian_kernel(config.blur_sigma))
    grad_blur = (
        tf.constant(_gaussian_kernel(config.grad_blur_sigma)) if config.grad_blur_sigma else None
    )
    colour = tf.constant(_colour_preconditioner())
    per_octave = max(1, config.steps // len(sizes))
    image = (128.0 + 8.0 * rng.standard_normal((n, sizes[0], sizes[0], 3))).astype(np.float32)
    for size in sizes:
        if image.shape[1] != size:
            image = tf.image.resize(image, (size, size), method="bicubic").numpy()
        model = _objective_model(keras_model, tap, size)
        x = tf.Variable(image)

        @tf.function(reduce_retracing=True)
        def step(shift, x=x, model=model):
            shifted = tf.roll(x, shift, axis=[1, 2])
            with tf.GradientTape() as tape:
                tape.watch(shifted)
                out = model(shifted, training=False)
                if tap is None:
                    out = out - tf.reduce_mean(out, axis=1, keepdims=True)
                    score = tf.gather(out, idx, axis=1, batch_dims=1)
                else:
                    chan = tf.gather(tf.transpose(out, [0, 3, 1, 2]), idx, axis=1, batch_dims=1)
                    score = tf.reduce_mean(chan, axis=[1, 2])
                total = tf.reduce_sum(score)
            g = tf.roll(tape.gradient(total, shifted), -shift, axis=[1, 2])
            if config.decorrelate:
                g = tf.tensordot(g, colour, axes=[[3], [0]])
            if grad_blur is not None:
                g = _blur(g, grad_blur)
            g = g / (tf.sqrt(tf.reduce_mean(tf.square(g), axis=[1, 2, 3], keepdims=True)) + 1e-8)
            x.assign(
                tf.clip_by_value(
                    128.0 + (x + config.step_size * g - 128.0) * (1.0 - config.decay), 0.0, 255.0
                )
            )
            return score

        for i in range(per_octave):
            jitter = min(config.jitter, size // 8)
            shift = rng.integers(-jitter, jitter + 1, size=2).astype(np.int32)
            step(tf.constant(shift))
            if config.blur_every and (i + 1) % config.blur_every == 0 and i + 1 < per_octave:
                x.assign(_blur(x, blur))
        image = x.numpy()
    return _display(image)


def _display(x: np.ndarray) -> np.ndarray:
    """Stretch each image's 1st..99th percentile to the full range, so its pattern is visible."""
    out = np.empty(x.shape, np.uint8)
    for i, img in enumerate(x):
        lo, hi = np.percentile(img, [1, 99])
        out[i] = np.clip((img - lo) / max(hi - lo, 1e-6) * 255 + 0.5, 0, 255).astype(np.uint8)
    return out


def _flexible_size(keras_model, tap: str | None, size: int) -> bool:
    """Whether the model (up to ``tap``) accepts images of another side than its own."""
    try:
        _objective_model(keras_model, tap, size)
        return True
    except Exception:  # Keras raises various errors for a shape a Dense cannot take
        return False


def default_filter_layer(model) -> LayerInfo:
    """A middle feature map: its filters respond to textures and parts, readable as images."""
    from littlevision.explain._feature_maps import default_layers

    picks = default_layers(trace(_keras_model(model)).layers)
    if not picks:
        raise UserError("The model has no convolutional feature map.")
    return picks[len(picks) // 2]


def maximize_activation(
    model,
    layer: str | int | None = None,
    filters: Sequence[int] = (0, 1, 2, 3),
    config: AscentConfig = AscentConfig(),
) -> np.ndarray:
    """Synthesise images that excite chosen filters (channels) of a layer.

    Args:
        model: A keras.Model, a Bundle or a run folder.
        layer: Layer name, path or index; a middle feature map by default.
        filters: Channel indices of that layer.
        config: Ascent settings.

    Returns:
        uint8 RGB images [len(filters), size, size, 3].
    """
    keras_model = _keras_model(model)
    info = (
        resolve_layers(trace(keras_model).layers, [layer])[0]
        if layer is not None
        else default_filter_layer(keras_model)
    )
    if len(info.output_shape) != 3:
        raise UserError(f"Layer '{info.path}' has no feature map (output {info.output_shape}).")
    channels = info.output_shape[-1]
    bad = [f for f in filters if not 0 <= int(f) < channels]
    if bad:
        raise UserError(
            f"Filter index must be in 0..{channels - 1} for '{info.path}'. Received: {bad[0]}."
        )
    size = config.size or int(keras_model.inputs[0].shape[1])
    sizes = _sizes(size, config.octaves)
    if not all(_flexible_size(keras_model, info.path, s) for s in set(sizes)):
        sizes = [int(keras_model.inputs[0].shape[1])]
    return _ascend(keras_model, info.path, np.asarray(filters, np.int32), sizes, config)


def maximize_class(
    model, classes: Sequence[int] | None = None, config: AscentConfig = AscentConfig(size=160)
) -> np.ndarray:
    """Synthesise one image per class that the model finds most typical of it.

    Args:
        model: A keras.Model, a Bundle or a run folder.
        classes: Class indices (all classes by default).
        config: Ascent settings. A model whose head needs its own input size (Flatten +
            Dense) is always optimised at that size.

    Returns:
        uint8 RGB images [len(classes), size, size, 3].
    """
    keras_model = _keras_model(model)
    t = trace(keras_model)
    n_classes = int(t.output.shape[-1])
    classes = list(range(n_classes)) if classes is None else [int(c) for c in classes]
    bad = [c for c in classes if not 0 <= c < n_classes]
    if bad:
        raise UserError(f"Class index must be in 0..{n_classes - 1}. Received: {bad[0]}.")
    size = config.size or int(keras_model.inputs[0].shape[1])
    sizes = _sizes(size, config.octaves)
    if not all(_flexible_size(keras_model, None, s) for s in set(sizes)):
        sizes = [int(keras_model.inputs[0].shape[1])]
    return _ascend(keras_model, None, np.asarray(classes, np.int32), sizes, config)
