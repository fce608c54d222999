"""Feature maps of real photos: default early/middle/late layers, choice by name and index."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from littlevision.errors import UserError
from littlevision.explain import default_layers, feature_maps, feature_maps_png, list_layers


def test_defaults_are_early_middle_late_and_shrink(keras_model, photo_arrays):
    maps = feature_maps(keras_model, photo_arrays[0])
    assert [m.layer.path for m in maps] == [
        "efficientnet_lite0/stem_relu",
        maps[1].layer.path,
        "efficientnet_lite0/head_relu",
    ]
    sides = [m.activations.shape[0] for m in maps]
    assert sides[0] == 112 and sides[-1] == 7 and sides[0] > sides[1] > sides[2]
    for m in maps:
        assert m.activations.dtype == np.float32 and m.activations.ndim == 3
        assert m.activations.min() >= 0.0 and m.activations.max() <= 6.0 + 1e-4  # ReLU6
        assert m.activations.max() > 0
        top = m.strongest(4)
        means = m.activations.mean(axis=(0, 1))
        assert means[top[0]] == means.max()


def test_layers_by_name_and_index(keras_model, photo_arrays):
    layers = list_layers(keras_model)
    assert layers[0].path == "efficientnet_lite0/preprocess" and layers[-1].name == "classifier"
    maps = feature_maps(keras_model, photo_arrays[1], ["stem_conv", -3, str(layers[10].index)])
    assert [m.layer.path for m in maps] == [
        "efficientnet_lite0/stem_conv",
        layers[-3].path,
        layers[10].path,
    ]
    assert maps[0].activations.shape == (112, 112, 32)
    with pytest.raises(UserError, match="out of range"):
        feature_maps(keras_model, photo_arrays[1], [len(layers)])
    assert len(default_layers(layers)) == 3


def test_grid_figure_is_a_png(keras_model, photo_arrays):
    png = feature_maps_png(keras_model, photo_arrays[2], max_channels=8)
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.size[0] > 400 and img.size[1] > 400
