"""First-layer kernels and activation maximisation on the real (pretrained) backbone."""

from __future__ import annotations

import numpy as np
import pytest

from littlevision.errors import UserError
from littlevision.explain import (
    AscentConfig,
    filters_grid,
    first_layer_filters,
    maximize_activation,
    maximize_class,
)
from littlevision.explain.filters import default_filter_layer

FAST = AscentConfig(steps=6, size=64, octaves=(0.5, 1.0))


def test_first_layer_kernels_are_rgb_tiles_around_grey(keras_model):
    k = first_layer_filters(keras_model)
    assert k.shape == (32, 3, 3, 3) and k.dtype == np.float32
    assert k.min() >= 0.0 and k.max() <= 1.0
    # each kernel is scaled by its own largest weight: it touches 0 or 1 somewhere
    extremes = np.maximum(k.reshape(32, -1).max(1) - 0.5, 0.5 - k.reshape(32, -1).min(1))
    np.testing.assert_allclose(extremes, 0.5, atol=1e-5)
    grid = filters_grid(keras_model, tile=12, columns=8)
    assert grid.dtype == np.uint8 and grid.shape == (4 * 12 + 3 * 3, 8 * 12 + 7 * 3, 3)


def test_filter_patterns_excite_their_filter(keras_model):
    from littlevision._tf import quiet_keras
    from littlevision.explain._graph import trace

    layer = default_filter_layer(keras_model)
    images = maximize_activation(keras_model, layer.path, [0, 1], FAST)
    assert images.shape == (2, 64, 64, 3) and images.dtype == np.uint8
    assert images.std() > 10  # a pattern, not a flat grey
    keras = quiet_keras()
    t = trace(keras_model, tap=[layer.path], input_shape=(64, 64, 3), stop_after=layer.path)
    probe = keras.Model(t.input, t.taps[layer.path])
    grey = np.full((1, 64, 64, 3), 128, np.float32)
    acts = np.asarray(probe(np.concatenate([images.astype(np.float32), grey])))
    means = acts.mean(axis=(1, 2))  # [3, K]
    assert means[0, 0] > means[2, 0] and means[1, 1] > means[2, 1]


def test_class_patterns_raise_their_class(keras_model):
    # Drawn at the model's own input size: a resize would change the scale of the pattern.
    size = keras_model.input_shape[1]
    images = maximize_class(keras_model, [0, 1], AscentConfig(steps=6, size=size, octaves=(1.0,)))
    assert images.shape == (2, size, size, 3) and images.dtype == np.uint8
    probs = keras_model.predict(images.astype(np.float32), verbose=0)
    assert probs[0, 0] > 0.5 > probs[1, 0]  # the 'cats' image is cat, the 'dogs' one is not


def test_bad_choices_are_user_errors(keras_model):
    with pytest.raises(UserError, match="Filter index"):
        maximize_activation(keras_model, "stem_relu", [32], FAST)
    with pytest.raises(UserError, match="Class index"):
        maximize_class(keras_model, [2], FAST)
    with pytest.raises(UserError, match="no feature map"):
        maximize_activation(keras_model, "classifier", [0], FAST)
