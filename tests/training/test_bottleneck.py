"""The default recipe on real photos: accurate, exported whole, Keras and ONNX agreeing."""

from __future__ import annotations

import json

import numpy as np

from littlevision.bundle import Bundle
from littlevision.inference import Predictor
from littlevision.training.bottleneck import fit_linear_head, softmax


def test_bundle_has_every_file_and_a_sound_card(tiny_run):
    for name in (
        "model.keras",
        "model.onnx",
        "labels.json",
        "card.json",
        "metrics.json",
        "split.json",
    ):
        assert (tiny_run / name).is_file(), name
    bundle = Bundle.load(tiny_run)
    assert bundle.labels == ["cats", "dogs"]
    card = bundle.card
    assert (
        card["image_size"] == 224 and card["backbone"] == "lite0" and card["recipe"] == "bottleneck"
    )
    assert card["seed"] == 0 and card["data"]["n_train"] + card["data"]["n_val"] == 40
    assert card["data"]["counts_train"] == {"cats": 14, "dogs": 14}
    assert "keras" in card["versions"] and "created" in card
    split = json.loads((tiny_run / "split.json").read_text())
    train = {p for files in split["subsets"]["train"].values() for p in files}
    val = {p for files in split["subsets"]["validation"].values() for p in files}
    assert len(train) == 28 and len(val) == 12 and not train & val


def test_accuracy_is_well_above_chance(tiny_run):
    metrics = Bundle.load(tiny_run).metrics
    assert metrics["n"] == 12
    assert metrics["accuracy"] >= 0.9
    assert np.array(metrics["confusion"]).sum() == 12


def test_onnx_and_keras_give_the_same_probabilities(tiny_run, small_folder):
    from littlevision.data.decode import decode_many

    bundle = Bundle.load(tiny_run)
    files = sorted(small_folder.rglob("*.jpg"))[::5]
    images = decode_many(files, bundle.image_size).images
    onnx_probs = Predictor.from_bundle(bundle, precision="fp32").predict_array(images)
    keras_probs = bundle.load_keras().predict(images.astype("float32"), verbose=0)
    assert np.abs(onnx_probs - keras_probs).max() < 1e-4
    np.testing.assert_allclose(onnx_probs.sum(axis=1), 1.0, atol=1e-5)
    truth = np.array([0 if f.parent.name == "cats" else 1 for f in files])
    assert (onnx_probs.argmax(axis=1) == truth).mean() >= 0.75


def test_folded_head_equals_scaled_logistic_regression():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (30, 8)), rng.normal(1.5, 2, (30, 8))]) * 3 + 5
    y = np.repeat([0, 1], 30)
    kernel, bias, info = fit_linear_head(x, y, n_classes=2)
    probs = softmax(x @ kernel + bias)
    assert (probs.argmax(1) == y).mean() > 0.8
    assert info["cv_folds"] == 5 and info["C"] > 0
    # a class missing from the training data gets (almost) no probability
    k3, b3, _ = fit_linear_head(x, y, n_classes=3)
    assert softmax(x @ k3 + b3)[:, 2].max() < 1e-6
