"""Feature maps: what chosen layers of the convnet compute for one image.

Early layers respond to edges and colours at full detail; later ones to parts and textures on a
coarser grid. Showing a few channels of an early, a middle and a late layer side by side makes
that visible on the user's own model and photo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from littlevision._display import PictureDisplay
from littlevision.explain import _imaging
from littlevision.explain._graph import LayerInfo, resolve_layers, trace

__all__ = [
    "FeatureMap",
    "FeatureMaps",
    "default_layers",
    "feature_maps",
    "feature_maps_figure",
    "feature_maps_png",
]


@dataclass(repr=False)
class FeatureMap(PictureDisplay):
    """One layer's activations for one image; in a notebook it shows its strongest channels.

    Attributes:
        layer: The layer (name, path, class, output shape).
        activations: [h, w, K] float32, as the layer outputs them.
    """

    layer: LayerInfo
    activations: np.ndarray

    def __repr__(self) -> str:
        shape = "x".join(str(s) for s in self.activations.shape)
        return (
            f"FeatureMap(#{self.layer.index} {self.layer.path}, {self.layer.class_name}, {shape})"
        )

    def _display_caption(self) -> str:
        return f"Feature map of layer #{self.layer.index} {self.layer.path}"

    def strongest(self, k: int) -> np.ndarray:
        """Indices of the ``k`` channels with the largest mean activation, strongest first."""
        means = self.activations.reshape(-1, self.activations.shape[-1]).mean(axis=0)
        return np.argsort(-means, kind="stable")[:k]

    def _display_png(self) -> bytes:
        return _imaging.figure_png(feature_maps_figure([self]))


class FeatureMaps(list, PictureDisplay):
    """What :func:`feature_maps` returns: a list of :class:`FeatureMap` that remembers its image,
    so a notebook shows the image and each layer's strongest channels."""

    def __init__(self, maps=(), image: np.ndarray | None = None):
        super().__init__(maps)
        self.image = image

    def __repr__(self) -> str:
        return f"FeatureMaps([{', '.join(repr(m) for m in self)}])"

    def _display_caption(self) -> str:
        return (
            f"Feature maps of {len(self)} layer{'s' if len(self) != 1 else ''}: each channel "
            "scaled to its own range (dark: quiet, yellow: active)"
        )

    def _display_png(self) -> bytes:
        return _imaging.figure_png(feature_maps_figure(self, self.image))


def default_layers(layers: Sequence[LayerInfo]) -> list[LayerInfo]:
    """Early, middle and late feature maps: the first, middle and last convolution-like layer.

    Activation outputs are preferred where there are any (a ReLU's map is what the next layer
    sees), else any convolution-like output.
    """
    maps = [info for info in layers if info.is_feature_map]
    activated = [
        info
        for info in maps
        if info.class_name in ("Activation", "ReLU", "LeakyReLU", "ELU", "PReLU")
        or (info.class_name.startswith("Conv") and "relu" in info.name.lower())
    ]
    pool = activated if len(activated) >= 3 else maps
    if not pool:
        return []
    picks = [pool[0], pool[len(pool) // 2], pool[-1]]
    return list(dict.fromkeys(picks))  # drop duplicates, keep order


def _model_and_image(model, image):
    from littlevision.explain._gradcam import _to_uint8
    from littlevision.explain._graph import as_keras_model

    keras_model, _ = as_keras_model(model)
    size = int(keras_model.inputs[0].shape[1])
    img = _imaging.resize_square(_to_uint8(np.asarray(image)), size)
    return keras_model, img


def feature_maps(
    model, image: np.ndarray, layers: Sequence[str | int] | None = None
) -> FeatureMaps:
    """Activations of ``layers`` for one image.

    Args:
        model: A keras.Model, a Bundle or a run folder.
        image: uint8 RGB [H, W, 3] (resized whole to the model's input size).
        layers: Layer names, ``outer/inner`` paths or indices in call order (negative from the
            end; see :func:`littlevision.explain.list_layers`); early/middle/late by default.

    Returns:
        One :class:`FeatureMap` per layer, in the order asked for, as a :class:`FeatureMaps`
        list (which also keeps the resized image, to show it beside the maps).
    """
    from littlevision._tf import quiet_keras

    keras = quiet_keras()
    keras_model, img = _model_and_image(model, image)
    t = trace(keras_model, tap=None)
    chosen = resolve_layers(t.layers, layers) if layers else default_layers(t.layers)
    if not chosen:
        return FeatureMaps([], img)
    probe = keras.Model(t.input, [t.taps[info.path] for info in chosen])
    outs = probe(img[None].astype(np.float32), training=False)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return FeatureMaps(
        [
            FeatureMap(info, np.asarray(out)[0].astype(np.float32))
            for info, out in zip(chosen, outs, strict=True)
        ],
        img,
    )


def _channel_tiles(fm: FeatureMap, max_channels: int, tile: int) -> np.ndarray:
    acts = fm.activations
    if acts.ndim != 3:  # a vector (pooled features, class scores): one strip, a cell per unit
        strip = _imaging.colorize(_imaging.normalize01(acts.ravel())[None, :], "viridis")
        cell = max(1, min(tile, 1024 // strip.shape[1]))
        return np.repeat(np.repeat(strip, cell, axis=1), max(cell, 16), axis=0)
    idx = fm.strongest(max_channels)
    chans = _imaging.normalize01(np.moveaxis(acts[..., idx], -1, 0), axis=(1, 2))
    coloured = np.stack([_imaging.colorize(c, "viridis") for c in chans])
    factor = max(1, tile // max(coloured.shape[1:3]))
    return _imaging.tile(_imaging.upscale_nearest(coloured, factor), columns=min(8, len(coloured)))


def feature_maps_figure(
    maps: Sequence[FeatureMap],
    image: np.ndarray | None = None,
    max_channels: int = 16,
    tile: int = 64,
):
    """A matplotlib Figure: the image, then each layer's strongest channels as a grid.

    Each channel is scaled to its own 0..1 range (viridis: dark = quiet, yellow = active).
    """
    from matplotlib.figure import Figure

    rows = len(maps) + (image is not None)
    fig = Figure(figsize=(9, 2.6 * rows), layout="constrained")
    axes = fig.subplots(rows, 1, squeeze=False)[:, 0]
    if image is not None:
        axes[0].imshow(image)
        axes[0].set_title("input", fontsize=10)
    for ax, fm in zip(axes[rows - len(maps) :], maps, strict=True):
        ax.imshow(_channel_tiles(fm, max_channels, tile), interpolation="nearest")
        shape = "x".join(str(s) for s in fm.activations.shape)
        shown = min(max_channels, fm.activations.shape[-1])
        ax.set_title(
            f"#{fm.layer.index} {fm.layer.path}  ({fm.layer.class_name}, {shape}): "
            f"{shown} most active channels",
            fontsize=9,
        )
    for ax in axes:
        ax.set_axis_off()
    return fig


def feature_maps_png(
    model, image: np.ndarray, layers: Sequence[str | int] | None = None, max_channels: int = 16
) -> bytes:
    """:func:`feature_maps` drawn by :func:`feature_maps_figure`, as PNG bytes."""
    keras_model, img = _model_and_image(model, image)
    maps = feature_maps(keras_model, img, layers)
    return _imaging.figure_png(feature_maps_figure(maps, img, max_channels=max_channels))
