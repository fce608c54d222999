"""Fine-tuning on a tiny, imbalanced real slice: bundle, ONNX parity, the activation shortcut."""

from __future__ import annotations

import json

import numpy as np
import pytest

from littlevision.inference import Predictor
from littlevision.progress import Reporter
from littlevision.training.run import TrainConfig, evaluate, train

SIZE = 128  # any input size works; small keeps the test fast


@pytest.fixture(scope="module")
def imbalanced(small_folder):
    from littlevision.data.dataset import Dataset

    ds = Dataset.from_folder(small_folder)
    y = ds.y
    keep = np.concatenate([np.where(y == 0)[0], np.where(y == 1)[0][:8]])  # 20 cats, 8 dogs
    return ds[np.sort(keep)]


@pytest.fixture(scope="module")
def finetune_run(imbalanced, tmp_path_factory):
    out = tmp_path_factory.mktemp("finetune") / "run"
    bundle = train(
        imbalanced,
        out,
        TrainConfig(recipe="finetune", image_size=SIZE, val_split=0.3),
        epochs=2,
        views=2,
        batch_size=8,
    )
    return bundle


def test_bundle_is_complete_and_says_what_was_trained(finetune_run):
    run = finetune_run.path
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
    card = finetune_run.card
    info = card["recipe_info"]
    assert (
        card["recipe"] == "finetune" and card["backbone"] == "lite0" and card["image_size"] == SIZE
    )
    assert info["unfrozen_from_block"] == 11 and info["views"] == 2  # lite0 has blocks 0..15
    assert 0 <= info["best_epoch"] <= 2 and info["epochs_run"] <= 2
    assert not (run / "checkpoint").exists()  # finished: the bundle needs no 60 MB checkpoint


def test_class_weights_balance_the_imbalanced_slice(finetune_run):
    card = finetune_run.card
    counts = card["data"]["counts_train"]
    n = sum(counts.values())
    expected = {str(i): n / (2 * counts[c]) for i, c in enumerate(["cats", "dogs"])}
    got = {str(k): v for k, v in card["recipe_info"]["class_weights"].items()}
    assert got.keys() == expected.keys()
    for k in expected:
        assert got[k] == pytest.approx(expected[k])
    assert got["1"] > 1 > got["0"]


def test_onnx_agrees_with_keras_on_real_images(finetune_run, small_folder):
    from littlevision.data.decode import decode_many

    files = sorted(small_folder.rglob("*.jpg"))[::4]
    images = decode_many(files, SIZE).images
    model = finetune_run.load_keras()
    keras_probs = model.predict(images.astype("float32"), verbose=0)
    onnx_probs = Predictor.from_bundle(finetune_run, precision="fp32").predict_array(images)
    assert np.abs(onnx_probs - keras_probs).max() < 1e-4
    kinds = {type(layer).__name__ for layer in model.layers}
    assert not {k for k in kinds if k.startswith("Random")} and "Dropout" not in kinds


def test_metrics_from_stored_activations_match_the_exported_model(finetune_run, imbalanced):
    """Validation was scored on the frozen layers' stored output: the whole model must agree."""
    from littlevision.data.dataset import Dataset

    record = json.loads((finetune_run.path / "split.json").read_text())
    val = Dataset.from_split_record(record, imbalanced.root)
    val = val[[i for i, it in enumerate(val) if it.subset == "validation"]]
    measured = evaluate(finetune_run, val)
    assert measured["n"] == finetune_run.metrics["n"]
    assert measured["log_loss"] == pytest.approx(finetune_run.metrics["log_loss"], abs=2e-3)


def test_keeps_the_bottleneck_start_only_when_it_is_better_on_both(finetune_run):
    info = finetune_run.card["recipe_info"]
    start, final = info["bottleneck_start"], finetune_run.metrics
    start_better = (
        start["log_loss"] < final["log_loss"] - 1e-6 and start["accuracy"] >= final["accuracy"]
    )
    assert not start_better  # otherwise the start would have been kept
    if info["kept_bottleneck"]:
        assert final["log_loss"] == pytest.approx(start["log_loss"], abs=1e-4)
        assert final["accuracy"] == start["accuracy"]


class _CtrlC(Reporter):
    def __init__(self, on: str | None = None):
        self.on, self.lines = on, []

    def log(self, message):
        self.lines.append(message)
        if self.on and self.on in message:
            raise KeyboardInterrupt


def test_interrupted_finetune_resumes_from_its_checkpoint(imbalanced, finetune_run, tmp_path):
    out = tmp_path / "run"
    config = TrainConfig(recipe="finetune", image_size=SIZE, val_split=0.3)
    params = dict(epochs=2, views=2, batch_size=8)
    with pytest.raises(KeyboardInterrupt):
        train(imbalanced, out, config, reporter=_CtrlC("finetune epoch 1/2"), **params)
    assert json.loads((out / "checkpoint" / "state.json").read_text())["epoch"] == 1
    reporter = _CtrlC()
    bundle = train(imbalanced, out, config, reporter=reporter, resume=True, **params)
    assert any("resuming after epoch 1" in line for line in reporter.lines)
    assert bundle.card["recipe_info"]["resumed_from"] == 1
    # the same views, order and head: the same run as the uninterrupted one, within float noise
    reference = json.loads((finetune_run.path / "history.json").read_text())
    history = json.loads((out / "history.json").read_text())
    np.testing.assert_allclose(history["val_loss"], reference["val_loss"], rtol=1e-3, atol=1e-5)


def test_split_backbone_recomposes_exactly():
    from littlevision.models import create_backbone
    from littlevision.training.finetune import split_backbone

    base = create_backbone("lite0", input_shape=(64, 64, 3), include_top=False, pooling="avg")
    bottom, top, first = split_backbone(base, 2)
    assert first == 14
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(top(bottom(x)).numpy(), base(x).numpy(), atol=1e-5)
    from littlevision.errors import UserError

    with pytest.raises(UserError, match="unfreeze"):
        split_backbone(base, 99)
