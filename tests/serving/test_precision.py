"""The service answers with the bundle's fast model when it has one, and says which model it was."""

from __future__ import annotations

import numpy as np
import pytest

from littlevision.data.decode import load_image
from littlevision.inference import Predictor

from .conftest import make_onnx


@pytest.fixture
def with_fast_model(run_dir, served):
    """The bundle plus a ``model.int8.onnx`` that answers differently from ``model.onnx``
    (its colour weights are halved), so which file answered is visible in the numbers."""
    weights = np.array([[2.0, -2.0], [0.0, 0.0], [-2.0, 2.0]], np.float32)
    make_onnx(run_dir / "model.int8.onnx", weights, served.image_size)
    return run_dir


def _direct(path, run_dir, served, data: bytes) -> np.ndarray:
    p = Predictor(path, served.labels, served.image_size, threads=1)
    return p.predict_array(load_image(data, served.image_size))


def test_default_serves_the_fast_model_and_says_so(with_fast_model, make_client, photo, served):
    client = make_client()
    body = client.post("/v1/predict", content=photo, headers={"Content-Type": "image/jpeg"}).json()
    assert body["model"]["precision"] == "int8"
    want = _direct(with_fast_model / "model.int8.onnx", with_fast_model, served, photo)
    assert body["score"] == pytest.approx(float(want.max()), abs=1e-6)
    assert client.get("/v1/model").json()["precision"] == "int8"
    batch = client.post("/v1/predict/batch", files=[("files", ("a.jpg", photo, "image/jpeg"))])
    assert batch.json()["model"]["precision"] == "int8"


def test_precision_fp32_serves_the_exact_model(with_fast_model, make_client, photo, served):
    client = make_client(precision="fp32")
    body = client.post("/v1/predict", content=photo, headers={"Content-Type": "image/jpeg"}).json()
    assert body["model"]["precision"] == "fp32"
    want = _direct(with_fast_model / "model.onnx", with_fast_model, served, photo)
    assert body["score"] == pytest.approx(float(want.max()), abs=1e-6)


def test_a_bundle_without_a_fast_model_serves_fp32(run_dir, make_client, photo):
    body = (
        make_client()
        .post("/v1/predict", content=photo, headers={"Content-Type": "image/jpeg"})
        .json()
    )
    assert body["model"]["precision"] == "fp32"


def test_asking_for_int8_from_a_bundle_without_one_is_a_user_error(run_dir):
    from littlevision.errors import UserError
    from littlevision.serving import ServeSettings
    from littlevision.serving.model_store import load_model

    with pytest.raises(UserError, match="no int8 model"):
        load_model(run_dir, 1, 1, "int8")
    with pytest.raises(UserError, match="precision"):
        ServeSettings(precision="fp16")
