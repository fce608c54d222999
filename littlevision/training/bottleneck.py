"""The default recipe: frozen backbone features + a linear classifier chosen by cross-validation.

The tutorial's "bottleneck features" idea with a modern backbone: features are computed once
(and cached), a logistic regression whose regularisation is picked by cross-validated log-loss
is fitted on them, and the result is folded into ONE Keras model (backbone + Dense softmax) so it
is saved and exported whole.
"""

from __future__ import annotations

import time

import numpy as np

from littlevision.features import Embedder
from littlevision.progress import NULL, Reporter
from littlevision.training.base import FitResult, Recipe, class_weights
from littlevision.training.linear import softmax
from littlevision.training.registry import register_recipe


def fit_linear_head(
    features: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    seed: int = 0,
    cs: int = 9,
    balanced: bool | None = None,
    groups: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Fit a standardised logistic regression and fold it into Dense weights.

    Args:
        features: [N, D] backbone features.
        y: [N] class indices.
        n_classes: C (classes absent from ``y`` get a very low logit).
        seed: For the cross-validation folds.
        cs: How many regularisation strengths to try (log-spaced).
        balanced: Use balanced class weights; by default only when classes are imbalanced.
        groups: Rows with the same group (an image and its mirror) stay in the same fold, so
            cross-validation never scores an image whose twin was trained on.

    Returns:
        (kernel [D, C], bias [C], info) such that softmax(features @ kernel + bias) are the
        classifier's probabilities.
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
    from threadpoolctl import threadpool_limits

    from littlevision.training.linear import choose_c, fit_softmax

    present = np.unique(y)
    mu = features.mean(axis=0)
    sigma = features.std(axis=0) + 1e-6
    z = ((features - mu) / sigma).astype(np.float32)
    local = np.searchsorted(present, y)  # classes renumbered over those present
    weights = (
        class_weights(y, n_classes)
        if balanced is None
        else (class_weights(y, n_classes, threshold=1.0) if balanced else None)
    )
    sample_weight = None if not weights else np.array([weights[int(c)] for c in y], np.float32)
    images = slice(None) if groups is None else np.unique(groups, return_index=True)[1]
    n_images = len(y[images])
    min_count = np.bincount(y[images])[present].min()
    folds = int(min(5 if n_images <= 1000 else 3, min_count))
    grid = np.logspace(-4, 0, cs)
    if folds >= 2 and len(present) >= 2:
        if groups is None:
            cv = StratifiedKFold(folds, shuffle=True, random_state=seed).split(z, local)
        else:
            cv = StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(
                z, local, groups
            )
        chosen, _ = choose_c(z, local, len(present), list(cv), grid, sample_weight)
    else:  # too few images for cross-validation: a moderate default
        chosen = 0.01
    with threadpool_limits(1):
        fit = fit_softmax(z, local, len(present), chosen, sample_weight, max_iter=1000)
    full_coef = np.zeros((n_classes, features.shape[1]))
    full_bias = np.full(n_classes, -30.0)
    full_coef[present] = fit.kernel.T
    full_bias[present] = fit.bias
    kernel = (full_coef / sigma).T
    bias = full_bias - (mu / sigma) @ full_coef.T
    info = {"C": chosen, "cv_folds": folds, "class_weight": "balanced" if weights else None}
    return kernel.astype(np.float32), bias.astype(np.float32), info


def build_classifier(backbone: str, image_size: int, kernel: np.ndarray, bias: np.ndarray):
    """One Keras model: the frozen backbone + a Dense softmax head with the given weights."""
    from littlevision._tf import quiet_keras
    from littlevision.models import create_backbone

    keras = quiet_keras()
    base = create_backbone(
        backbone, input_shape=(image_size, image_size, 3), include_top=False, pooling="avg"
    )
    base.trainable = False
    inputs = keras.Input((image_size, image_size, 3), name="pixels")
    x = base(inputs, training=False)
    outputs = keras.layers.Dense(kernel.shape[1], activation="softmax", name="classifier")(x)
    model = keras.Model(inputs, outputs, name=f"{backbone}_bottleneck")
    model.get_layer("classifier").set_weights([kernel, bias])
    return model


@register_recipe("bottleneck")
class Bottleneck(Recipe):
    """Frozen backbone features + cross-validated logistic regression.

    Args:
        backbone: Registered backbone name.
        image_size: Input side; the backbone's default when None.
        flip_augment: Also train on left-right mirrored images' features. On cats-vs-dogs it
            lifts validation accuracy from 98.50% to 98.88% and lowers log-loss (0.047 to 0.045)
            for one extra embedding pass over the training set (docs/benchmarks.md).
        seed: Seed for the cross-validation folds.
        resume: Accepted for ``train --resume``, which passes it to every recipe; there is
            nothing to resume here: the embeddings are cached, so a re-run picks up where an
            interrupted one stopped.
        embed_precision: Backbone used to embed the training images: ``fp32`` (exact),
            ``int8`` or ``auto`` (int8 where the CPU has int8 instructions; see
            docs/precision.md for what it costs in accuracy and buys in time). The validation
            images are embedded with the exact backbone, so the metrics are the exact model's.
        fast_model: Also make the int8 model (int8 backbone calibrated on 64 training images
            + this head) and its validation probabilities, for the gate in ``train``; it needs
            one more pass over the validation images (cached like any embedding).
    """

    def __init__(
        self,
        backbone: str = "lite0",
        image_size: int | None = None,
        flip_augment: bool = True,
        seed: int = 0,
        resume: bool = False,
        embed_precision: str = "fp32",
        fast_model: bool = True,
    ):
        self.backbone = backbone
        self.image_size = image_size
        self.flip_augment = flip_augment
        self.seed = seed
        self.resume = resume
        self.embed_precision = embed_precision
        self.fast_model = fast_model

    def _fit(self, train, val, reporter: Reporter = NULL, output=None) -> FitResult:
        from littlevision.models.quantize import int8_supported, resolve_precision

        t0 = time.perf_counter()
        precision = resolve_precision(self.embed_precision)
        exact = Embedder(self.backbone, self.image_size)
        int8 = None
        t_int8 = 0.0  # calibrating the int8 backbone and embedding validation with it
        if precision == "int8" or (self.fast_model and int8_supported()):
            with reporter.stage("calibrate int8 backbone"):
                int8 = Embedder(self.backbone, self.image_size, precision="int8")
                int8.calibrate(train.paths)
            t_int8 = time.perf_counter() - t0
        embedder = int8 if precision == "int8" else exact
        size = embedder.image_size
        with reporter.stage(
            "embed train" + (" (and mirrored)" if self.flip_augment else ""), total=len(train)
        ) as st:
            if self.flip_augment:
                tr, fl = embedder.embed_paths_and_mirrors(train.paths, progress=st.advance)
            else:
                tr = embedder.embed_paths(train.paths, progress=st.advance)
        with reporter.stage("embed validation", total=len(val)) as st:
            va = exact.embed_paths(val.paths, progress=st.advance)
        va_fast = None
        if int8 is not None:
            t1 = time.perf_counter()
            with reporter.stage("embed validation (int8)", total=len(val)) as st:
                va_fast = int8.embed_paths(val.paths, progress=st.advance)
            t_int8 += time.perf_counter() - t1
        feats, y, groups = tr.features, train.y[tr.ok_indices], None
        if self.flip_augment:
            feats = np.concatenate([feats, fl.features])
            y = np.concatenate([y, train.y[fl.ok_indices]])
            groups = np.concatenate([tr.ok_indices, fl.ok_indices])
        t_embed = time.perf_counter() - t0
        with reporter.stage("fit classifier"):
            kernel, bias, info = fit_linear_head(
                feats, y, len(train.classes), seed=self.seed, groups=groups
            )
        val_probs = softmax(va.features @ kernel + bias)
        fast = None
        if va_fast is not None and np.array_equal(va_fast.ok_indices, va.ok_indices):
            fast = {
                "features_onnx": int8.onnx_path,
                "kernel": kernel,
                "bias": bias,
                "val_probabilities": softmax(va_fast.features @ kernel + bias),
            }
        t_fit = time.perf_counter() - t0 - t_embed
        with reporter.stage("build model"):
            model = build_classifier(self.backbone, size, kernel, bias)
        info.update(
            n_cached=tr.n_cached + va.n_cached,
            feature_dim=int(feats.shape[1]),
            embedding_precision=precision,
        )
        return FitResult(
            model=model,
            image_size=size,
            val_probabilities=val_probs,
            val_indices=va.ok_indices,
            skipped=tr.failures + va.failures,
            timings={
                "embed_s": t_embed,
                "int8_candidate_s": t_int8,  # included in embed_s
                "fit_s": t_fit,
                "build_s": time.perf_counter() - t0 - t_embed - t_fit,
            },
            info=info,
            fast=fast,
        )
