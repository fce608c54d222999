"""Fine-tuning: the bottleneck classifier, then the backbone's top blocks trained with it.

The tutorial's third step, with the lessons that make it work on little data: start from a good
head (the bottleneck recipe's cross-validated logistic regression, so the first gradients are
meaningful), unfreeze only the top blocks, keep every BatchNorm in inference mode (its
statistics from ImageNet are better than any from a few hundred images), use a low learning
rate with cosine decay, augment, and stop early on validation loss with the best weights kept.
The bottleneck model it started from is kept when no epoch beats it on validation loss and
accuracy both: a few mislabelled validation photos can make a better, more confident model's
log-loss worse, so loss alone would throw good fine-tuning away.

Why it fits in minutes on 2 cores: the frozen bottom of the network is the expensive part and
its output does not depend on the trainable weights. So each training image is augmented into a
few fixed *views* (the original plus random flips and mild affine transforms, the same fused
transform as everywhere else), the bottom runs ONCE per view with ONNX Runtime, and the epochs
train only the top blocks on those stored activations, each epoch drawing one view per image.
That is exactly what on-the-fly augmentation computes, restricted to ``views`` draws per image.

The result is one Keras model (backbone + Dense softmax, as :func:`build_classifier` makes it),
so the bundle and its ONNX contract are the same as for every recipe.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import numpy as np

from littlevision.errors import UserError
from littlevision.metrics import log_loss
from littlevision.models import get_backbone_spec
from littlevision.progress import NULL, Reporter
from littlevision.training import augment as aug
from littlevision.training.base import FitResult, Recipe
from littlevision.training.bottleneck import build_classifier, fit_linear_head
from littlevision.training.linear import softmax
from littlevision.training.registry import register_recipe
from littlevision.training.scratch import (
    AUGMENT_PRESETS,
    CURVES_FILE,
    data_fingerprint,
    decode_split,
    fit_epochs,
    plot_learning_curves,
    sample_weights_for,
)

__all__ = ["Finetune", "split_backbone"]

#: Stored activations beyond this many bytes reduce the number of views (RAM on a small machine;
#: TensorFlow's input pipeline holds a second copy). One view is always kept.
MAX_ACTIVATION_BYTES = 1536 * 1024**2


def split_backbone(base, unfreeze: int):
    """Cut a backbone before its last ``unfreeze`` MBConv blocks.

    Args:
        base: A backbone from :func:`littlevision.models.create_backbone` (blocks named
            ``block{i}_...``, pooled output).
        unfreeze: How many of the last blocks to train (the 1x1 head conv is always trained).

    Returns:
        ``(bottom, top, first_block)``: Keras models sharing ``base``'s layers, with
        ``top(bottom(x)) == base(x)``, and the index of the first trainable block.

    Raises:
        UserError: ``unfreeze`` is not between 1 and the number of blocks.
    """
    from littlevision._tf import quiet_keras

    keras = quiet_keras()
    blocks = sorted(
        {
            int(layer.name[5:].split("_")[0])
            for layer in base.layers
            if layer.name.startswith("block") and layer.name[5:].split("_")[0].isdigit()
        }
    )
    if not blocks:
        raise ValueError(f"Expected a backbone with 'block<i>_...' layers. Received: {base.name}")
    if not 1 <= unfreeze <= len(blocks):
        raise UserError(
            f"unfreeze must be between 1 and {len(blocks)} (the backbone's blocks). "
            f"Received: {unfreeze}."
        )
    first = blocks[-unfreeze]
    first_layer = next(layer for layer in base.layers if layer.name.startswith(f"block{first}_"))
    cut = first_layer.input
    bottom = keras.Model(base.input, cut, name=f"{base.name}_bottom")
    top = keras.Model(cut, base.output, name=f"{base.name}_top")
    return bottom, top, first


def _bottom_session(bottom, image_size: int, folder: Path):
    """The frozen bottom as an ONNX Runtime session (flattened output; reshaped by the caller)."""
    from littlevision._tf import quiet_keras
    from littlevision.inference import make_session
    from littlevision.models.onnx_export import export_onnx

    keras = quiet_keras()
    inputs = keras.Input((image_size, image_size, 3), name="pixels")
    flat = keras.Model(inputs, keras.layers.Flatten(name="flat")(bottom(inputs)))
    path = export_onnx(flat, folder / "bottom.onnx", image_size, output_name="activations")
    return make_session(path)


def _activations(
    session, images: np.ndarray, shape: tuple[int, ...], dtype, stage, batch_size: int = 32
) -> np.ndarray:
    out = np.empty((len(images), *shape), dtype)
    for start in range(0, len(images), batch_size):
        chunk = np.ascontiguousarray(images[start : start + batch_size])
        out[start : start + len(chunk)] = session.run(None, {"image": chunk})[0].reshape(
            (len(chunk), *shape)
        )
        stage.advance(len(chunk))
    return out


def _log_info(log) -> dict:
    """How the epochs went, for the card."""
    return {
        "epochs_run": log.epochs_run,
        "best_epoch": log.best_epoch,
        "stopped_early": log.stopped_early,
        "resumed_from": log.resumed_from,
        "seconds_per_epoch": log.seconds_per_epoch,
    }


def _start_is_better(start: dict, tuned: dict) -> bool:
    """Keep the bottleneck model only when it is better on validation loss AND at least as
    accurate: a few mislabelled validation photos can make a better, more confident model's
    log-loss worse, so loss alone would throw good fine-tuning away."""
    return (
        start["log_loss"] is not None
        and start["log_loss"] < tuned["log_loss"]
        and start["accuracy"] >= tuned["accuracy"]
    )


def _scores(probs: np.ndarray, y: np.ndarray) -> dict[str, float | None]:
    """Validation accuracy and log-loss (None without validation images)."""
    if len(y) == 0:
        return {"accuracy": None, "log_loss": None}
    return {
        "accuracy": float((probs.argmax(axis=1) == y).mean()),
        "log_loss": log_loss(y, probs),
    }


@register_recipe("finetune")
class Finetune(Recipe):
    """Bottleneck head first, then the backbone's top blocks fine-tuned with augmentation.

    Args:
        backbone: Registered backbone name.
        image_size: Input side. Default: the backbone's ``finetune_image_size`` (288 for
            ``lite0``, a larger input than the 224 it was pretrained at: on cats-vs-dogs, whose
            photos are ~400 px, it is worth a third fewer errors).
        epochs: The most epochs; early stopping usually ends sooner.
        batch_size: Examples per step.
        learning_rate: Peak Adam learning rate, decayed to 0 by a cosine over ``epochs``.
        unfreeze: How many of the backbone's last blocks to train (plus the head conv).
        views: Versions of each training image: the original plus ``views - 1`` augmented.
        augment: Augmentation of the extra views: ``"mild"`` (flip, rotation 10, shifts and
            zoom 0.1), ``"tutorial"``, ``"preview"`` or ``"none"`` (flips only then).
        dropout: Dropout on the pooled features while training (an identity at inference).
        patience: Stop after this many epochs without a lower validation loss.
        seed: Seeds the split of cross-validation, the views, the order and the weights.
        resume: Continue from the checkpoint in the run folder (``train --resume``).
    """

    def __init__(
        self,
        backbone: str = "lite0",
        image_size: int | None = None,
        epochs: int = 6,
        batch_size: int = 32,
        learning_rate: float = 5e-5,
        unfreeze: int = 5,
        views: int = 3,
        augment: str = "mild",
        dropout: float = 0.2,
        patience: int = 3,
        seed: int = 0,
        resume: bool = False,
    ):
        self.backbone = backbone
        self.image_size = image_size
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.unfreeze = unfreeze
        self.views = views
        self.augment = augment
        self.dropout = dropout
        self.patience = patience
        self.seed = seed
        self.resume = resume

    def _size(self) -> int:
        from littlevision.models import get_backbone_spec

        if self.image_size:
            return int(self.image_size)
        return int(get_backbone_spec(self.backbone).finetune_image_size)

    def _check(self) -> aug.AffineAugment:
        for name in ("epochs", "batch_size", "views", "patience"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise UserError(f"{name} must be a whole number >= 1. Received: {value}.")
        if self.augment not in AUGMENT_PRESETS:
            raise UserError(
                f"Unknown augmentation '{self.augment}'. Known: {', '.join(AUGMENT_PRESETS)}."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"dropout must be in [0, 1). Received: {self.dropout}.")
        config = AUGMENT_PRESETS[self.augment]
        return config if not config.is_identity else aug.AffineAugment(horizontal_flip=True)

    def _views_that_fit(self, n_train: int, shape: tuple, reporter: Reporter) -> int:
        """``views``, fewer when their float16 activations would pass MAX_ACTIVATION_BYTES."""
        per_view = n_train * math.prod(shape) * 2
        if self.views * per_view <= MAX_ACTIVATION_BYTES:
            return self.views
        views = max(1, MAX_ACTIVATION_BYTES // per_view)
        reporter.log(
            f"finetune: {n_train} images x {self.views} views would need "
            f"{self.views * per_view / 1e9:.1f} GB; using {views} view(s)"
        )
        return views

    def _frozen_activations(
        self, bottom, size: int, train_images, val_images, shape, views, config, reporter
    ) -> tuple[np.ndarray, np.ndarray]:
        """The frozen bottom's outputs, once per epoch of training: ``views`` versions of each
        training image (the first as it is, the others augmented) [V * N, *shape] float16, and
        the validation images' [N_val, *shape] float32."""
        n = len(train_images)
        with tempfile.TemporaryDirectory(prefix="lv-finetune-") as tmp:
            session = _bottom_session(bottom, size, Path(tmp))
            total = views * n + len(val_images)
            with reporter.stage(f"frozen layers x{views} views", total=total) as st:
                acts = np.empty((views * n, *shape), np.float16)
                for v in range(views):
                    images = (
                        train_images
                        if v == 0
                        else aug.augment_array(
                            train_images, seed=self.seed * 1000 + v, config=config
                        )
                    )
                    acts[v * n : (v + 1) * n] = _activations(session, images, shape, np.float16, st)
                val_acts = _activations(session, val_images, shape, np.float32, st)
            del session
        return acts, val_acts

    def _training_model(self, top, classifier, shape: tuple, n_steps: int):
        """The model trained: top blocks (BatchNorm frozen, so in inference mode) + the head."""
        from littlevision._tf import quiet_keras

        keras = quiet_keras()
        for layer in top.layers:
            layer.trainable = type(layer).__name__ not in ("BatchNormalization", "InputLayer")
        classifier.trainable = True
        inputs = keras.Input(shape, name="activations")
        x = top(inputs)
        if self.dropout:
            x = keras.layers.Dropout(self.dropout, name="head_dropout")(x)
        net = keras.Model(inputs, classifier(x), name="finetune_top")
        schedule = keras.optimizers.schedules.CosineDecay(self.learning_rate, self.epochs * n_steps)
        net.compile(
            optimizer=keras.optimizers.Adam(schedule),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return net

    def _train(
        self, net, acts, y, views, weights, n_steps, val_data, fingerprint, output, reporter
    ):
        """Train ``net`` on the frozen activations, one view per epoch; an :class:`EpochLog`."""

        def make_train(initial_epoch: int):
            return aug.training_dataset(
                acts,
                y,
                batch_size=self.batch_size,
                seed=self.seed,
                config=aug.NONE,
                epochs=self.epochs,
                views=views,
                initial_epoch=initial_epoch,
                sample_weights=weights,
            )

        return fit_epochs(
            net,
            make_train,
            n_steps,
            val_data,
            epochs=self.epochs,
            name="finetune",
            fingerprint=fingerprint,
            output=Path(output) if output is not None else None,
            resume=self.resume,
            reporter=reporter,
            patience=self.patience,
            restore_best=True,
            clear_when_done=True,
        )  # its cosine schedule fixes the epochs

    def _settings_info(self, first_block: int, views: int, config) -> dict:
        """The settings this run trained with, for the card."""
        return {
            "unfrozen_from_block": first_block,
            "unfreeze": self.unfreeze,
            "views": views,
            "augment": self.augment,
            "augment_ranges": config.to_dict(),
            "dropout": self.dropout,
            "optimizer": f"Adam(cosine from {self.learning_rate})",
            "epochs": self.epochs,
        }

    def _fingerprint(self, train, val, size: int, views: int) -> dict:
        """What a checkpoint must match to be resumed."""
        return data_fingerprint(
            train,
            val,
            recipe="finetune",
            backbone=self.backbone,
            image_size=size,
            unfreeze=self.unfreeze,
            views=views,
            augment=self.augment,
            dropout=self.dropout,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            epochs=self.epochs,
            patience=self.patience,
            seed=self.seed,
        )

    def _fit(self, train, val, reporter: Reporter = NULL, output=None) -> FitResult:
        from littlevision._tf import quiet_keras

        keras = quiet_keras()
        config = self._check()
        size = self._size()
        n_classes = len(train.classes)
        dim = get_backbone_spec(self.backbone).feature_dim
        t0 = time.perf_counter()
        tr, va = decode_split(train, val, size, reporter)
        if len(tr.ok_indices) == 0:
            raise UserError("None of the training images could be read.")
        y_tr, y_va = train.y[tr.ok_indices], val.y[va.ok_indices]
        t_decode = time.perf_counter() - t0

        # The full model, whose layers the training model shares; its head is set below.
        keras.utils.set_random_seed(int(self.seed))
        with reporter.stage("build backbone"):
            model = build_classifier(
                self.backbone,
                size,
                np.zeros((dim, n_classes), np.float32),
                np.zeros(n_classes, np.float32),
            )
            base = next(layer for layer in model.layers if hasattr(layer, "layers"))
            bottom, top, first_block = split_backbone(base, self.unfreeze)
        shape = tuple(int(d) for d in bottom.output.shape[1:])

        # Activations of the frozen bottom: `views` versions of each training image.
        views = self._views_that_fit(len(y_tr), shape, reporter)
        t1 = time.perf_counter()
        acts, val_acts = self._frozen_activations(
            bottom, size, tr.images, va.images, shape, views, config, reporter
        )
        t_acts = time.perf_counter() - t1

        # The bottleneck head, fitted on the original images' pooled features.
        with reporter.stage("fit bottleneck head"):
            feats = top.predict(aug.eval_dataset(acts[: len(y_tr)]), verbose=0)
            kernel, bias, head_info = fit_linear_head(feats, y_tr, n_classes, seed=self.seed)
            classifier = model.get_layer("classifier")
            classifier.set_weights([kernel, bias])
            val_feats = top.predict(aug.eval_dataset(val_acts), verbose=0)
            start_probs = softmax(val_feats @ kernel + bias)

        n_steps = aug.steps(len(y_tr), self.batch_size)
        net = self._training_model(top, classifier, shape, n_steps)
        weights, cw = sample_weights_for(y_tr, n_classes)
        if cw:
            reporter.log(
                "finetune: classes are imbalanced; weighting the loss by "
                + ", ".join(f"{train.classes[i]} x{w:.2f}" for i, w in cw.items())
            )
        val_data = aug.eval_dataset(val_acts, y_va, 64) if len(y_va) else None
        start_weights = net.get_weights()
        start = _scores(start_probs, y_va)

        fingerprint = self._fingerprint(train, val, size, views)
        log = self._train(
            net, acts, y_tr, views, weights, n_steps, val_data, fingerprint, output, reporter
        )
        t_train = time.perf_counter() - t1 - t_acts
        val_probs = (
            np.asarray(net.predict(aug.eval_dataset(val_acts), verbose=0), np.float32)
            if len(y_va)
            else np.zeros((0, n_classes), np.float32)
        )
        kept_start = _start_is_better(start, _scores(val_probs, y_va))
        if kept_start:
            net.set_weights(start_weights)
            val_probs = start_probs.astype(np.float32)
            reporter.log(
                "finetune: no epoch beat the bottleneck head on validation (loss "
                f"{start['log_loss']:.4f}, accuracy {100 * start['accuracy']:.2f}%); "
                "keeping the bottleneck model"
            )
        if output is not None:
            plot_learning_curves(
                log.history,
                Path(output) / CURVES_FILE,
                f"finetune: {self.backbone} blocks {first_block}+ ({size} px)",
            )
        for layer in model.layers:
            layer.trainable = False  # the saved model is for inference
        info = {
            **head_info,
            **self._settings_info(first_block, views, config),
            **_log_info(log),
            "class_weights": cw,
            "bottleneck_start": start,
            "kept_bottleneck": kept_start,
            "feature_dim": dim,
            "activation_shape": list(shape),
            "learning_curves": CURVES_FILE if output is not None and log.history else None,
        }
        return FitResult(
            model=model,
            image_size=size,
            val_probabilities=val_probs,
            val_indices=va.ok_indices,
            skipped=tr.failures + va.failures,
            history=log.history,
            timings={
                "decode_s": t_decode,
                "frozen_activations_s": t_acts,
                "train_s": t_train,
                "total_fit_s": time.perf_counter() - t0,
            },
            info=info,
        )
