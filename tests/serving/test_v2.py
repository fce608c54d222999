"""Open Inference Protocol v2: what a KServe / Triton client sends and expects."""

from __future__ import annotations

import numpy as np
import pytest

from littlevision.data.decode import load_image


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


def test_health_and_metadata(client, served):
    name, s, c = served.name, served.image_size, len(served.labels)
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2").json()["name"] == "littlevision"
    meta = client.get(f"/v2/models/{name}").json()
    version = meta["versions"][0]
    assert meta["inputs"] == [{"name": "image", "datatype": "UINT8", "shape": [-1, s, s, 3]}]
    assert meta["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, c]}]
    assert client.get(f"/v2/models/{name}/versions/{version}").status_code == 200
    assert client.get(f"/v2/models/{name}/ready").json() == {"ready": True}
    assert client.get("/v2/models/other").status_code == 404
    assert client.get(f"/v2/models/{name}/versions/nope").status_code == 404


def test_infer_matches_v1_predict(client, photos, served):
    datas = list(photos.values())[:3]
    images = np.stack([load_image(d, served.image_size) for d in datas])
    r = client.post(
        f"/v2/models/{served.name}/infer",
        json=infer_body(images, outputs=[{"name": "probabilities"}]),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "req-1" and body["model_name"] == served.name
    out = body["outputs"][0]
    c = len(served.labels)
    assert out["name"] == "probabilities" and out["datatype"] == "FP32" and out["shape"] == [3, c]
    probs = np.asarray(out["data"]).reshape(3, c)
    first = served.labels[0]
    for row, data in zip(probs, datas, strict=True):
        v1 = client.post("/v1/predict", content=data, headers={"Content-Type": "image/jpeg"}).json()
        assert row[0] == pytest.approx(v1["probabilities"][first], abs=1e-6)
    version = body["model_version"]
    url = f"/v2/models/{served.name}/versions/{version}/infer"
    assert client.post(url, json=infer_body(images[:1])).status_code == 200


def test_nested_data_is_accepted(client, served):
    s = served.image_size
    images = np.full((1, s, s, 3), 100, np.uint8)
    body = infer_body(images)
    body["inputs"][0]["data"] = images.tolist()
    assert client.post(f"/v2/models/{served.name}/infer", json=body).status_code == 200


@pytest.mark.parametrize(
    "change, status",
    [  # each a function of S, the model's image size
        (lambda s: {"name": "pixels"}, 400),
        (lambda s: {"datatype": "FP32"}, 400),
        (lambda s: {"shape": [1, s // 2, s // 2, 3]}, 400),
        (lambda s: {"shape": [s, s, 3]}, 400),
        (lambda s: {"shape": [0, s, s, 3]}, 400),
        (lambda s: {"data": [1, 2, 3]}, 400),
        (lambda s: {"data": [300] * (s * s * 3)}, 400),
        (lambda s: {"data": [-1] * (s * s * 3)}, 400),
        (lambda s: {"data": [0.5] * (s * s * 3)}, 400),
        (lambda s: {"data": ["a"] * (s * s * 3)}, 400),
        (lambda s: {"data": [[1, 2], [3]]}, 400),
        (lambda s: {"data": [10**30] * 3}, 400),
        (lambda s: {"data": "abc"}, 422),
        (lambda s: {"shape": "abc"}, 422),
    ],
)
def test_malformed_tensors_are_4xx(client, served, change, status):
    s = served.image_size
    body = infer_body(np.zeros((1, s, s, 3), np.uint8))
    body["inputs"][0].update(change(s))
    r = client.post(f"/v2/models/{served.name}/infer", json=body)
    assert r.status_code == status, r.text
    assert isinstance(r.json()["error"], str) and r.json()["message"]


def test_other_request_errors(make_client, served):
    client = make_client(max_batch_images=2)
    s, url = served.image_size, f"/v2/models/{served.name}/infer"
    body = infer_body(np.zeros((3, s, s, 3), np.uint8))
    assert client.post(url, json=body).status_code == 413
    body = infer_body(np.zeros((1, s, s, 3), np.uint8), outputs=[{"name": "logits"}])
    assert client.post(url, json=body).status_code == 400
    body = infer_body(np.zeros((1, s, s, 3), np.uint8))
    assert client.post("/v2/models/other/infer", json=body).status_code == 404
    assert client.post(url, json={"inputs": []}).status_code == 422
    bad_json = client.post(url, content=b"{oops", headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400
