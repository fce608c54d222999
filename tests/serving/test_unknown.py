"""``unknown``/``novelty`` in /v1/predict, /v1/predict/batch, /v1/model, /metrics and the page;
drift figures; ``--collect`` and its caps. On a real trained bundle (``tiny_run``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from littlevision.serving import ServeSettings, create_app


@pytest.fixture(scope="module")
def digit_images(tmp_path_factory) -> list[bytes]:
    """Real scans of handwritten digits: neither cats nor dogs."""
    from littlevision.data.demo import write_digits_folder

    folder = write_digits_folder(tmp_path_factory.mktemp("digits") / "digits")
    files = sorted(folder.rglob("*.png"))
    return [f.read_bytes() for f in files[::40]][:40]


@pytest.fixture
def trained(tiny_run, tmp_path) -> Path:
    return Path(shutil.copytree(tiny_run, tmp_path / "run"))


@pytest.fixture
def open_client():
    clients = []

    def make(run: Path, **settings) -> TestClient:
        c = TestClient(create_app(run, ServeSettings(watch_interval_s=0, **settings)))
        c.__enter__()
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def _post(client, data: bytes):
    return client.post("/v1/predict", content=data, headers={"Content-Type": "image/png"})


def test_predictions_carry_unknown_and_novelty(trained, open_client, photos, digit_images):
    client = open_client(trained)
    cat = _post(client, next(iter(photos.values()))).json()
    digit = _post(client, digit_images[0]).json()
    assert cat["unknown"] is False and digit["unknown"] is True
    assert digit["novelty"] > cat["novelty"]
    assert digit["label"] in ("cats", "dogs")  # the argmax label stays
    files = [
        ("files", ("cat.jpg", next(iter(photos.values())))),
        ("files", ("d.png", digit_images[1])),
    ]
    results = client.post("/v1/predict/batch", files=files).json()["results"]
    assert [r["unknown"] for r in results] == [False, True]
    model = client.get("/v1/model").json()
    card = json.loads((trained / "card.json").read_text())
    assert model["unknown_threshold"] == pytest.approx(card["novelty"]["threshold"])


def test_an_old_bundle_serves_without_the_unknown_field(client, photo):
    body = client.post("/v1/predict", content=photo, headers={"Content-Type": "image/jpeg"}).json()
    assert "label" in body and "unknown" not in body and "novelty" not in body
    assert client.get("/v1/model").json()["unknown_threshold"] is None


def test_drift_moves_when_traffic_stops_looking_like_the_training_images(
    trained, open_client, digit_images
):
    client = open_client(trained)
    for data in digit_images[:35]:
        assert _post(client, data).status_code == 200
    drift = client.get("/v1/model").json()["drift"]
    assert drift["images"] == 35 and drift["unknown_rate"] > 0.8
    assert drift["drift_novelty"] > 0.8 and drift["drift"] >= drift["drift_novelty"]
    text = client.get("/metrics").text
    samples = dict(x.split(" ", 1) for x in text.splitlines() if not x.startswith("#"))
    assert float(samples["littlevision_unknown_total"]) == pytest.approx(drift["unknown_rate"] * 35)
    assert float(samples["littlevision_drift"]) > 0.8


def test_the_page_shows_the_unknown_flag_and_the_version():
    from littlevision.serving.routers.web import STATIC_DIR

    page = (STATIC_DIR / "index.html").read_text()
    script = (STATIC_DIR / "app.js").read_text()
    assert 'id="unknown"' in page
    assert "Not sure this is any of:" in script and "run_version" in script


def test_collect_keeps_uncertain_images_within_the_count_cap(trained, open_client, digit_images):
    client = open_client(trained, collect=True, collect_max_images=3)
    for data in digit_images[:6]:
        assert _post(client, data).status_code == 200
    _post(client, digit_images[0])  # the same image again: stored once
    client.__exit__(None, None, None)  # waits for the writes
    folder = trained / "collected"
    images = [f for f in folder.iterdir() if f.suffix == ".png"]
    assert len(images) == 3
    assert all((folder / f"{f.stem}.json").is_file() for f in images)
    assert not list(folder.glob(".*"))  # no temporary file left


def test_collect_never_passes_the_byte_cap(trained, open_client, digit_images):
    cap = 2 * (len(digit_images[0]) + 600)
    client = open_client(trained, collect=True, collect_max_bytes=cap)
    for data in digit_images[:8]:
        _post(client, data)
    client.__exit__(None, None, None)
    folder = trained / "collected"
    total = sum(f.stat().st_size for f in folder.iterdir()) if folder.exists() else 0
    assert 0 < total <= cap


def test_nothing_is_kept_without_collect_or_when_sure(trained, open_client, photos, digit_images):
    client = open_client(trained)
    _post(client, digit_images[0])
    client2 = open_client(trained, collect=True)
    _post(client2, next(iter(photos.values())))  # a confident cat
    client.__exit__(None, None, None)
    client2.__exit__(None, None, None)
    assert not (trained / "collected").exists() or not any((trained / "collected").iterdir())
