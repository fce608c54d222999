"""The one Keras graph walker, on the installed Keras (the lowest-versions check runs it on the
oldest Keras pyproject.toml allows)."""

from __future__ import annotations

import numpy as np
import pytest

from littlevision.models.keras_graph import is_model, walk


@pytest.fixture(scope="module")
def keras():
    from littlevision._tf import quiet_keras

    return quiet_keras()


def _nested_model(keras):
    """Functional(input -> Sequential(conv, bn) -> branch + Add -> nested Functional head)."""
    inner = keras.Sequential(
        [keras.layers.Conv2D(4, 3, padding="same"), keras.layers.BatchNormalization()],
        name="inner_seq",
    )
    head_in = keras.Input((8, 8, 4))
    head = keras.Model(
        head_in,
        keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(head_in)),
        name="head",
    )
    x = keras.Input((8, 8, 3))
    a = inner(x)
    b = keras.layers.Conv2D(4, 1, name="skip")(x)
    y = head(keras.layers.Add(name="add")([a, b]))
    return keras.Model(x, y, name="outer")


def test_walking_and_calling_every_layer_reproduces_the_model(keras):
    model = _nested_model(keras)
    visited: list[str] = []

    def call(layer, args, kwargs):
        if is_model(layer):
            visited.append(f"[{layer.name}]")
            return walk(layer, args[0] if len(args) == 1 else list(args), call)
        visited.append(layer.name)
        return layer(*args, **kwargs)

    images = np.random.default_rng(0).uniform(0, 1, (2, 8, 8, 3)).astype("float32")
    out = walk(model, keras.ops.convert_to_tensor(images), call)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(out), model.predict(images, verbose=0), rtol=1e-5, atol=1e-6
    )
    assert visited.index("[inner_seq]") < visited.index("add") < visited.index("[head]")
    assert "skip" in visited and visited[-1].startswith("dense")


def test_walking_symbolic_values_through_a_graph(keras):
    """The exporter walks names, not tensors: the walker never looks at the values."""
    model = _nested_model(keras)

    def call(layer, args, kwargs):
        if is_model(layer):
            return walk(layer, list(args), call)
        names = [a for a in args if isinstance(a, str)]
        names += [n for a in args if isinstance(a, (list, tuple)) for n in a]
        return f"{layer.name}({','.join(names)})"

    out = walk(model, ["x"], call)
    assert out.startswith("dense") and "add(" in out and "skip(x)" in out


def test_anything_but_a_model_is_refused():
    with pytest.raises(TypeError, match="Functional or Sequential"):
        walk(object(), [], lambda *a: None)
