"""A real Open Inference Protocol client (Triton's ``tritonclient[http]``) against a real
``littlevision serve`` process (uvicorn) on 127.0.0.1."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import pytest

from littlevision.data.decode import load_image

httpclient = pytest.importorskip("tritonclient.http", reason="pip install 'tritonclient[http]'")
from tritonclient.utils import InferenceServerException  # noqa: E402


@pytest.fixture
def triton(server):
    s = server()
    client = httpclient.InferenceServerClient(url=s.url.removeprefix("http://"))
    try:
        yield s, client
    finally:
        client.close()


def _v1(url: str, data: bytes) -> dict:
    r = httpx.post(url + "/v1/predict", content=data, headers={"Content-Type": "image/jpeg"})
    return r.json()["probabilities"]


def test_health_metadata_and_readiness(triton, served):
    s, client = triton
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(served.name)
    assert not client.is_model_ready("no-such-model")
    assert client.get_server_metadata()["name"] == "littlevision"
    meta = client.get_model_metadata(served.name)
    size = served.image_size
    assert meta["inputs"] == [{"name": "image", "datatype": "UINT8", "shape": [-1, size, size, 3]}]


def test_pixels_and_encoded_files_give_the_v1_answer(triton, served, photos):
    s, client = triton
    files = list(photos.values())[:3]
    pixels = np.stack([load_image(f, served.image_size) for f in files])

    tensor = httpclient.InferInput("image", list(pixels.shape), "UINT8")
    tensor.set_data_from_numpy(pixels, binary_data=False)
    wanted = [httpclient.InferRequestedOutput("probabilities", binary_data=False)]
    from_pixels = client.infer(served.name, [tensor], outputs=wanted).as_numpy("probabilities")

    encoded = np.array([base64.b64encode(f) for f in files], dtype=np.object_)
    tensor = httpclient.InferInput("image", [len(files)], "BYTES")
    tensor.set_data_from_numpy(encoded, binary_data=False)
    result = client.infer(served.name, [tensor], outputs=wanted, request_id="batch-7")
    from_files = result.as_numpy("probabilities")

    assert result.get_response()["id"] == "batch-7"
    assert from_pixels.shape == from_files.shape == (3, len(served.labels))
    for row_p, row_f, data in zip(from_pixels, from_files, files, strict=True):
        v1 = _v1(s.url, data)
        expected = [v1[label] for label in served.labels]
        np.testing.assert_allclose(row_p, expected, atol=1e-6)
        np.testing.assert_allclose(row_f, expected, atol=1e-6)


def test_errors_reach_the_client_as_one_sentence(triton, served, photo):
    s, client = triton
    tensor = httpclient.InferInput("pixels", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([base64.b64encode(photo)], dtype=np.object_), False)
    with pytest.raises(InferenceServerException) as info:
        client.infer(served.name, [tensor])
    assert info.value.status() == "400"
    assert "Expected input 'image'. Received: 'pixels'" in info.value.message()

    tensor = httpclient.InferInput("image", [1], "BYTES")
    tensor.set_data_from_numpy(
        np.array([base64.b64encode(b"not a photo")], dtype=np.object_), False
    )
    with pytest.raises(InferenceServerException) as info:
        client.infer(served.name, [tensor])
    assert info.value.status() == "422" and "Element 0" in info.value.message()

    with pytest.raises(InferenceServerException) as info:
        client.get_model_metadata("no-such-model")
    assert "Expected model name" in info.value.message()
