"""Random affine augmentation as ONE fused transform per batch, fed by tf.data from decoded pixels.

Why not a chain of Keras random layers: on 2 CPU cores, ``RandomRotation`` + ``RandomZoom`` +
``RandomTranslation`` + ``RandomFlip`` each resample the whole batch, and a pipeline that decodes
JPEGs every epoch on top of that takes ~55 s per epoch for the tutorial's small convnet. Here the
images are decoded ONCE into a uint8 array, and each batch gets a single
``ImageProjectiveTransformV3`` whose per-image 3x3 matrix is the product of rotation, shift,
shear, zoom and flip: one bilinear resample, whatever the number of augmentations.

Augmentation lives in the input pipeline, not in the model, so the saved model and its ONNX
export contain no random layers: inference is untouched by construction.

Randomness is stateless and keyed by ``(seed, epoch, batch)``: the same seed gives the same
augmented batches, and a run resumed at epoch k sees exactly the batches it would have seen.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = [
    "MILD",
    "NONE",
    "TUTORIAL",
    "TUTORIAL_PREVIEW",
    "AffineAugment",
    "affine_matrices",
    "augment_array",
    "augment_batch",
    "eval_dataset",
    "training_dataset",
]

_FILL_MODES = ("nearest", "reflect", "constant", "wrap")


@dataclass(frozen=True)
class AffineAugment:
    """Ranges of the random affine transform, with ``ImageDataGenerator``'s meaning.

    Attributes:
        rotation: Degrees; the angle is uniform in ``[-rotation, rotation]``.
        width_shift: Fraction of the width; the shift is uniform in ``[-w, w] * width``.
        height_shift: Fraction of the height, likewise.
        shear: Shear angle in RADIANS, uniform in ``[-shear, shear]``. The tutorial (2016) ran on
            Keras 1, whose ``shear_range=0.2`` meant 0.2 rad (~11 degrees); later Keras versions
            read it as degrees, which makes it a no-op. We keep the tutorial's effect.
        zoom: Horizontal and vertical zoom factors, each uniform in ``[1 - zoom, 1 + zoom]``
            (independently, as in ``ImageDataGenerator``; > 1 zooms out).
        horizontal_flip: Mirror left-right with probability 1/2.
        fill_mode: How pixels outside the source are filled: ``nearest`` (Keras' default),
            ``reflect``, ``constant`` (black) or ``wrap``.
    """

    rotation: float = 0.0
    width_shift: float = 0.0
    height_shift: float = 0.0
    shear: float = 0.0
    zoom: float = 0.0
    horizontal_flip: bool = False
    fill_mode: str = "nearest"

    def __post_init__(self) -> None:
        for name in ("rotation", "width_shift", "height_shift", "shear", "zoom"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"Expected {name} >= 0. Received: {name}={value!r}")
        if self.zoom >= 1:
            raise ValueError(f"Expected zoom < 1. Received: zoom={self.zoom}")
        if self.fill_mode not in _FILL_MODES:
            raise ValueError(f"Expected fill_mode in {_FILL_MODES}. Received: {self.fill_mode!r}")

    @property
    def is_identity(self) -> bool:
        """True when no image would ever change."""
        return not (
            self.rotation
            or self.width_shift
            or self.height_shift
            or self.shear
            or self.zoom
            or self.horizontal_flip
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: No augmentation.
NONE = AffineAugment()
#: The tutorial's training generator: shear 0.2, zoom 0.2, horizontal flip (rescale is in the model).
TUTORIAL = AffineAugment(shear=0.2, zoom=0.2, horizontal_flip=True)
#: The tutorial's preview generator: adds rotation 40 degrees and shifts of 0.2.
TUTORIAL_PREVIEW = AffineAugment(
    rotation=40.0, width_shift=0.2, height_shift=0.2, shear=0.2, zoom=0.2, horizontal_flip=True
)
#: For fine-tuning a pretrained backbone: flips and small moves that keep the object whole.
MILD = AffineAugment(
    rotation=10.0, width_shift=0.1, height_shift=0.1, zoom=0.1, horizontal_flip=True
)


def _tf():
    from littlevision._tf import quiet_keras

    quiet_keras()  # silences TensorFlow's start-up logs before it is imported
    import tensorflow as tf

    return tf


def affine_matrices(seed, batch: int, height: int, width: int, config: AffineAugment):
    """Per-image projective transforms ``[B, 8]`` for ``ImageProjectiveTransformV3``.

    Each maps an OUTPUT pixel ``(x, y)`` to the INPUT point it samples, composed like Keras 1's
    ``ImageDataGenerator.random_transform``: ``rotation @ shift @ shear @ zoom`` about the image
    centre, then the flip.

    Args:
        seed: Shape ``[2]`` integer tensor; the same seed gives the same matrices.
        batch: B, the number of images.
        height: H.
        width: W.
        config: The ranges.

    Returns:
        A float32 tensor ``[B, 8]``.
    """
    tf = _tf()
    seed = tf.cast(seed, tf.int64)
    u = tf.random.stateless_uniform([batch, 7], seed=seed, minval=-1.0, maxval=1.0)
    theta = u[:, 0] * (config.rotation * math.pi / 180.0)
    # Rows and columns, as in Keras 1: tx moves rows (height), ty moves columns (width).
    tx = u[:, 1] * (config.height_shift * height)
    ty = u[:, 2] * (config.width_shift * width)
    shear = u[:, 3] * config.shear
    zx = 1.0 + u[:, 4] * config.zoom
    zy = 1.0 + u[:, 5] * config.zoom
    flip = (u[:, 6] > 0.0) if config.horizontal_flip else tf.zeros([batch], tf.bool)
    cos, sin = tf.cos(theta), tf.sin(theta)
    cs, ss = tf.cos(shear), tf.sin(shear)
    # M = rotation @ translation @ shear @ zoom, in (row, col) coordinates; closed form.
    m00 = cos * zx
    m01 = (-cos * ss - sin * cs) * zy
    m02 = cos * tx - sin * ty
    m10 = sin * zx
    m11 = (-sin * ss + cos * cs) * zy
    m12 = sin * tx + cos * ty
    # About the centre: M' = T(c) @ M @ T(-c).
    cr, cc = (height - 1) / 2.0, (width - 1) / 2.0
    m02 = m02 + cr - m00 * cr - m01 * cc
    m12 = m12 + cc - m10 * cr - m11 * cc
    # Flip after the transform: output column c reads transformed column (W - 1 - c).
    sign = tf.where(flip, -1.0, 1.0)
    shift = tf.where(flip, float(width - 1), 0.0)
    m02 = m02 + m01 * shift
    m12 = m12 + m11 * shift
    m01 = m01 * sign
    m11 = m11 * sign
    # (row, col) -> (x = col, y = row): x_in = m11 x + m10 y + m12 ; y_in = m01 x + m00 y + m02.
    zeros = tf.zeros_like(m00)
    return tf.stack([m11, m10, m12, m01, m00, m02, zeros, zeros], axis=1)


def augment_batch(images, seed, config: AffineAugment):
    """One random affine transform per image, as ONE resampling op for the batch.

    Args:
        images: ``[B, H, W, 3]`` uint8 or float pixels (0..255).
        seed: Shape ``[2]`` integer tensor.
        config: The ranges; an identity config only casts.

    Returns:
        float32 ``[B, H, W, 3]`` pixels in 0..255.
    """
    tf = _tf()
    images = tf.cast(images, tf.float32)
    if config.is_identity:
        return images
    shape = tf.shape(images)
    height, width = int(images.shape[1]), int(images.shape[2])
    transforms = affine_matrices(seed, shape[0], height, width, config)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.stack([height, width]),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode=config.fill_mode.upper(),
    )


def _seed_pair(seed: int, counter):
    tf = _tf()
    return tf.stack([tf.constant(int(seed), tf.int64), tf.cast(counter, tf.int64)])


def training_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int,
    seed: int,
    config: AffineAugment,
    epochs: int,
    initial_epoch: int = 0,
    sample_weights: np.ndarray | None = None,
    views: int = 1,
):
    """Shuffled, augmented batches for epochs ``initial_epoch .. epochs - 1``, in one dataset.

    Epoch e's order and augmentation depend only on ``(seed, e)``, so resuming at epoch k gives
    the same batches as an uninterrupted run. Give Keras ``steps_per_epoch=steps(n, batch_size)``.

    Args:
        images: ``[N, H, W, C]`` decoded pixels (uint8) or cached activations (float); spatial
            augmentation applies to 3-channel images only.
        labels: ``[N]`` class indices.
        batch_size: Images per batch (the last batch of an epoch may be smaller).
        seed: Seeds shuffling and augmentation.
        config: Augmentation ranges (``NONE`` for none).
        epochs: Epoch count to end at (exclusive).
        initial_epoch: Epoch to start from (resume).
        sample_weights: Optional ``[N]`` per-sample loss weights (class weights).
        views: ``images`` holds this many precomputed versions of each example, view-major
            (``[views * N, ...]``: all of view 0, then all of view 1...); each epoch draws one
            view per example at random.

    Returns:
        A ``tf.data.Dataset`` of ``(x float32, y int32[, w float32])`` batches.
    """
    tf = _tf()
    n = len(labels)
    if n == 0:
        raise ValueError("Expected at least one training image. Received: 0")
    if views < 1 or len(images) != views * n:
        raise ValueError(
            f"Expected {views} views of {n} examples ({views * n} rows). "
            f"Received: {len(images)} rows"
        )
    n_steps = steps(n, batch_size)
    data = tf.constant(images)
    y = tf.constant(np.asarray(labels, np.int32))
    w = None if sample_weights is None else tf.constant(np.asarray(sample_weights, np.float32))
    spatial = images.ndim == 4 and images.shape[-1] == 3 and not config.is_identity

    @tf.autograph.experimental.do_not_convert
    def epoch_batches(epoch):
        order = tf.random.experimental.stateless_shuffle(tf.range(n), seed=_seed_pair(seed, epoch))
        if views > 1:
            pick = tf.random.stateless_uniform(
                [n], seed=_seed_pair(seed + 2, epoch), minval=0, maxval=views, dtype=tf.int32
            )
            order = tf.gather(pick, order) * n + order
        batches = tf.data.Dataset.from_tensor_slices(order).batch(batch_size).enumerate()
        return batches.map(lambda b, idx: (epoch * n_steps + b, idx))

    @tf.autograph.experimental.do_not_convert
    def load(counter, idx):
        x = tf.gather(data, idx)
        x = (
            augment_batch(x, _seed_pair(seed + 1, counter), config)
            if spatial
            else tf.cast(x, tf.float32)
        )
        example = idx % n
        out = (x, tf.gather(y, example))
        return out + (tf.gather(w, example),) if w is not None else out

    ds = tf.data.Dataset.range(initial_epoch, epochs).flat_map(epoch_batches)
    return ds.map(load, num_parallel_calls=1, deterministic=True).prefetch(2)


def eval_dataset(images: np.ndarray, labels: np.ndarray | None = None, batch_size: int = 64):
    """Unaugmented float batches, in order (validation, prediction)."""
    tf = _tf()
    parts = (images,) if labels is None else (images, np.asarray(labels, np.int32))
    ds = tf.data.Dataset.from_tensor_slices(parts).batch(batch_size)
    cast = (
        (lambda x: tf.cast(x, tf.float32))
        if labels is None
        else (lambda x, y: (tf.cast(x, tf.float32), y))
    )
    return ds.map(tf.autograph.experimental.do_not_convert(cast)).prefetch(2)


def augment_array(
    images: np.ndarray, seed: int, config: AffineAugment, batch_size: int = 64
) -> np.ndarray:
    """Augmented copies of uint8 images (one random transform each), as uint8 ``[N, H, W, 3]``.

    For recipes that augment once and reuse the result (fine-tuning on cached activations).
    """
    tf = _tf()
    out = np.empty_like(images)
    for b, start in enumerate(range(0, len(images), batch_size)):
        chunk = images[start : start + batch_size]
        x = augment_batch(tf.constant(chunk), _seed_pair(seed, b), config)
        out[start : start + len(chunk)] = np.clip(np.rint(x.numpy()), 0, 255).astype(np.uint8)
    return out


def steps(n: int, batch_size: int) -> int:
    """Batches per epoch for ``n`` images."""
    return max(1, math.ceil(n / batch_size))
