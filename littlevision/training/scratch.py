"""The tutorial's small convnet, trained from scratch with its augmentation — fast on 2 cores.

"Building powerful image classification models using very little data" (Keras blog, 2016)
starts with three 3x3 conv blocks (32, 32, 64 filters, ReLU, 2x2 max-pool), Dense 64, dropout
0.5 and a sigmoid, trained with RMSprop in batches of 16 for 50 epochs on 150x150 images
augmented by ``ImageDataGenerator(rescale=1/255, shear_range=0.2, zoom_range=0.2,
horizontal_flip=True)``: about 80% on 1000 cats and 1000 dogs. This recipe is that model, with a
softmax over C classes (the same thing as the sigmoid for two), so users see what a model that
knows nothing about images can learn from their data.

What makes it fast: every image is decoded ONCE at 150x150 into a uint8 array, and tf.data
feeds shuffled batches through one fused random affine transform each
(:mod:`littlevision.training.augment`) while the previous batch trains. The rescale is the
model's first layer, so the model takes float RGB 0..255 like every littlevision model and
exports to ONNX unchanged.

The epoch loop shared by the recipes that train by epochs lives here too (:func:`fit_epochs`):
a checkpoint each epoch, resume, early stopping, progress with ETA and learning curves.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from littlevision._io import write_bytes, write_json
from littlevision.errors import UserError
from littlevision.progress import NULL, Reporter, format_duration
from littlevision.training import augment as aug
from littlevision.training.base import FitResult, Recipe, class_weights
from littlevision.training.registry import register_recipe

__all__ = [
    "CHECKPOINT_DIR",
    "AUGMENT_PRESETS",
    "EpochLog",
    "Scratch",
    "data_fingerprint",
    "fit_epochs",
    "plot_learning_curves",
    "tutorial_convnet",
]

#: Sub-folder of the run folder holding the per-epoch checkpoint.
CHECKPOINT_DIR = "checkpoint"
CURVES_FILE = "learning_curves.png"
AUGMENT_PRESETS: dict[str, aug.AffineAugment] = {
    "tutorial": aug.TUTORIAL,
    "preview": aug.TUTORIAL_PREVIEW,
    "mild": aug.MILD,
    "none": aug.NONE,
}


def tutorial_convnet(n_classes: int, image_size: int = 150, seed: int | None = None):
    """The tutorial's model, layer for layer, with a softmax over ``n_classes``.

    Args:
        n_classes: C >= 2.
        image_size: Input side (the tutorial's 150).
        seed: Seeds the weight initialisation (Keras' global seed) when given.

    Returns:
        A ``keras.Sequential`` named ``tutorial_convnet``: float RGB 0..255 ``[N, S, S, 3]`` ->
        probabilities ``[N, C]``. The rescale to 0..1 is its first layer.
    """
    from littlevision._tf import quiet_keras

    keras = quiet_keras()
    if n_classes < 2:
        raise ValueError(f"Expected n_classes >= 2. Received: n_classes={n_classes}")
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    L = keras.layers
    layers = [
        keras.Input((image_size, image_size, 3), name="pixels"),
        L.Rescaling(1.0 / 255, name="rescale"),
    ]
    for i, filters in enumerate((32, 32, 64), start=1):
        layers += [
            L.Conv2D(filters, (3, 3), name=f"conv{i}"),
            L.Activation("relu", name=f"conv{i}_relu"),
            L.MaxPooling2D((2, 2), name=f"pool{i}"),
        ]
    layers += [
        L.Flatten(name="flatten"),
        L.Dense(64, name="dense"),
        L.Activation("relu", name="dense_relu"),
        L.Dropout(0.5, name="dropout"),
        L.Dense(n_classes, name="logits"),
        L.Activation("softmax", name="softmax"),
    ]
    return keras.Sequential(layers, name="tutorial_convnet")


# --------------------------------------------------------------------------------------------
# The epoch loop shared by scratch and finetune.


@dataclass
class EpochLog:
    """What :func:`fit_epochs` did."""

    history: dict[str, list[float]] = field(default_factory=dict)
    epochs_run: int = 0  # epochs completed in total, including before a resume
    resumed_from: int | None = None  # epoch the run continued from, if it resumed
    best_epoch: int | None = None  # 1-based epoch whose weights were kept (early stopping)
    stopped_early: bool = False
    seconds_per_epoch: float | None = None  # mean over the epochs run in this process


def data_fingerprint(train, val, **settings: Any) -> dict[str, Any]:
    """What must match for a checkpoint to be resumed: the split, the classes and the settings."""

    def digest(ds) -> str:
        h = hashlib.sha256()
        for item in ds:
            h.update(f"{Path(item.path).name}\t{item.label}\n".encode())
        return h.hexdigest()[:16]

    return {
        "classes": list(train.classes),
        "train": digest(train),
        "validation": digest(val),
        **{k: v for k, v in settings.items()},
    }


@contextlib.contextmanager
def _no_interrupt():
    """Hold Ctrl-C while a checkpoint is written, then deliver it: never a half checkpoint."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[Any] = []
    previous = signal.signal(signal.SIGINT, lambda *a: caught.append(a))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            raise KeyboardInterrupt


class _Checkpoint:
    """``RUN/checkpoint/``: ``state.json`` names the weights file of the last finished epoch.

    Weights (with the optimizer's state) go to a new file first and ``state.json`` is replaced
    after it, so whatever moment the process dies, state.json points at complete files.
    """

    def __init__(self, folder: Path | None):
        self.folder = folder

    def load_state(self) -> dict[str, Any] | None:
        if self.folder is None or not (self.folder / "state.json").is_file():
            return None
        try:
            state = json.loads((self.folder / "state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        files = [state.get("weights"), state.get("best_weights")]
        if not all((self.folder / f).is_file() for f in files if f) or not state.get("weights"):
            return None
        return state

    def save(self, model, state: dict[str, Any], best: bool) -> None:
        """Write this epoch's weights (and, when ``best``, a copy as the best so far)."""
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        with _no_interrupt():
            epoch = state["epoch"]
            state["weights"] = f"epoch-{epoch:04d}.weights.h5"
            model.save_weights(self.folder / state["weights"])
            if best:
                state["best_weights"] = f"best-{epoch:04d}.weights.h5"
                shutil.copyfile(self.folder / state["weights"], self.folder / state["best_weights"])
            write_json(self.folder / "state.json", state)
            keep = {state["weights"], state.get("best_weights")}
            for old in self.folder.glob("*.weights.h5"):
                if old.name not in keep:
                    old.unlink(missing_ok=True)

    def clear(self) -> None:
        if self.folder is not None and self.folder.is_dir():
            shutil.rmtree(self.folder, ignore_errors=True)


def _reseed(model, epoch: int) -> None:
    """Key dropout's random stream to the epoch, so a resumed run draws what it would have drawn.

    Keras' seed generators are not saved with the weights; their state is ``[seed, counter]``
    and the counter is all that moves, so setting it to a function of the epoch is enough.
    """
    for v in model.non_trainable_variables:
        if v.path.endswith("seed_generator_state"):
            current = np.asarray(v.numpy())
            v.assign(np.array([current[0], (epoch * 1_000_003) % 2**31], dtype=current.dtype))


def fit_epochs(
    model,
    make_train: Callable[[int], Any],
    steps_per_epoch: int,
    val_data,
    *,
    epochs: int,
    name: str,
    fingerprint: dict[str, Any],
    output: Path | None = None,
    resume: bool = False,
    reporter: Reporter = NULL,
    patience: int | None = None,
    restore_best: bool = False,
    clear_when_done: bool = False,
) -> EpochLog:
    """Train a compiled Keras model epoch by epoch, with a checkpoint after each.

    Args:
        model: A compiled Keras model (the optimizer's state is checkpointed too).
        make_train: ``initial_epoch -> tf.data.Dataset`` of the batches of the remaining epochs.
        steps_per_epoch: Batches per epoch.
        val_data: Validation ``tf.data.Dataset`` evaluated after each epoch.
        epochs: Total epochs.
        name: Shown in progress ("scratch", "finetune").
        fingerprint: Data and settings the checkpoint must match to be resumed.
        output: The run folder; the checkpoint goes to ``output/checkpoint``. None: no checkpoint.
        resume: Continue from the checkpoint in ``output`` when there is one.
        reporter: Receives a stage advanced once per epoch (with ETA) and a line per epoch.
        patience: Early stopping: stop after this many epochs without a lower validation loss.
        restore_best: End with the weights of the epoch of lowest validation loss.
        clear_when_done: Delete the checkpoint once training ends normally (for recipes whose
            runs cannot be extended, whose checkpoints would only weigh down the bundle).

    Returns:
        An :class:`EpochLog`.

    Raises:
        UserError: ``resume`` with a checkpoint made for other data or settings.
        KeyboardInterrupt: re-raised after Ctrl-C; the last finished epoch is checkpointed.
    """
    from littlevision._tf import quiet_keras

    keras = quiet_keras()
    ckpt = _Checkpoint(Path(output) / CHECKPOINT_DIR if output is not None else None)
    run = _EpochRun(
        model, ckpt, EpochLog(), reporter, name, epochs, fingerprint, patience, restore_best
    )
    initial_epoch = run.restore(output) if resume else None
    if initial_epoch is None:  # a fresh start: no stale checkpoint left to resume by mistake
        initial_epoch = 0
        if output is not None:
            ckpt.clear()
    log = run.log
    if initial_epoch < epochs:
        with reporter.stage(f"train {name}", total=epochs) as stage:
            run.stage = stage
            if initial_epoch:
                stage.advance(initial_epoch)
            try:
                model.fit(
                    make_train(initial_epoch),
                    epochs=epochs,
                    initial_epoch=initial_epoch,
                    steps_per_epoch=steps_per_epoch,
                    validation_data=val_data,
                    verbose=0,
                    shuffle=False,
                    callbacks=[
                        keras.callbacks.LambdaCallback(
                            on_epoch_begin=run.begin, on_epoch_end=run.end
                        )
                    ],
                )
            except KeyboardInterrupt:
                if ckpt.load_state() is not None:
                    reporter.log(
                        f"{name}: interrupted; epochs 1-{log.epochs_run} are saved in "
                        f"{ckpt.folder}: run the same command with --resume to go on."
                    )
                raise
            if log.epochs_run < epochs:  # stopped early: the bar ends full, the log says why
                stage.advance(epochs - log.epochs_run)
    if run.durations:
        log.seconds_per_epoch = float(np.mean(run.durations))
    if restore_best and run.best["weights"] is not None:
        model.set_weights(run.best["weights"])
    if clear_when_done:
        ckpt.clear()
    log.best_epoch = run.best["epoch"]
    return log


class _EpochRun:
    """What :func:`fit_epochs` does around Keras' epochs: resume, record, stop early, checkpoint.

    :meth:`begin` and :meth:`end` are Keras' ``on_epoch_begin``/``on_epoch_end``.
    """

    def __init__(
        self,
        model,
        ckpt: _Checkpoint,
        log: EpochLog,
        reporter: Reporter,
        name: str,
        epochs: int,
        fingerprint: dict[str, Any],
        patience: int | None,
        restore_best: bool,
    ) -> None:
        self.model, self.ckpt, self.log, self.reporter = model, ckpt, log, reporter
        self.name, self.epochs, self.fingerprint = name, epochs, fingerprint
        self.patience, self.restore_best = patience, restore_best
        self.best: dict[str, Any] = {"loss": math.inf, "epoch": None, "wait": 0, "weights": None}
        self.durations: list[float] = []
        self.stage = None
        self.t0 = self.cpu0 = 0.0

    def restore(self, output) -> int | None:
        """Load the checkpoint to resume from; return the epoch to start at (None: none).

        Raises:
            UserError: the checkpoint was made for other data or settings.
        """
        name, model, log, best = self.name, self.model, self.log, self.best
        state = self.ckpt.load_state()
        if state is None:
            self.reporter.log(f"{name}: no checkpoint to resume in {output}; starting at epoch 1")
            return None
        saved = state.get("fingerprint", {})
        fingerprint = self.fingerprint
        diff = sorted(
            k for k in set(fingerprint) | set(saved) if fingerprint.get(k) != saved.get(k)
        )
        if diff:
            raise UserError(
                f"The checkpoint in '{output}' was made with other "
                f"{', '.join(diff)}: train into a new folder, or without --resume."
            )
        model.optimizer.build(model.trainable_variables)
        if self.restore_best and state.get("best_weights"):
            model.load_weights(self.ckpt.folder / state["best_weights"])
            best["weights"] = model.get_weights()
        model.load_weights(self.ckpt.folder / state["weights"])
        initial_epoch = log.resumed_from = log.epochs_run = int(state["epoch"])
        log.history = {k: list(v) for k, v in state.get("history", {}).items()}
        best.update(
            loss=state.get("best_loss", math.inf),
            epoch=state.get("best_epoch"),
            wait=state.get("wait", 0),
        )
        log.stopped_early = bool(state.get("stopped_early"))
        done = log.stopped_early or initial_epoch >= self.epochs
        self.reporter.log(
            f"{name}: resuming after epoch {initial_epoch}"
            + (" (training had finished)" if done else f" of {self.epochs}")
        )
        return self.epochs if log.stopped_early else initial_epoch

    def begin(self, epoch: int, logs=None) -> None:
        self.t0 = time.perf_counter()
        self.cpu0 = time.process_time()
        _reseed(self.model, epoch)

    def end(self, epoch: int, logs=None) -> None:
        dt = time.perf_counter() - self.t0
        self.durations.append(dt)
        logs = dict(logs or {})
        self._record(logs, dt)
        improved, stop = self._judge(epoch, float(logs.get("val_loss", math.nan)))
        self.log.epochs_run = epoch + 1
        self._save(epoch, improved, stop)
        self._report(epoch, logs, dt, stop)
        if self.stage is not None:
            self.stage.advance(1)

    def _record(self, logs: dict, dt: float) -> None:
        history = self.log.history
        for k, v in logs.items():
            history.setdefault(k, []).append(float(v))
        history.setdefault("seconds", []).append(round(dt, 3))
        # CPU time of all threads: on a shared machine, wall time alone says little
        history.setdefault("cpu_seconds", []).append(round(time.process_time() - self.cpu0, 3))

    def _judge(self, epoch: int, val_loss: float) -> tuple[bool, bool]:
        """(improved, stop): a lower validation loss, and whether patience ran out."""
        best = self.best
        improved = math.isfinite(val_loss) and val_loss < best["loss"]
        if improved:
            best.update(loss=val_loss, epoch=epoch + 1, wait=0)
            if self.restore_best:
                best["weights"] = self.model.get_weights()
        else:
            best["wait"] += 1
        stop = self.patience is not None and best["wait"] >= self.patience
        if stop:
            self.model.stop_training = True
            self.log.stopped_early = True
        return improved, stop

    def _save(self, epoch: int, improved: bool, stop: bool) -> None:
        best = self.best
        self.ckpt.save(
            self.model,
            {
                "epoch": epoch + 1,
                "epochs": self.epochs,
                "history": self.log.history,
                "fingerprint": self.fingerprint,
                "best_loss": best["loss"],
                "best_epoch": best["epoch"],
                "wait": best["wait"],
                "stopped_early": stop,
                "best_weights": self._best_file(improved),
            },
            best=improved and self.restore_best,
        )

    def _best_file(self, improved: bool) -> str | None:
        if not self.restore_best or improved:
            return None  # ckpt.save names the new file
        previous = self.ckpt.load_state()
        return previous.get("best_weights") if previous else None

    def _report(self, epoch: int, logs: dict, dt: float, stop: bool) -> None:
        left = (self.epochs - epoch - 1) * sum(self.durations) / len(self.durations)
        shown = "  ".join(
            f"{k} {logs[k]:.4f}"
            for k in ("loss", "accuracy", "val_loss", "val_accuracy")
            if k in logs
        )
        self.reporter.log(
            f"{self.name} epoch {epoch + 1}/{self.epochs}: {shown}  ({dt:.1f} s"
            + (
                f", early stop: no better validation loss in {self.patience} epochs)"
                if stop
                else f", ETA {format_duration(left)})"
                if left > 0
                else ")"
            )
        )


def plot_learning_curves(
    history: dict[str, list[float]], path: Path, title: str = ""
) -> Path | None:
    """Loss and accuracy per epoch, training vs validation, written to ``path`` as a PNG."""
    from littlevision._plots import learning_curves_png

    png = learning_curves_png(history, title) if history.get("loss") else None
    if png is None:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_bytes(path, png)


def decode_split(train, val, size: int, reporter: Reporter):
    """Decode train and validation images once at ``size`` (uint8), keeping the failures."""
    from littlevision.data.decode import decode_many

    out = []
    for what, ds in (("train", train), ("validation", val)):
        with reporter.stage(f"decode {what} ({size} px)", total=len(ds)) as st:
            done = [0]

            def progress(n, st=st, done=done):
                st.advance(n - done[0])
                done[0] = n

            out.append(decode_many(ds.paths, size, progress=progress))
    return out


def sample_weights_for(y: np.ndarray, n_classes: int) -> tuple[np.ndarray | None, dict | None]:
    """Per-image loss weights from :func:`class_weights` (None when classes are balanced)."""
    weights = class_weights(y, n_classes)
    if weights is None:
        return None, None
    return np.array([weights[int(c)] for c in y], np.float32), weights


def predict_in_batches(model, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    if len(images) == 0:
        return np.zeros((0, int(model.outputs[0].shape[-1])), np.float32)
    return np.asarray(
        model.predict(aug.eval_dataset(images, None, batch_size), verbose=0), np.float32
    )


# --------------------------------------------------------------------------------------------


@register_recipe("scratch")
class Scratch(Recipe):
    """The tutorial's convnet trained from scratch with its augmentation.

    Args:
        epochs: Passes over the training images (the tutorial's 50).
        batch_size: Images per step (the tutorial's 16).
        learning_rate: RMSprop's step size (Keras' default 1e-3, as in the tutorial).
        augment: ``"tutorial"`` (shear 0.2, zoom 0.2, flip), ``"preview"`` (the post's preview
            generator: adds rotation 40 and shifts 0.2), ``"mild"`` or ``"none"``.
        image_size: Input side; the tutorial's 150 when None.
        seed: Seeds the weights, the shuffling, the augmentation and the dropout.
        resume: Continue from the checkpoint in the run folder (``train --resume``).
    """

    backbone = None

    def __init__(
        self,
        epochs: int = 50,
        batch_size: int = 16,
        learning_rate: float = 1e-3,
        augment: str = "tutorial",
        image_size: int | None = None,
        seed: int = 0,
        resume: bool = False,
    ):
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.augment = augment
        self.image_size = image_size
        self.seed = seed
        self.resume = resume

    def _check(self) -> aug.AffineAugment:
        if not (isinstance(self.epochs, int) and self.epochs >= 1):
            raise UserError(f"--epochs must be a whole number >= 1. Received: {self.epochs}.")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise UserError(f"batch_size must be >= 1. Received: {self.batch_size}.")
        if self.augment not in AUGMENT_PRESETS:
            raise UserError(
                f"Unknown augmentation '{self.augment}'. Known: {', '.join(AUGMENT_PRESETS)}."
            )
        if self.image_size is not None and not 32 <= int(self.image_size) <= 512:
            raise UserError(
                f"--image-size must be between 32 and 512. Received: {self.image_size}."
            )
        return AUGMENT_PRESETS[self.augment]

    def _fit(self, train, val, reporter: Reporter = NULL, output=None) -> FitResult:
        from littlevision._tf import quiet_keras

        keras = quiet_keras()
        config = self._check()
        size = int(self.image_size or 150)
        t0 = time.perf_counter()
        tr, va = decode_split(train, val, size, reporter)
        if len(tr.ok_indices) == 0:
            raise UserError("None of the training images could be read.")
        y_tr = train.y[tr.ok_indices]
        y_va = val.y[va.ok_indices]
        n_classes = len(train.classes)
        t_decode = time.perf_counter() - t0

        model = tutorial_convnet(n_classes, size, seed=self.seed)
        model.compile(
            optimizer=keras.optimizers.RMSprop(self.learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        weights, cw = sample_weights_for(y_tr, n_classes)
        if cw:
            reporter.log(
                "scratch: classes are imbalanced; weighting the loss by "
                + ", ".join(f"{train.classes[i]} x{w:.2f}" for i, w in cw.items())
            )

        def make_train(initial_epoch: int):
            return aug.training_dataset(
                tr.images,
                y_tr,
                batch_size=self.batch_size,
                seed=self.seed,
                config=config,
                epochs=self.epochs,
                initial_epoch=initial_epoch,
                sample_weights=weights,
            )

        val_data = aug.eval_dataset(va.images, y_va, 64) if len(y_va) else None
        fingerprint = data_fingerprint(
            train,
            val,
            recipe="scratch",
            image_size=size,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            augment=self.augment,
            seed=self.seed,
        )
        log = fit_epochs(
            model,
            make_train,
            aug.steps(len(y_tr), self.batch_size),
            val_data,
            epochs=self.epochs,
            name="scratch",
            fingerprint=fingerprint,
            output=Path(output) if output is not None else None,
            resume=self.resume,
            reporter=reporter,
        )
        t_train = time.perf_counter() - t0 - t_decode
        with reporter.stage("predict validation"):
            val_probs = predict_in_batches(model, va.images)
        if output is not None:
            plot_learning_curves(
                log.history,
                Path(output) / CURVES_FILE,
                f"scratch: the tutorial's convnet ({size} px, {self.augment} augmentation)",
            )
        info = {
            "architecture": "Keras tutorial convnet: 3x [Conv 3x3 (32, 32, 64) + ReLU + MaxPool "
            "2x2], Dense 64 + ReLU, Dropout 0.5, softmax",
            "parameters": int(model.count_params()),
            "augment": self.augment,
            "augment_ranges": config.to_dict(),
            "optimizer": f"RMSprop(lr={self.learning_rate})",
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "epochs_run": log.epochs_run,
            "resumed_from": log.resumed_from,
            "seconds_per_epoch": log.seconds_per_epoch,
            "class_weights": cw,
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
                "train_s": t_train,
                "predict_s": time.perf_counter() - t0 - t_decode - t_train,
            },
            info=info,
        )
