"""/healthz, /readyz, /metrics, and the start-up contract (model loaded in lifespan, not before)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from littlevision.errors import UserError
from littlevision.serving import ServeSettings, create_app
from littlevision.serving.metrics import Counter, Gauge, Histogram, Registry


def test_health_and_readiness(client, served):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True and ready.json()["model"]["name"] == served.name


def test_the_model_loads_in_the_lifespan_not_at_create_app(run_dir, photo):
    app = create_app(run_dir, ServeSettings(watch_interval_s=0))
    runtime = app.state.runtime
    assert runtime.store.current is None and not runtime.ready
    with TestClient(app) as client:
        assert runtime.ready
        assert client.get("/readyz").status_code == 200
    assert not runtime.ready  # stopped with the lifespan


def test_not_ready_answers_503_with_retry_after(run_dir, photo):
    app = create_app(run_dir, ServeSettings(watch_interval_s=0))
    client = TestClient(app, raise_server_exceptions=False)  # lifespan not entered
    r = client.get("/readyz")
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    r = client.post("/v1/predict", content=photo, headers={"Content-Type": "image/jpeg"})
    assert (r.status_code, r.json()["error"]) == (503, "not_ready")
    assert client.get("/v2/health/ready").status_code == 503
    assert client.get("/healthz").status_code == 200


def test_a_wrong_run_folder_fails_at_create_app(tmp_path):
    with pytest.raises(UserError, match="not a littlevision run"):
        create_app(tmp_path)
    with pytest.raises(UserError, match="No such run folder"):
        create_app(tmp_path / "nope")


def test_a_model_that_cannot_load_fails_the_start_up(run_dir):
    (run_dir / "model.onnx").write_bytes(b"garbage")
    app = create_app(run_dir, ServeSettings(watch_interval_s=0))
    with pytest.raises(UserError, match="Could not load the ONNX model"):
        with TestClient(app):
            pass
    assert "ONNX" in app.state.runtime.startup_error


def test_metrics_are_prometheus_text(client, photo, served):
    client.post("/v1/predict", content=photo, headers={"Content-Type": "image/jpeg"})
    client.post("/v1/predict", content=b"junk", headers={"Content-Type": "image/jpeg"})
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    for name in (
        "littlevision_requests_total",
        "littlevision_request_duration_seconds",
        "littlevision_batch_size",
        "littlevision_queue_depth",
        "littlevision_model_info",
        "littlevision_inference_duration_seconds",
    ):
        assert f"# TYPE {name} " in text
    assert (
        'littlevision_requests_total{endpoint="/v1/predict",method="POST",status="200"} 1' in text
    )
    assert (
        'littlevision_requests_total{endpoint="/v1/predict",method="POST",status="422"} 1' in text
    )
    assert 'littlevision_batch_size_bucket{le="1"} 1' in text
    assert "littlevision_queue_depth 0" in text
    assert re.search(
        rf'littlevision_model_info\{{name="{served.name}",version="\w{{12}}"\}} 1', text
    )
    sample = re.compile(r"^[a-z_]+(\{[^}]*\})? [-+0-9.eInf]+$")
    for line in text.splitlines():
        assert line.startswith("# ") or sample.match(line), line


def test_unmatched_paths_do_not_explode_metric_cardinality(client):
    for i in range(5):
        client.get(f"/random/{i}")
    text = client.get("/metrics").text
    assert 'endpoint="unmatched",method="GET",status="404"} 5' in text
    assert "/random/" not in text


def test_metric_primitives():
    r = Registry()
    c = r.register(Counter("c_total", "a counter", ("k",)))
    g = r.register(Gauge("g", "a gauge"))
    h = r.register(Histogram("h_seconds", "a histogram", (0.1, 1.0)))
    c.inc(k='quote" and \\ and\nnewline')
    g.set(3)
    g.dec()
    for v in (0.05, 0.5, 5.0):
        h.observe(v)
    text = r.render()
    assert 'c_total{k="quote\\" and \\\\ and\\nnewline"} 1' in text
    assert "g 2" in text
    assert 'h_seconds_bucket{le="0.1"} 1' in text and 'h_seconds_bucket{le="1"} 2' in text
    assert 'h_seconds_bucket{le="+Inf"} 3' in text and "h_seconds_count 3" in text
    with pytest.raises(ValueError, match="already registered"):
        r.register(Gauge("g", "again"))
    with pytest.raises(ValueError, match="Expected labels"):
        c.inc(other="x")


def test_serving_predictions_never_import_tensorflow(run_dir, photo, tmp_path):
    """TensorFlow is slow to import and big: only /v1/explain may load it, on first use."""
    import subprocess
    import sys

    (tmp_path / "photo.jpg").write_bytes(photo)
    code = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "from littlevision.serving import ServeSettings, create_app\n"
        f"app = create_app({str(run_dir)!r}, ServeSettings(watch_interval_s=0))\n"
        "with TestClient(app) as c:\n"
        f"    data = open({str(tmp_path / 'photo.jpg')!r}, 'rb').read()\n"
        "    r = c.post('/v1/predict', content=data, headers={'Content-Type': 'image/jpeg'})\n"
        "    assert r.status_code == 200, r.text\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["False", "False"]
