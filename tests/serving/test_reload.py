"""/v1/model and hot reload: a new model is swapped in atomically; a broken one never serves."""

from __future__ import annotations

import shutil
import time

import numpy as np

from .conftest import make_bundle

FLIPPED = np.array([[-4.0, 4.0], [0.0, 0.0], [4.0, -4.0]], np.float32)  # the opposite opinions


def direct(run_dir, photo) -> dict:
    """What the bundle now on disk answers, called without the service."""
    from littlevision.bundle import Bundle
    from littlevision.data.decode import load_image
    from littlevision.inference import Predictor

    bundle = Bundle.load(run_dir)
    probs = Predictor.from_bundle(bundle, threads=1).predict_array(
        load_image(photo, bundle.image_size)
    )
    return {label: float(p) for label, p in zip(bundle.labels, probs, strict=True)}


def answered_by_new_model(answer: dict, run_dir, photo) -> bool:
    want = direct(run_dir, photo)
    return all(abs(answer["probabilities"][k] - v) < 1e-5 for k, v in want.items())


def predict(client, photo) -> dict:
    r = client.post("/v1/predict", content=photo, headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200, r.text
    return r.json()


def test_model_info(client, served):
    info = client.get("/v1/model").json()
    assert info["name"] == served.name and info["version"] == served.version
    assert info["labels"] == served.labels and info["image_size"] == served.image_size
    assert info["card"] == served.card and info["metrics"] == served.metrics
    assert info["last_reload_error"] is None
    assert info["loaded_at"] <= time.time()
    assert info["backbone"] == served.card["backbone"] and info["cost"] == served.card["cost"]


def test_model_info_says_which_backbone_and_its_cost_per_image(tiny_run, tmp_path):
    from fastapi.testclient import TestClient

    from littlevision.serving import ServeSettings, create_app

    run = shutil.copytree(tiny_run, tmp_path / "run")
    with TestClient(create_app(run, ServeSettings(watch_interval_s=0))) as client:
        info = client.get("/v1/model").json()
    assert info["backbone"] == "lite0"
    cost = info["cost"]
    assert cost["backbone"] == "lite0" and cost["image_size"] == info["image_size"]
    assert 3e8 < cost["multiply_adds_per_image"] < 5e8  # EfficientNet-Lite0: ~0.39 G
    assert cost["ms_per_image"] > 0 and cost["images_per_s"] > 0


def test_reload_swaps_in_the_new_model(client, run_dir, photo):
    before = predict(client, photo)
    make_bundle(run_dir, weights=FLIPPED)
    r = client.post("/v1/reload")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["reloaded"] and body["previous"] == before["model"]["version"]
    assert body["version"] != body["previous"]
    after = predict(client, photo)
    assert after["model"]["version"] == body["version"]
    assert answered_by_new_model(after, run_dir, photo)
    assert client.get("/v1/model").json()["version"] == body["version"]
    metrics = client.get("/metrics").text
    name = after["model"]["name"]
    assert f'littlevision_model_info{{name="{name}",version="{body["version"]}"}} 1' in metrics
    assert before["model"]["version"] not in metrics
    assert 'littlevision_reloads_total{result="success"} 1' in metrics


def test_a_broken_model_is_refused_and_the_old_one_keeps_serving(client, run_dir, photo):
    before = predict(client, photo)
    (run_dir / "model.onnx").write_bytes(b"this is not an onnx model")
    r = client.post("/v1/reload")
    assert r.status_code == 409 and r.json()["error"] == "reload_failed"
    assert before["model"]["version"] in r.json()["message"]
    after = predict(client, photo)
    assert after["model"] == before["model"] and after["probabilities"] == before["probabilities"]
    info = client.get("/v1/model").json()
    assert info["version"] == before["model"]["version"]
    assert "ONNX" in info["last_reload_error"]
    assert 'littlevision_reloads_total{result="failure"} 1' in client.get("/metrics").text


def test_a_model_that_fails_its_warm_up_is_refused(client, run_dir, photo):
    before = predict(client, photo)
    # three labels but a model with two outputs: loads, then fails the warm-up check
    make_bundle(
        run_dir,
        labels=("cats", "dogs", "birds"),
        weights=np.array([[1.0, -1.0], [0, 0], [-1.0, 1.0]], np.float32),
    )
    r = client.post("/v1/reload")
    assert r.status_code == 409
    assert "labels.json names 3 classes" in r.json()["message"]
    assert predict(client, photo)["model"] == before["model"]
    # a good model afterwards is taken, and the error is cleared
    make_bundle(run_dir, weights=FLIPPED)
    assert client.post("/v1/reload").status_code == 200
    assert client.get("/v1/model").json()["last_reload_error"] is None


def test_a_missing_bundle_file_is_refused(client, run_dir, photo):
    before = predict(client, photo)
    (run_dir / "labels.json").unlink()
    r = client.post("/v1/reload")
    assert r.status_code == 409 and "labels.json" in r.json()["message"]
    assert predict(client, photo)["model"] == before["model"]


def test_a_changed_bundle_on_disk_is_picked_up_by_itself(make_client, run_dir, photo):
    client = make_client(watch_interval_s=0.05)
    before = predict(client, photo)
    make_bundle(run_dir, weights=FLIPPED)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if predict(client, photo)["model"]["version"] != before["model"]["version"]:
            break
        time.sleep(0.05)
    after = predict(client, photo)
    assert after["model"]["version"] != before["model"]["version"]
    assert answered_by_new_model(after, run_dir, photo)


def test_a_broken_bundle_on_disk_is_not_retried_until_it_changes(make_client, run_dir, photo):
    client = make_client(watch_interval_s=0.05)
    before = predict(client, photo)
    (run_dir / "model.onnx").write_bytes(b"garbage")
    runtime = client.app.state.runtime
    deadline = time.monotonic() + 10
    while runtime.metrics.reloads.value(result="failure") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # several more polls
    assert runtime.metrics.reloads.value(result="failure") == 1
    assert predict(client, photo)["model"] == before["model"]


def test_requests_during_a_reload_are_all_answered(make_client, run_dir, photo):
    from concurrent.futures import ThreadPoolExecutor

    client = make_client()
    make_bundle(run_dir, weights=FLIPPED)
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(predict, client, photo) for _ in range(40)]
        reload = pool.submit(client.post, "/v1/reload")
        answers = [f.result() for f in futures]
    assert reload.result().status_code == 200
    versions = {a["model"]["version"] for a in answers}
    assert 1 <= len(versions) <= 2  # each answer came from one whole model, old or new
