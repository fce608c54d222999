"""Open Inference Protocol v2: what a KServe / Triton client sends and expects."""

from __future__ import annotations

import base64

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
    assert client.get(f"/v2/models/{name}/ready").json() == {"name": name, "ready": True}
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
    assert list(r.json()) == ["error"] and r.json()["error"].startswith(("Expected", "The"))


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


def test_errors_are_one_error_sentence(client, served):
    r = client.get("/v2/models/other")
    assert r.status_code == 404 and r.json() == {
        "error": f"Expected model name '{served.name}'. Received: 'other'"
    }
    r = client.post(
        f"/v2/models/{served.name}/infer",
        content=b"{oops",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json() == {"error": "The body is not valid JSON."}
    assert client.get("/v1/model/nope").json()["status"] == 404  # v1 keeps its own shape


def test_id_is_echoed_only_when_sent(client, served):
    s = served.image_size
    body = infer_body(np.zeros((1, s, s, 3), np.uint8))
    del body["id"]
    r = client.post(f"/v2/models/{served.name}/infer", json=body)
    assert r.status_code == 200 and "id" not in r.json()


def test_model_not_ready_is_503_with_its_name(run_dir, served):
    from fastapi.testclient import TestClient

    from littlevision.serving import ServeSettings, create_app

    app = create_app(run_dir, ServeSettings(watch_interval_s=0))
    with TestClient(app) as client:
        runtime = app.state.runtime
        runtime.draining = True  # shutting down: loaded, but no longer taking requests
        try:
            r = client.get(f"/v2/models/{served.name}/ready")
        finally:
            runtime.draining = False
    assert r.status_code == 503 and r.json() == {"name": served.name, "ready": False}


def _bytes_body(files: list[bytes]) -> dict:
    encoded = [base64.b64encode(f).decode("ascii") for f in files]
    return {
        "inputs": [{"name": "image", "shape": [len(files)], "datatype": "BYTES", "data": encoded}]
    }


def test_encoded_image_files_as_bytes_match_v1_predict(client, photos, served, odd_images):
    files = [*list(photos.values())[:2], odd_images["png_rgba"][0], odd_images["webp"][0]]
    r = client.post(f"/v2/models/{served.name}/infer", json=_bytes_body(files))
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    c = len(served.labels)
    assert out["shape"] == [4, c]
    probs = np.asarray(out["data"]).reshape(4, c)
    for row, data in zip(probs, files, strict=True):
        v1 = client.post("/v1/predict", content=data, headers={"Content-Type": "image/jpeg"}).json()
        assert row == pytest.approx([v1["probabilities"][k] for k in served.labels], abs=1e-6)


@pytest.mark.parametrize(
    "change, status",
    [
        (lambda body, photo: body["inputs"][0].update(shape=[2]), 400),
        (lambda body, photo: body["inputs"][0].update(shape=[1, 1]), 400),
        (lambda body, photo: body["inputs"][0].update(data=["not base64!"]), 400),
        (lambda body, photo: body["inputs"][0].update(data=[12]), 400),
        (
            lambda body, photo: body["inputs"][0].update(
                data=[base64.b64encode(b"hello").decode()]
            ),
            422,
        ),
        (
            lambda body, photo: body["inputs"][0].update(
                data=[base64.b64encode(photo[: len(photo) // 2]).decode()]
            ),
            422,
        ),
    ],
)
def test_bad_encoded_images_are_4xx_with_a_sentence(client, served, photo, change, status):
    body = _bytes_body([photo])
    change(body, photo)
    r = client.post(f"/v2/models/{served.name}/infer", json=body)
    assert r.status_code == status, r.text
    assert list(r.json()) == ["error"] and r.json()["error"]


def test_too_many_encoded_images_is_413(make_client, served, photo):
    client = make_client(max_batch_images=2)
    r = client.post(f"/v2/models/{served.name}/infer", json=_bytes_body([photo] * 3))
    assert r.status_code == 413 and "at most 2" in r.json()["error"]
