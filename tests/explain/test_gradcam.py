"""Grad-CAM on real photos: shapes, ranges, classes, the overlay the service sends, caching."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from littlevision.bundle import Bundle
from littlevision.errors import UserError
from littlevision.explain import Explainer, get_explainer, gradcam, gradcam_overlay
from littlevision.inference import Predictor


def test_heatmaps_have_the_input_size_and_lie_in_0_1(explainer, photo_arrays):
    result = explainer.gradcam(photo_arrays)
    assert explainer.image_size == 224
    assert result.heatmaps.shape == (4, 224, 224) and result.heatmaps.dtype == np.float32
    assert result.heatmaps.min() >= 0.0 and result.heatmaps.max() <= 1.0
    assert np.allclose(result.heatmaps.reshape(4, -1).max(axis=1), 1.0, atol=0.05)  # peak is 1
    assert result.probabilities.shape == (4, 2)
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(result.class_indices, result.probabilities.argmax(axis=1))
    assert result.layer == "efficientnet_lite0/head_relu"  # the backbone's last conv activation


def test_raw_maps_are_the_feature_grid(explainer, photo_arrays):
    raw = explainer.gradcam(photo_arrays[:1], upsample=False).heatmaps
    assert raw.shape == (1, 7, 7)


def test_maps_of_the_two_classes_differ(explainer, photo_arrays):
    """A trained model's evidence for 'cats' and for 'dogs' lies in different places."""
    cat, dog = photo_arrays[0], photo_arrays[2]
    res = explainer.gradcam([cat, cat, dog, dog], [0, 1, 0, 1])
    for a, b in ((0, 1), (2, 3)):
        m0, m1 = res.heatmaps[a].ravel(), res.heatmaps[b].ravel()
        assert np.abs(m0 - m1).mean() > 0.1
        if m0.std() > 0 and m1.std() > 0:
            assert np.corrcoef(m0, m1)[0, 1] < 0.5
    # the true class has evidence on its own photo
    assert res.heatmaps[0].max() > 0.99 and res.heatmaps[3].max() > 0.99


def test_batches_give_the_same_maps_as_single_images(explainer, photo_arrays):
    together = explainer.gradcam(photo_arrays).heatmaps
    alone = np.stack([explainer.gradcam([im]).heatmaps[0] for im in photo_arrays])
    np.testing.assert_allclose(together, alone, atol=1e-4)


def test_class_by_name_and_bad_classes(explainer, photo_arrays):
    by_name = explainer.gradcam(photo_arrays[:1], "dogs")
    by_index = explainer.gradcam(photo_arrays[:1], 1)
    np.testing.assert_allclose(by_name.heatmaps, by_index.heatmaps, atol=1e-6)
    with pytest.raises(UserError, match="Unknown class 'horses'"):
        explainer.gradcam(photo_arrays[:1], "horses")
    with pytest.raises(UserError, match=r"0\.\.1"):
        explainer.gradcam(photo_arrays[:1], 5)


def test_overlay_is_a_png_of_the_photo_with_onnx_like_probabilities(explain_run, photo_arrays):
    image = photo_arrays[2]
    png, probs = gradcam_overlay(Bundle.load(explain_run), image)
    overlay = Image.open(io.BytesIO(png))
    assert overlay.format == "PNG" and overlay.mode == "RGB"
    h, w = image.shape[:2]
    scale = min(1.0, 512 / max(h, w))
    assert abs(overlay.size[0] - w * scale) <= 1 and abs(overlay.size[1] - h * scale) <= 1
    from littlevision.data.decode import resize_image

    onnx = Predictor.from_bundle(Bundle.load(explain_run), precision="fp32").predict_array(
        resize_image(image, 224)
    )
    assert probs.shape == (2,)
    np.testing.assert_allclose(probs, onnx, atol=1e-3)
    # the overlay changes the photo only where the map is: it is not a blank or a copy
    small = np.asarray(Image.fromarray(image).resize(overlay.size))
    diff = np.abs(np.asarray(overlay, np.int16) - small.astype(np.int16)).mean()
    assert 3 < diff < 120


def test_explainer_is_built_once_per_run(explain_run, explainer):
    assert get_explainer(explain_run) is explainer
    assert get_explainer(Bundle.load(explain_run)) is explainer
    maps = gradcam(explain_run, np.zeros((1, 224, 224, 3), np.uint8))
    assert maps.heatmaps.shape == (1, 224, 224)


def test_first_overlay_is_cheap_once_the_explainer_exists(explainer, photo_arrays):
    import time

    explainer.gradcam_overlay(photo_arrays[0])  # traced already by other tests, or now
    start = time.perf_counter()
    for image in photo_arrays:
        explainer.gradcam_overlay(image)
    assert (time.perf_counter() - start) / len(photo_arrays) < 1.0  # target: <= 1 s per image


def test_layer_can_be_chosen_by_name_or_index(keras_model, photo_arrays):
    by_name = Explainer(keras_model, layer="block15_project_bn")
    assert by_name.layer_.path == "efficientnet_lite0/block15_project_bn"
    by_index = Explainer(keras_model, layer=by_name.layer_.index)
    assert by_index.layer_ == by_name.layer_
    assert by_name.gradcam(photo_arrays[:1]).heatmaps.shape == (1, 224, 224)
    with pytest.raises(UserError, match="No layer named 'nope'"):
        Explainer(keras_model, layer="nope")


def test_the_tutorial_convnet_is_explained_at_its_last_conv(photo_arrays):
    pytest.importorskip(
        "littlevision.training.scratch",
        reason="the scratch recipe is not there yet (another engineer)",
    )
    from littlevision.training.scratch import tutorial_convnet

    model = tutorial_convnet(2, 150, seed=0)
    exp = Explainer(model)
    assert exp.layer_.name == "conv3_relu"
    res = exp.gradcam(photo_arrays, upsample=False)
    assert res.heatmaps.shape == (4, 34, 34)
    assert res.heatmaps.min() >= 0 and res.heatmaps.max() <= 1
