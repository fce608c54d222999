"""Open Inference Protocol v2: what a KServe / Triton client sends and expects."""

from __future__ import annotations

import numpy as np
import pytest

from littlevision.data.decode import load_image

from .conftest import IMAGE_SIZE


def infer_body(images: np.ndarray, **extra) -> dict:
    return {
        "id": "req-1",
        "inputs": [
            {
                "name": "image",
                "shape": list(images.shape),
                "datatype": "UINT8",
                "data": images.ravel().tolist(),
            }
        ],
        **extra,
    }


def test_health_and_metadata(client):
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2").json()["name"] == "littlevision"
    meta = client.get("/v2/models/tiny-pets").json()
    version = meta["versions"][0]
    assert meta["inputs"] == [{"name": "image", "datatype": "UINT8", "shape": [-1, 64, 64, 3]}]
    assert meta["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}]
    assert client.get(f"/v2/models/tiny-pets/versions/{version}").status_code == 200
    assert client.get("/v2/models/tiny-pets/ready").json() == {"ready": True}
    assert client.get("/v2/models/other").status_code == 404
    assert client.get("/v2/models/tiny-pets/versions/nope").status_code == 404


def test_infer_matches_v1_predict(client, photos):
    datas = list(photos.values())[:3]
    images = np.stack([load_image(d, IMAGE_SIZE) for d in datas])
    r = client.post(
        "/v2/models/tiny-pets/infer", json=infer_body(images, outputs=[{"name": "probabilities"}])
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "req-1" and body["model_name"] == "tiny-pets"
    out = body["outputs"][0]
    assert out["name"] == "probabilities" and out["datatype"] == "FP32" and out["shape"] == [3, 2]
    probs = np.asarray(out["data"]).reshape(3, 2)
    for row, data in zip(probs, datas, strict=True):
        v1 = client.post("/v1/predict", content=data, headers={"Content-Type": "image/jpeg"}).json()
        assert row[0] == pytest.approx(v1["probabilities"]["cats"], abs=1e-6)
    version = body["model_version"]
    r = client.post(f"/v2/models/tiny-pets/versions/{version}/infer", json=infer_body(images[:1]))
    assert r.status_code == 200


def test_nested_data_is_accepted(client):
    images = np.full((1, 64, 64, 3), 100, np.uint8)
    body = infer_body(images)
    body["inputs"][0]["data"] = images.tolist()
    assert client.post("/v2/models/tiny-pets/infer", json=body).status_code == 200


@pytest.mark.parametrize(
    "change, status",
    [
        ({"name": "pixels"}, 400),
        ({"datatype": "FP32"}, 400),
        ({"shape": [1, 32, 32, 3]}, 400),
        ({"shape": [64, 64, 3]}, 400),
        ({"shape": [0, 64, 64, 3]}, 400),
        ({"data": [1, 2, 3]}, 400),
        ({"data": [300] * (64 * 64 * 3)}, 400),
        ({"data": [-1] * (64 * 64 * 3)}, 400),
        ({"data": [0.5] * (64 * 64 * 3)}, 400),
        ({"data": ["a"] * (64 * 64 * 3)}, 400),
        ({"data": [[1, 2], [3]]}, 400),
        ({"data": [10**30] * 3}, 400),
        ({"data": "abc"}, 422),
        ({"shape": "abc"}, 422),
    ],
)
def test_malformed_tensors_are_4xx(client, change, status):
    body = infer_body(np.zeros((1, 64, 64, 3), np.uint8))
    body["inputs"][0].update(change)
    r = client.post("/v2/models/tiny-pets/infer", json=body)
    assert r.status_code == status, r.text
    assert isinstance(r.json()["error"], str) and r.json()["message"]


def test_other_request_errors(make_client):
    client = make_client(max_batch_images=2)
    body = infer_body(np.zeros((3, 64, 64, 3), np.uint8))
    assert client.post("/v2/models/tiny-pets/infer", json=body).status_code == 413
    body = infer_body(np.zeros((1, 64, 64, 3), np.uint8), outputs=[{"name": "logits"}])
    assert client.post("/v2/models/tiny-pets/infer", json=body).status_code == 400
    body = infer_body(np.zeros((1, 64, 64, 3), np.uint8))
    assert client.post("/v2/models/other/infer", json=body).status_code == 404
    assert client.post("/v2/models/tiny-pets/infer", json={"inputs": []}).status_code == 422
    assert (
        client.post(
            "/v2/models/tiny-pets/infer",
            content=b"{oops",
            headers={"Content-Type": "application/json"},
        ).status_code
        == 422
    )
