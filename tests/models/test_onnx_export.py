"""The ONNX exporter reproduces Keras on real photos, layer type by layer type."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from littlevision._tf import quiet_keras
from littlevision.inference import make_session
from littlevision.models.onnx_export import export_onnx

keras = quiet_keras()
layers = keras.layers
S = 64


def _real_batch(small_folder, n=6) -> np.ndarray:
    from PIL import Image

    files = sorted(small_folder.rglob("*.jpg"))[:n]
    return np.stack([np.asarray(Image.open(f).convert("RGB").resize((S, S))) for f in files])


def _randomise_bn(model) -> None:
    rng = np.random.default_rng(0)
    for layer in model._flatten_layers():
        if isinstance(layer, layers.BatchNormalization):
            c = layer.moving_mean.shape
            layer.moving_mean.assign(0.1 * rng.random(c))
            layer.moving_variance.assign(rng.random(c) + 0.5)
            layer.gamma.assign(rng.random(c) + 0.5)
            layer.beta.assign(0.1 * rng.standard_normal(c))


def _mixed_model(head_units: int):
    inp = keras.Input((S, S, 3))
    x = layers.Normalization(mean=[120.0, 110.0, 100.0], variance=[3000.0, 3100.0, 3200.0])(inp)
    x = layers.RandomFlip("horizontal")(x)
    x = layers.Rescaling(0.5, offset=0.1)(x)
    x = layers.ZeroPadding2D(((0, 1), (0, 1)))(x)
    x = layers.Conv2D(8, 3, strides=2, padding="valid", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU(6.0)(x)
    y = layers.DepthwiseConv2D(5, padding="same", use_bias=False)(x)
    y = layers.BatchNormalization()(y)
    y = layers.Activation("relu")(y)
    x = layers.Add()([x, y])
    x = layers.Conv2D(16, 3, activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    sub = keras.Sequential([keras.Input(x.shape[1:]), layers.Conv2D(4, 1), layers.Flatten()])
    f = layers.Dropout(0.5)(sub(x))
    f = layers.Dense(head_units)(f)
    f = layers.Rescaling(0.05)(f)
    out = layers.Activation("softmax" if head_units > 1 else "sigmoid")(f)
    model = keras.Model(inp, out)
    _randomise_bn(model)
    return model


@pytest.mark.parametrize("units", [3, 1])
def test_export_matches_keras_on_real_photos(small_folder, tmp_path, units):
    model = _mixed_model(units)
    path = export_onnx(model, tmp_path / "m.onnx", S)
    images = _real_batch(small_folder)
    expected = model.predict(images.astype("float32"), verbose=0)
    if units == 1:  # one sigmoid unit becomes [P(class 0), P(class 1)]
        expected = np.concatenate([1 - expected, expected], axis=1)
    got = make_session(path).run(None, {"image": images})[0]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert expected.std() > 1e-3, "the test model must not be trivially constant"


def test_exported_graph_follows_the_contract(tmp_path):
    path = export_onnx(_mixed_model(3), tmp_path / "m.onnx", S)
    proto = onnx.load(path)
    (inp,) = proto.graph.input
    (out,) = proto.graph.output
    assert inp.name == "image"
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    dims = [d.dim_value or d.dim_param for d in inp.type.tensor_type.shape.dim]
    assert dims == ["N", S, S, 3]
    assert out.name == "probabilities"


def test_unsupported_layer_is_named(tmp_path):
    inp = keras.Input((S, S, 3))
    x = layers.Conv2D(4, 3, dilation_rate=2)(inp)
    out = layers.Dense(2, activation="softmax")(layers.Flatten()(x))
    with pytest.raises(NotImplementedError, match="dilated"):
        export_onnx(keras.Model(inp, out), tmp_path / "m.onnx", S)


# One small case per registered converter: a new converter without a case here fails the test
# below, so every entry of the table is checked against Keras the moment it exists.
_CASES = {
    "Normalization": lambda: layers.Normalization(mean=[100.0] * 3, variance=[900.0] * 3),
    "Rescaling": lambda: layers.Rescaling(1 / 255, offset=-0.5),
    "Conv2D": lambda: layers.Conv2D(4, 3, strides=2, padding="same", activation="swish"),
    "DepthwiseConv2D": lambda: layers.DepthwiseConv2D(3, padding="valid", activation="relu6"),
    "BatchNormalization": lambda: layers.BatchNormalization(),
    "ReLU": lambda: layers.ReLU(),
    "Activation": lambda: layers.Activation("tanh"),
    "Softmax": lambda: layers.Softmax(),
    "ZeroPadding2D": lambda: layers.ZeroPadding2D(((1, 0), (0, 1))),
    "MaxPooling2D": lambda: layers.MaxPooling2D(2),
    "AveragePooling2D": lambda: layers.AveragePooling2D(2, padding="same"),
    "GlobalAveragePooling2D": lambda: layers.GlobalAveragePooling2D(keepdims=True),
    "GlobalMaxPooling2D": lambda: layers.GlobalMaxPooling2D(keepdims=True),
    "Flatten": lambda: layers.Flatten(),
    "Dense": lambda: layers.Dense(5, activation="sigmoid"),
}
_MERGES = ("Add", "Multiply", "Subtract", "Maximum", "Minimum", "Average")


def test_every_converter_has_a_case():
    from littlevision.models.onnx_export import _CONVERTERS

    assert set(_CONVERTERS) == set(_CASES) | set(_MERGES)


@pytest.mark.parametrize("cls", sorted(set(_CASES) | set(_MERGES)))
def test_each_converter_matches_keras(cls, tmp_path):
    inp = keras.Input((8, 8, 3))
    x = layers.Rescaling(1 / 64)(inp)
    if cls in _MERGES:
        y = getattr(layers, cls)()([x, layers.Conv2D(3, 1, name="other")(x)])
    elif cls == "Dense":
        y = _CASES[cls]()(layers.Flatten()(x))
    else:
        y = _CASES[cls]()(x)
    if len(y.shape) == 4:
        y = layers.Flatten()(y)
    model = keras.Model(inp, layers.Dense(3, activation="softmax")(y))
    _randomise_bn(model)
    images = np.random.default_rng(1).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    path = export_onnx(model, tmp_path / "m.onnx", 8)
    got = make_session(path).run(None, {"image": images})[0]
    expected = model.predict(images.astype("float32"), verbose=0)
    np.testing.assert_allclose(got, expected, atol=1e-5)
