"""EfficientNet-Lite0 in Keras reproduces the reference PyTorch model on real photos.

The reference numbers come from tests/models/fixtures/lite0_parity.npz, made by
scripts/make_parity_fixture.py with torch; these tests need no torch.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from littlevision.models import (
    FEATURE_DIM,
    LAST_CONV_LAYER,
    PIXEL_MEAN,
    PIXEL_STD,
    efficientnet_lite,
    get_backbone_spec,
    imagenet_weights_path,
)
from littlevision.models import weights as weights_module

FIXTURE = Path(__file__).parent / "fixtures" / "lite0_parity.npz"
CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
DOGS = range(151, 269)
EXPORTABLE = {
    "InputLayer",
    "Normalization",
    "Conv2D",
    "DepthwiseConv2D",
    "BatchNormalization",
    "ReLU",
    "Add",
    "GlobalAveragePooling2D",
    "Dropout",
    "Dense",
}


@pytest.fixture(scope="module")
def parity() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def lite0_logits():
    """ImageNet lite0 returning logits; built once for the module."""
    return efficientnet_lite("lite0", classifier_activation=None)


def _photo(path: Path, size: int = 224) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR))


def test_logits_match_the_torch_reference(lite0_logits, parity):
    logits = lite0_logits(parity["images"].astype(np.float32)).numpy()

    # Observed: 1.2e-5 on logits of magnitude ~9 (float32 round-off only).
    np.testing.assert_allclose(logits, parity["logits"], atol=1e-3, rtol=0)
    np.testing.assert_array_equal(logits.argmax(axis=1), parity["logits"].argmax(axis=1))


def test_pooled_features_match_the_torch_reference(parity):
    model = efficientnet_lite("lite0", include_top=False, pooling="avg")
    features = model(parity["images"].astype(np.float32)).numpy()

    assert features.shape == (len(parity["images"]), FEATURE_DIM)
    np.testing.assert_allclose(features, parity["features"], atol=1e-3, rtol=0)


@pytest.mark.parametrize("variant", ["lite1", "lite2"])
def test_lite1_and_lite2_match_the_torch_reference(variant):
    """The same check for the bigger backbones (fixtures made by the same script, --variant)."""
    with np.load(FIXTURE.with_name(f"{variant}_parity.npz")) as data:
        ref = {key: data[key] for key in data.files}
    images = ref["images"].astype(np.float32)
    assert images.shape[1] == get_backbone_spec(variant).image_size

    logits = efficientnet_lite(variant, classifier_activation=None)(images).numpy()
    features = efficientnet_lite(variant, include_top=False, pooling="avg")(images).numpy()

    np.testing.assert_allclose(logits, ref["logits"], atol=1e-3, rtol=0)
    np.testing.assert_array_equal(logits.argmax(axis=1), ref["logits"].argmax(axis=1))
    np.testing.assert_allclose(features, ref["features"], atol=1e-3, rtol=0)


def test_softmax_top_gives_probabilities(parity):
    model = efficientnet_lite("lite0")  # classifier_activation="softmax" by default
    probs = model(parity["images"].astype(np.float32)).numpy()

    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(probs.argmax(axis=1), parity["logits"].argmax(axis=1))


@pytest.mark.parametrize(("index", "classes"), [(0, CATS), (1, CATS), (2, DOGS)])
def test_real_photos_get_the_right_imagenet_classes(lite0_logits, parity, index, classes):
    """Two cats and a dog (photos from cats-vs-dogs, stored in the parity fixture)."""
    image = parity["images"][index : index + 1].astype(np.float32)
    top5 = np.argsort(-lite0_logits(image).numpy(), axis=1)[0, :5]

    assert set(top5.tolist()) & set(classes), f"{parity['names'][index]}: top-5 {top5.tolist()}"


@pytest.mark.parametrize(
    ("subset", "files", "classes"),
    [
        ("cats", ["cat.4004.jpg", "cat.4005.jpg"], CATS),
        ("dogs", ["dog.4002.jpg", "dog.4003.jpg"], DOGS),
    ],
)
@pytest.mark.slow
def test_more_real_photos_get_the_right_imagenet_classes(
    lite0_logits, real_cats_dogs_dir, subset, files, classes
):
    images = np.stack([_photo(real_cats_dogs_dir / "validation" / subset / f) for f in files])
    top5 = np.argsort(-lite0_logits(images.astype(np.float32)).numpy(), axis=1)[:, :5]

    for name, row in zip(files, top5, strict=True):
        assert set(row.tolist()) & set(classes), f"{name}: top-5 {row.tolist()}"


def test_preprocessing_is_inside_the_model(lite0_logits):
    layer = lite0_logits.layers[1]

    assert layer.name == "preprocess"
    assert type(layer).__name__ == "Normalization"
    np.testing.assert_allclose(np.ravel(layer.mean), PIXEL_MEAN)
    np.testing.assert_allclose(np.ravel(layer.variance), np.square(PIXEL_STD))


def test_only_exportable_layer_types(lite0_logits):
    assert {type(layer).__name__ for layer in lite0_logits.layers} <= EXPORTABLE


def test_layer_names_mirror_the_torch_keys(lite0_logits):
    names = {layer.name for layer in lite0_logits.layers}

    for name in ["stem_conv", "stem_bn", "block0_depthwise_conv", "block3_expand_conv",
                 "block3_expand_bn", "block3_depthwise_bn", "block15_project_bn", "block2_add",
                 "head_conv", "head_bn", LAST_CONV_LAYER, "top_dense"]:  # fmt: skip
        assert name in names, name
    assert "block0_expand_conv" not in names  # expand ratio 1
    assert "block1_add" not in names  # stride 2: no residual


def test_feature_map_for_grad_cam():
    model = efficientnet_lite("lite0", include_top=False, pooling=None, weights=None)

    assert model.output.shape == (None, 7, 7, FEATURE_DIM)
    assert model.get_layer(LAST_CONV_LAYER).output is model.output
    assert get_backbone_spec("lite0").last_conv_layer == LAST_CONV_LAYER


def test_any_input_size_and_a_new_head():
    model = efficientnet_lite("lite0", input_shape=(48, 64, 3), weights=None, num_classes=3)
    out = model(np.zeros((2, 48, 64, 3), np.float32)).numpy()

    assert out.shape == (2, 3)


def test_weights_from_a_saved_file(tmp_path):
    kwargs = {"input_shape": (32, 32, 3), "include_top": False}
    trained = efficientnet_lite("lite0", weights=None, **kwargs)
    trained.save_weights(tmp_path / "mine.weights.h5")
    x = np.random.default_rng(0).uniform(0, 255, (1, 32, 32, 3)).astype(np.float32)

    restored = efficientnet_lite("lite0", weights=str(tmp_path / "mine.weights.h5"), **kwargs)

    np.testing.assert_allclose(restored(x).numpy(), trained(x).numpy(), atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"variant": "lite9"}, "variant"),
        ({"pooling": "max", "include_top": False}, "pooling"),
        ({"num_classes": 5}, "num_classes=1000"),
        ({"input_shape": (224, 224, 1), "weights": None}, "input_shape"),
        ({"weights": "imagenett"}, "weights='imagenet', None or the path"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        efficientnet_lite(**kwargs)


def test_weights_are_converted_once_then_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("LITTLEVISION_CACHE", str(tmp_path))

    first = imagenet_weights_path("lite0")  # cold: reads the .pth and converts
    stamp = first.stat().st_mtime_ns

    def no_reconversion(path):
        raise AssertionError("the cached weights should have been reused")

    monkeypatch.setattr(weights_module, "load_legacy_torch", no_reconversion)
    second = imagenet_weights_path("lite0")
    model = efficientnet_lite("lite0", include_top=False, input_shape=(64, 64, 3))

    assert second == first
    assert first.parent == tmp_path / "weights"
    assert first.name.startswith("efficientnet-lite0-")
    assert second.stat().st_mtime_ns == stamp
    assert model.get_layer("head_bn").get_weights()[3].min() > 0  # real running variances
    assert os.listdir(first.parent) == [first.name]  # no temporary files left


def test_an_interrupted_write_leaves_no_cache_file(tmp_path, monkeypatch):
    monkeypatch.setenv("LITTLEVISION_CACHE", str(tmp_path))

    def killed_midway(file, **arrays):
        file.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(weights_module.np, "savez", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        imagenet_weights_path("lite0")

    assert os.listdir(tmp_path / "weights") == []
