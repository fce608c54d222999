"""Grad-CAM: which parts of an image made the model pick a class.

Grad-CAM (Selvaraju et al., 2017) weights each channel of the last convolutional feature map
``A`` [h, w, K] by the average gradient of the class score over it, sums the channels and keeps
the positive part: ``relu(sum_k mean_ij(d y_c / d A_ij^k) * A^k)``. Upsampled to the image, it
shows where the evidence for the class lies.

The class score ``y_c`` is the *centred logit* ``z_c - mean_k z_k``. Why not the logit itself:
a softmax is unchanged when a constant is added to every logit, so a logit alone is not
well-defined (the bottleneck recipe's binary head, for instance, gives class 0 a constant logit,
whose Grad-CAM would always be empty); centring removes that freedom. Why not the probability:
it saturates, so confident predictions would get vanishing gradients.

Cost: one forward pass plus a backward pass through the head only (gradients stop at the tapped
layer), batched; the gradient model is built and traced once per model and cached, so a service
can call :func:`gradcam_overlay` per request.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from littlevision._display import PictureDisplay
from littlevision.errors import UserError
from littlevision.explain import _imaging
from littlevision.explain._graph import (
    LayerInfo,
    as_keras_model,
    last_feature_layer,
    resolve_layers,
    trace,
)

__all__ = ["Explainer", "GradCAMResult", "get_explainer", "gradcam", "gradcam_overlay"]


@dataclass(repr=False)
class GradCAMResult(PictureDisplay):
    """Grad-CAM maps for a batch of images; in a notebook it shows the maps over the images.

    Attributes:
        heatmaps: [N, H, W] float32 in 0..1 (H = W = the model's input size, or the feature
            map's size when not upsampled); all zeros where no region supports the class.
        probabilities: [N, C] the model's probabilities for each image.
        class_indices: [N] the class each map explains.
        layer: Path of the feature-map layer used.
        images: [N, S, S, 3] uint8, the images as the model saw them (for display).
        labels: Class names, when the model has them.
    """

    heatmaps: np.ndarray
    probabilities: np.ndarray
    class_indices: np.ndarray
    layer: str
    images: np.ndarray | None = None
    labels: list[str] | None = None

    def _name(self, k: int) -> str:
        return self.labels[k] if self.labels and k < len(self.labels) else f"class {k}"

    def __repr__(self) -> str:
        n = len(self.heatmaps)
        shape = "x".join(str(s) for s in self.heatmaps.shape[1:])
        explained = ", ".join(self._name(int(k)) for k in self.class_indices[:5])
        more = ", ..." if n > 5 else ""
        return (
            f"GradCAMResult({n} image{'s' if n != 1 else ''}, {shape} maps from "
            f"'{self.layer}'{f'; explaining {explained}{more}' if n else ''})"
        )

    def _display_caption(self) -> str:
        return f"Grad-CAM from layer '{self.layer}' (bright: where the evidence for the class lies)"

    def _display_png(self, max_images: int = 12, columns: int = 4) -> bytes:
        """Each map over its image, titled with the class explained and its probability."""
        from matplotlib.figure import Figure

        n = min(len(self.heatmaps), max_images)
        cols = max(1, min(columns, n))
        rows = max(1, -(-n // cols))
        fig = Figure(figsize=(2.6 * cols, 2.8 * rows), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        for i, ax in enumerate(axes):
            ax.set_axis_off()
            if i >= n:
                continue
            heat = self.heatmaps[i]
            if self.images is not None:
                ax.imshow(_imaging.blend_heatmap(self.images[i], heat))
            else:
                ax.imshow(_imaging.colorize(heat))
            k = int(self.class_indices[i])
            probs = self.probabilities[i]
            title = f"{self._name(k)} {100 * float(probs[k]):.1f}%"
            top = int(np.argmax(probs))
            if top != k:
                title += f"\n(predicted {self._name(top)})"
            ax.set_title(title, fontsize=9)
        if len(self.heatmaps) > n:
            fig.suptitle(f"first {n} of {len(self.heatmaps)}", fontsize=9)
        return _imaging.figure_png(fig, dpi=80)


def _preferred_layer(bundle) -> str | None:
    """The backbone's documented last conv layer, for runs whose card names a backbone."""
    backbone = bundle.card.get("backbone") if bundle is not None else None
    if not backbone:
        return None
    try:
        from littlevision.models import get_backbone_spec

        return get_backbone_spec(backbone).last_conv_layer
    except (ImportError, KeyError, UserError, ValueError):
        return None


class Explainer:
    """Grad-CAM for one Keras classifier; build once, call many times.

    Args:
        model: A keras.Model taking float RGB 0..255 [N, S, S, 3] and returning probabilities,
            a :class:`~littlevision.bundle.Bundle`, or a run folder.
        layer: Feature-map layer to explain (name, ``outer/inner`` path); by default the
            backbone's documented last conv layer, else the last convolution-like 4-D output.
        labels: Class names (taken from the bundle when one is given).
        batch_size: Images per TensorFlow call (bounds memory).
    """

    def __init__(
        self,
        model,
        layer: str | None = None,
        labels: Sequence[str] | None = None,
        batch_size: int = 16,
    ):
        from littlevision._tf import quiet_keras

        keras = quiet_keras()
        import tensorflow as tf

        self.model, bundle = as_keras_model(model)
        self.labels = list(labels) if labels is not None else (bundle.labels if bundle else None)
        self.batch_size = int(batch_size)
        shape = tuple(self.model.inputs[0].shape[1:])
        if len(shape) != 3 or shape[0] is None or shape[0] != shape[1]:
            raise UserError(
                f"Expected a model with a square image input [S, S, 3]. Received: {shape}"
            )
        self.image_size = int(shape[0])
        t = trace(self.model, tap=None)
        self.layers_: list[LayerInfo] = t.layers
        self.layer_: LayerInfo = (
            resolve_layers(t.layers, [layer])[0]
            if layer is not None
            else last_feature_layer(t.layers, _preferred_layer(bundle))
        )
        self.n_classes = int(t.output.shape[-1])
        self._grad_model = keras.Model(
            t.input, [t.taps[self.layer_.path], t.logits, t.output], name="gradcam"
        )
        size = self.image_size
        spec = [tf.TensorSpec([None, size, size, 3], tf.float32), tf.TensorSpec([None], tf.int32)]
        self._fn = tf.function(self._cam, input_signature=spec, reduce_retracing=True)

    def _cam(self, x, class_index):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            acts, logits, probs = self._grad_model(x, training=False)
            centred = logits - tf.reduce_mean(logits, axis=1, keepdims=True)
            predicted = tf.argmax(probs, axis=1, output_type=tf.int32)
            chosen = tf.where(class_index < 0, predicted, class_index)
            score = tf.reduce_sum(tf.gather(centred, chosen, axis=1, batch_dims=1))
        grads = tape.gradient(score, acts)  # each image's score depends on its own map only
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * acts, axis=-1))
        return cam, probs, chosen

    # -- inputs ---------------------------------------------------------------------------
    def _prepare(self, images) -> np.ndarray:
        """uint8 [N, S, S, 3] from an array batch or a list of images of any size."""
        if isinstance(images, np.ndarray) and images.ndim == 4:
            batch = images
            if batch.shape[1:3] != (self.image_size, self.image_size):
                batch = np.stack(
                    [_imaging.resize_square(_to_uint8(im), self.image_size) for im in batch]
                )
        else:
            if isinstance(images, np.ndarray) and images.ndim == 3:
                images = [images]
            batch = (
                np.stack([_imaging.resize_square(_to_uint8(im), self.image_size) for im in images])
                if len(images)
                else np.zeros((0, self.image_size, self.image_size, 3), np.uint8)
            )
        if batch.ndim != 4 or batch.shape[-1] != 3:
            raise ValueError(f"Expected RGB images [N, H, W, 3]. Received: shape={batch.shape}")
        return _to_uint8(batch)

    def _class_indices(self, class_index, n: int) -> np.ndarray:
        if class_index is None:
            return np.full(n, -1, np.int32)
        values = (
            [class_index] * n
            if isinstance(class_index, (int, np.integer, str))
            else list(class_index)
        )
        if len(values) != n:
            raise ValueError(f"Expected one class per image ({n}). Received: {len(values)}")
        out = []
        for v in values:
            if v is None:
                out.append(-1)
                continue
            if isinstance(v, str):
                if not self.labels or v not in self.labels:
                    raise UserError(
                        f"Unknown class '{v}'. Known classes: {', '.join(self.labels or [])}."
                    )
                v = self.labels.index(v)
            if not 0 <= int(v) < self.n_classes:
                raise UserError(f"Class index must be in 0..{self.n_classes - 1}. Received: {v}.")
            out.append(int(v))
        return np.asarray(out, np.int32)

    # -- explanations ---------------------------------------------------------------------
    def gradcam(self, images, class_index=None, upsample: bool = True) -> GradCAMResult:
        """Grad-CAM maps for a batch.

        Args:
            images: uint8 RGB [N, S, S, 3], or a list of uint8 [H, W, 3] images of any size
                (each is resized whole to S x S, as for prediction).
            class_index: None for each image's predicted class, a class index or name for all
                images, or one per image.
            upsample: Return maps at the input size S x S (bilinear) instead of the feature
                map's own size (e.g. 7 x 7).

        Returns:
            A :class:`GradCAMResult`.
        """
        batch = self._prepare(images)
        wanted = self._class_indices(class_index, len(batch))
        cams, probs, chosen = [], [], []
        for start in range(0, len(batch), self.batch_size):
            x = batch[start : start + self.batch_size].astype(np.float32)
            c, p, k = self._fn(x, wanted[start : start + self.batch_size])
            cams.append(c.numpy())
            probs.append(p.numpy())
            chosen.append(k.numpy())
        if not cams:
            size = self.image_size if upsample else int(self.layer_.output_shape[0] or 0)
            return GradCAMResult(
                np.zeros((0, size, size), np.float32),
                np.zeros((0, self.n_classes), np.float32),
                np.zeros(0, np.int32),
                self.layer_.path,
            )
        cam = np.concatenate(cams)
        peak = cam.reshape(len(cam), -1).max(axis=1)[:, None, None]
        cam = np.where(peak > 1e-12, cam / np.maximum(peak, 1e-12), 0.0).astype(np.float32)
        if upsample:
            cam = np.stack([_imaging.resize_map(m, self.image_size, self.image_size) for m in cam])
            cam = np.clip(cam, 0.0, 1.0)
        return GradCAMResult(
            heatmaps=cam,
            probabilities=np.concatenate(probs).astype(np.float32),
            class_indices=np.concatenate(chosen),
            layer=self.layer_.path,
            images=batch,
            labels=self.labels,
        )

    def overlay(
        self,
        image: np.ndarray,
        heatmap: np.ndarray,
        alpha: float = 0.5,
        max_side: int | None = 512,
        cmap: str = "turbo",
    ) -> np.ndarray:
        """The heatmap blended over the (original-size, at most ``max_side``) image, uint8 RGB."""
        image = _imaging.fit_within(_to_uint8(image), max_side)
        return _imaging.blend_heatmap(image, heatmap, alpha=alpha, cmap=cmap)

    def gradcam_overlay(
        self,
        image_uint8: np.ndarray,
        class_index=None,
        *,
        alpha: float = 0.5,
        max_side: int | None = 512,
        cmap: str = "turbo",
    ) -> tuple[bytes, np.ndarray]:
        """One image's Grad-CAM drawn over it, as PNG bytes, and its class probabilities [C]."""
        image = _to_uint8(np.asarray(image_uint8))
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"Expected one RGB image [H, W, 3]. Received: shape={image.shape}")
        result = self.gradcam([image], class_index)
        overlay = self.overlay(image, result.heatmaps[0], alpha=alpha, max_side=max_side, cmap=cmap)
        return _imaging.encode(overlay, "PNG"), result.probabilities[0]


def _to_uint8(image) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    if np.issubdtype(image.dtype, np.floating):
        scale = 255.0 if image.size and float(np.nanmax(image)) <= 1.0 else 1.0
        return np.clip(image * scale + 0.5, 0, 255).astype(np.uint8)
    return np.clip(image, 0, 255).astype(np.uint8)


# -- a small cache, so a service pays the model build and tracing once ---------------------
_CACHE: OrderedDict[tuple, tuple[object, Explainer]] = OrderedDict()
_CACHE_SIZE = 4
_CACHE_LOCK = threading.Lock()


def _cache_key(model, layer: str | None) -> tuple:
    from littlevision.bundle import Bundle

    if isinstance(model, (str, os.PathLike)):
        model = Bundle.load(model)
    if isinstance(model, Bundle):  # by content: a copied or moved run reuses its explainer
        return ("run", model.version, tuple(model.labels), layer)
    return ("model", id(model), layer)


def get_explainer(model, layer: str | None = None) -> Explainer:
    """The cached :class:`Explainer` for a keras.Model, Bundle or run folder (built on first use)."""
    key = _cache_key(model, layer)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None and (key[0] == "run" or hit[0] is model):
            _CACHE.move_to_end(key)
            return hit[1]
        explainer = Explainer(model, layer=layer)
        _CACHE[key] = (model, explainer)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
        return explainer


def gradcam(
    model, images, class_index=None, *, layer: str | None = None, upsample: bool = True
) -> GradCAMResult:
    """Grad-CAM maps [N, H, W] in 0..1 for ``images``; see :meth:`Explainer.gradcam`."""
    return get_explainer(model, layer).gradcam(images, class_index, upsample=upsample)


def gradcam_overlay(
    model,
    image_uint8: np.ndarray,
    class_index=None,
    *,
    alpha: float = 0.5,
    max_side: int | None = 512,
    layer: str | None = None,
) -> tuple[bytes, np.ndarray]:
    """Grad-CAM of one image drawn over it: ``(overlay PNG bytes, probabilities [C])``.

    The entry point of the service's ``/v1/explain``: ``model`` is a keras.Model, a Bundle or a
    run folder; the explainer is built once per model and reused.

    Args:
        model: The classifier.
        image_uint8: One RGB image [H, W, 3] of any size (resized whole for the model; the
            overlay is drawn at the original size, at most ``max_side`` pixels).
        class_index: Class (index or name) to explain; the predicted class when None.
        alpha: Opacity of the heatmap at its hottest.
        max_side: Longest side of the returned overlay.
        layer: Feature-map layer (default: the last convolutional one).
    """
    return get_explainer(model, layer).gradcam_overlay(
        image_uint8, class_index, alpha=alpha, max_side=max_side
    )
