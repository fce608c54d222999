"""The tutorial's convnet from scratch on a tiny real slice: bundle, ONNX parity, resume, seeds."""

from __future__ import annotations

import json
import os
import shutil
import signal

import numpy as np
import pytest

from littlevision.bundle import Bundle
from littlevision.errors import UserError
from littlevision.inference import Predictor
from littlevision.progress import Reporter, Stage
from littlevision.training.run import TrainConfig, train
from littlevision.training.scratch import CHECKPOINT_DIR, _no_interrupt, tutorial_convnet


class Recorder(Reporter):
    """Keeps every stage and message; raises KeyboardInterrupt on a chosen message (Ctrl-C)."""

    def __init__(self, interrupt_on: str | None = None):
        self.logs: list[str] = []
        self.stages: dict[str, list] = {}
        self.interrupt_on = interrupt_on

    def stage(self, description, total=None):
        record = self.stages.setdefault(description, [total, 0])
        recorder = self

        class _S(Stage):
            def advance(self, n=1):
                record[1] += n

        del recorder
        return _S()

    def log(self, message):
        self.logs.append(message)
        if self.interrupt_on and self.interrupt_on in message:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def scratch_run(small_folder, tmp_path_factory):
    reporter = Recorder()
    out = tmp_path_factory.mktemp("scratch") / "run"
    train(small_folder, out, TrainConfig(recipe="scratch", seed=0), reporter=reporter, epochs=2)
    return out, reporter


def test_bundle_is_complete_with_curves_and_checkpoint(scratch_run):
    run, _ = scratch_run
    for name in (
        "model.keras",
        "model.onnx",
        "labels.json",
        "card.json",
        "metrics.json",
        "split.json",
        "history.json",
        "learning_curves.png",
    ):
        assert (run / name).is_file(), name
    bundle = Bundle.load(run)
    card = bundle.card
    assert card["recipe"] == "scratch" and card["image_size"] == 150 and card["backbone"] is None
    assert card["recipe_info"]["epochs_run"] == 2 and card["recipe_info"]["augment"] == "tutorial"
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == 2 and len(history["val_accuracy"]) == 2
    state = json.loads((run / CHECKPOINT_DIR / "state.json").read_text())
    assert state["epoch"] == 2 and (run / CHECKPOINT_DIR / state["weights"]).is_file()
    assert (run / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_model_is_the_tutorials_convnet(scratch_run):
    model = Bundle.load(scratch_run[0]).load_keras()
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Rescaling"] + ["Conv2D", "Activation", "MaxPooling2D"] * 3 + [
        "Flatten",
        "Dense",
        "Activation",
        "Dropout",
        "Dense",
        "Activation",
    ]
    assert [model.get_layer(f"conv{i}").filters for i in (1, 2, 3)] == [32, 32, 64]
    assert model.get_layer("dense").units == 64 and model.get_layer("dropout").rate == 0.5
    # 896 + 9248 + 18496 (convs) + 17*17*64*64 + 64 (dense) + 64*2 + 2 (softmax head)
    assert model.count_params() == 1_212_578
    assert not [k for k in kinds if k.startswith("Random")]  # augmentation is not in the model


def test_onnx_agrees_with_keras_and_inference_is_deterministic(scratch_run, small_folder):
    from littlevision.data.decode import decode_many

    bundle = Bundle.load(scratch_run[0])
    files = sorted(small_folder.rglob("*.jpg"))[::3]
    images = decode_many(files, 150).images
    model = bundle.load_keras()
    keras_probs = model.predict(images.astype("float32"), verbose=0)
    again = model(images.astype("float32"), training=False).numpy()
    onnx_probs = Predictor.from_bundle(bundle, precision="fp32").predict_array(images)
    assert np.abs(onnx_probs - keras_probs).max() < 1e-4
    np.testing.assert_allclose(again, keras_probs, atol=1e-6)  # dropout off at inference


def test_progress_per_epoch_with_eta(scratch_run):
    _, reporter = scratch_run
    assert reporter.stages["train scratch"] == [2, 2]
    epoch_lines = [m for m in reporter.logs if m.startswith("scratch epoch")]
    assert len(epoch_lines) == 2 and "ETA" in epoch_lines[0] and "val_accuracy" in epoch_lines[0]


def test_ctrl_c_leaves_a_checkpoint_and_resume_finishes_like_an_uninterrupted_run(
    scratch_run, small_folder, tmp_path
):
    out = tmp_path / "run"
    first = Recorder(interrupt_on="scratch epoch 1/2")
    with pytest.raises(KeyboardInterrupt):
        train(small_folder, out, TrainConfig(recipe="scratch"), reporter=first, epochs=2)
    state = json.loads((out / CHECKPOINT_DIR / "state.json").read_text())
    assert state["epoch"] == 1
    assert any("--resume" in m for m in first.logs)
    second = Recorder()
    bundle = train(
        small_folder, out, TrainConfig(recipe="scratch"), reporter=second, epochs=2, resume=True
    )
    assert any("resuming after epoch 1" in m for m in second.logs)
    assert second.stages["train scratch"] == [2, 2]  # the bar starts at 1 of 2
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 2 and bundle.card["recipe_info"]["resumed_from"] == 1
    # same seed, same split, same batches, same dropout: the same run within float noise
    reference = json.loads((scratch_run[0] / "history.json").read_text())
    np.testing.assert_allclose(history["loss"], reference["loss"], rtol=1e-3)
    np.testing.assert_allclose(history["val_loss"], reference["val_loss"], rtol=1e-3)
    assert json.loads((out / "split.json").read_text()) == json.loads(
        (scratch_run[0] / "split.json").read_text()
    )


def test_resume_refuses_a_checkpoint_of_other_settings(scratch_run, small_folder, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(scratch_run[0], out)
    with pytest.raises(UserError, match="batch_size"):
        train(small_folder, out, TrainConfig(recipe="scratch"), epochs=3, resume=True, batch_size=8)


def test_a_checkpoint_write_is_never_cut_by_ctrl_c():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with _no_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("still writing")
    assert done == ["still writing"]


def test_bad_settings_are_user_errors(small_folder, tmp_path):
    with pytest.raises(UserError, match="augmentation"):
        train(small_folder, tmp_path / "r", TrainConfig(recipe="scratch"), augment="wild")
    with pytest.raises(ValueError, match="n_classes"):
        tutorial_convnet(1)
