"""/v1/predict and /v1/predict/batch on real photos."""

from __future__ import annotations

import base64
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from littlevision.bundle import Bundle
from littlevision.data.decode import load_image
from littlevision.inference import Predictor


def expected_probs(run_dir, data: bytes) -> np.ndarray:
    """What the bundle's model says when called directly, without the service."""
    bundle = Bundle.load(run_dir)
    predictor = Predictor.from_bundle(bundle, threads=1)
    return predictor.predict_array(load_image(data, bundle.image_size))


def test_the_three_input_forms_give_the_same_answer(client, run_dir, photos, served):
    for name, data in photos.items():
        answers = [
            client.post("/v1/predict", files={"file": (name, data, "image/jpeg")}),
            client.post("/v1/predict", content=data, headers={"Content-Type": "image/jpeg"}),
            client.post("/v1/predict", json={"image_base64": base64.b64encode(data).decode()}),
        ]
        assert [a.status_code for a in answers] == [200, 200, 200]
        bodies = [a.json() for a in answers]
        assert (
            bodies[0]["probabilities"] == bodies[1]["probabilities"] == bodies[2]["probabilities"]
        )
        want = expected_probs(run_dir, data)
        body = bodies[0]
        assert body["label"] == served.labels[int(np.argmax(want))]
        assert body["score"] == pytest.approx(float(want.max()), abs=1e-6)
        for i, label in enumerate(served.labels):
            assert body["probabilities"][label] == pytest.approx(float(want[i]), abs=1e-6)
        assert body["model"]["name"] == served.name and len(body["model"]["version"]) == 12
        assert body["latency_ms"] > 0


def test_answer_lists_classes_most_probable_first_and_honours_top_k(client, photo):
    body = client.post("/v1/predict", content=photo, headers={"Content-Type": "image/jpeg"}).json()
    scores = list(body["probabilities"].values())
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) == pytest.approx(1.0, abs=1e-5)
    assert list(body["probabilities"])[0] == body["label"]
    top1 = client.post(
        "/v1/predict?top_k=1", content=photo, headers={"Content-Type": "image/jpeg"}
    ).json()
    assert list(top1["probabilities"]) == [body["label"]]


def test_data_url_and_octet_stream_are_accepted(client, photo):
    url = "data:image/jpeg;base64," + base64.b64encode(photo).decode()
    assert client.post("/v1/predict", json={"image_base64": url}).status_code == 200
    r = client.post(
        "/v1/predict", content=photo, headers={"Content-Type": "application/octet-stream"}
    )
    assert r.status_code == 200


def test_odd_but_valid_images_are_classified(client, odd_images, served):
    for name, (data, ctype) in odd_images.items():
        r = client.post("/v1/predict", content=data, headers={"Content-Type": ctype})
        assert r.status_code == 200, (name, r.json())
        assert r.json()["label"] in served.labels


def test_batch_answers_in_order_with_per_image_errors(client, run_dir, photos, served):
    names = list(photos)
    files = [
        ("files", (names[0], photos[names[0]], "image/jpeg")),
        ("files", ("broken.jpg", b"not an image at all", "image/jpeg")),
        ("files", (names[1], photos[names[1]], "image/jpeg")),
        ("files", ("empty.png", b"", "image/png")),
    ]
    r = client.post("/v1/predict/batch", files=files)
    assert r.status_code == 200
    results = r.json()["results"]
    assert [e["index"] for e in results] == [0, 1, 2, 3]
    assert [e["filename"] for e in results] == [names[0], "broken.jpg", names[1], "empty.png"]
    for i, name in ((0, names[0]), (2, names[1])):
        want = expected_probs(run_dir, photos[name])
        assert results[i]["probabilities"][served.labels[0]] == pytest.approx(
            float(want[0]), abs=1e-6
        )
        assert "error" not in results[i]
    assert (results[1]["error"], results[1]["status"]) == ("not_image", 422)
    assert (results[3]["error"], results[3]["status"]) == ("empty", 400)
    assert r.json()["model"]["name"] == served.name


def test_batch_limits_and_shapes(make_client, photo):
    client = make_client(max_batch_images=3)
    many = [("files", (f"{i}.jpg", photo, "image/jpeg")) for i in range(4)]
    r = client.post("/v1/predict/batch", files=many)
    assert (r.status_code, r.json()["error"]) == (413, "too_many_images")
    r = client.post("/v1/predict/batch", content=photo, headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 415
    r = client.post("/v1/predict/batch", files={"other": ("a.jpg", photo, "image/jpeg")})
    assert (r.status_code, r.json()["error"]) == (422, "missing_field")
    r = client.post(
        "/v1/predict/batch",
        data={"files": "text, not a file"},
        files={"file": ("a.jpg", photo, "image/jpeg")},
    )
    assert r.status_code == 200
    statuses = sorted(e.get("status", 200) for e in r.json()["results"])
    assert statuses == [200, 422]


def test_concurrent_requests_are_batched_together(make_client, run_dir, photos, served):
    client = make_client(batch_wait_ms=300, max_batch=32)
    data = list(photos.values())
    with ThreadPoolExecutor(12) as pool:
        answers = list(
            pool.map(
                lambda i: client.post(
                    "/v1/predict",
                    content=data[i % len(data)],
                    headers={"Content-Type": "image/jpeg"},
                ),
                range(12),
            )
        )
    assert all(a.status_code == 200 for a in answers)
    for i, a in enumerate(answers):  # each caller got the answer for its own image
        want = expected_probs(run_dir, data[i % len(data)])
        assert a.json()["probabilities"][served.labels[0]] == pytest.approx(
            float(want[0]), abs=1e-6
        )
    metrics = client.app.state.runtime.metrics
    assert metrics.images.value() == 12
    assert metrics.batch_size.count() <= 3  # 12 images in at most 3 model calls


def test_a_request_that_waits_too_long_gets_503_with_retry_after(make_client, photo):
    import dataclasses

    class SlowPredictor:
        def __init__(self, inner):
            self.inner = inner

        def predict_array(self, images):
            time.sleep(1.0)
            return self.inner.predict_array(images)

    client = make_client(request_timeout_s=0.2)
    store = client.app.state.runtime.store
    store.set_current(
        dataclasses.replace(store.current, predictor=SlowPredictor(store.current.predictor))
    )
    r = client.post("/v1/predict", content=photo, headers={"Content-Type": "image/jpeg"})
    assert (r.status_code, r.json()["error"]) == (503, "timeout")
    assert int(r.headers["retry-after"]) >= 1
    metrics = client.app.state.runtime.metrics
    assert metrics.rejected.value(reason="timeout") == 1


def test_a_lone_request_does_not_wait_for_company(make_client, photo):
    client = make_client(batch_wait_ms=3000)  # nobody else is on the way: no reason to wait
    start = time.perf_counter()
    r = client.post("/v1/predict", content=photo, headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200 and time.perf_counter() - start < 2.0
