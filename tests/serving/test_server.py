"""A real uvicorn process on a free loopback port: start-up, readiness, limits, SIGTERM drain."""

from __future__ import annotations

import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on ``port``, from /proc/net/tcp (IPv4)."""
    out = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr, p = local.split(":")
        if int(p, 16) == port and state == "0A":
            out.add(socket.inet_ntoa(bytes.fromhex(addr)[::-1]))
    return out


def small_jpeg(photo: bytes) -> bytes:
    """The photo re-encoded at 160 px, to stay under the test server's small body limit."""
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(photo))
    img.thumbnail((160, 160))
    buffer = io.BytesIO()
    img.convert("RGB").save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def post_image(url: str, data: bytes, timeout: float = 30) -> httpx.Response:
    return httpx.post(
        url + "/v1/predict", content=data, headers={"Content-Type": "image/jpeg"}, timeout=timeout
    )


def in_flight(url: str) -> float:
    for line in httpx.get(url + "/metrics", timeout=5).text.splitlines():
        if line.startswith("littlevision_requests_in_flight "):
            return float(line.split()[1]) - 1  # not counting this /metrics request
    raise AssertionError("no requests_in_flight in /metrics")


def slow_upload(url: str, data: bytes, pause_s: float) -> httpx.Response:
    """A client that sends half its image, pauses, then the rest: accepted, not yet finished."""

    def body():
        yield data[: len(data) // 2]
        time.sleep(pause_s)
        yield data[len(data) // 2 :]

    return httpx.post(
        url + "/v1/predict", content=body(), headers={"Content-Type": "image/jpeg"}, timeout=30
    )


def test_start_ready_answer_and_drain_on_sigterm(server, photo):
    s = server()
    if Path("/proc/net/tcp").exists():
        assert listening_addresses(s.port) == {"127.0.0.1"}
    assert httpx.get(s.url + "/healthz").json() == {"status": "ok"}
    assert post_image(s.url, photo).status_code == 200
    # Six requests accepted and still uploading when SIGTERM arrives: all must be answered
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(slow_upload, s.url, photo, 1.5) for _ in range(6)]
        deadline = time.monotonic() + 10
        while in_flight(s.url) < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert in_flight(s.url) == 6
        s.proc.send_signal(signal.SIGTERM)
        answers = [f.result() for f in futures]
    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
    assert s.proc.wait(15) == 0
    log = s.output()
    assert "Traceback" not in log
    with pytest.raises(httpx.ConnectError):  # no longer accepting
        httpx.get(s.url + "/healthz", timeout=2)


def test_real_socket_limits_overload_and_bad_input(server, photo, bad_images):
    s = server(
        "--max-queue",
        "2",
        "--max-batch",
        "1",
        "--batch-wait-ms",
        "0",
        "--max-body-mb",
        "0.05",
        "--no-access-log",
    )
    # a body over the limit gets a clean 413 JSON, not a reset connection
    r = httpx.post(
        s.url + "/v1/predict",
        content=b"\xff" * 400_000,
        headers={"Content-Type": "image/jpeg"},
        timeout=30,
    )
    assert (r.status_code, r.json()["error"]) == (413, "too_large")
    small = small_jpeg(photo)
    assert len(small) < 50_000
    # overload: 24 at once against a queue of 2 -> some answered, the rest 429 + Retry-After
    with ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(lambda _: post_image(s.url, small), range(24)))
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {200, 429}, statuses
    assert 200 in statuses and 429 in statuses
    assert all(int(a.headers["retry-after"]) >= 1 for a in answers if a.status_code == 429)
    # bad input over a real socket: 4xx, never 5xx, and the server still answers
    for data, status, _ in bad_images.values():
        assert post_image(s.url, data).status_code == status
    assert post_image(s.url, small).status_code == 200
    metrics = httpx.get(s.url + "/metrics").text
    assert 'status="5' not in metrics
    assert 'littlevision_rejected_total{reason="queue_full"}' in metrics


def test_start_up_failures_exit_with_a_clear_message(server, run_dir):
    bad = server("--api-key-env", "LV_TEST_KEY_UNSET", ready=False)
    assert bad.proc.wait(30) == 2
    assert "LV_TEST_KEY_UNSET" in bad.output()
    (run_dir / "model.onnx").write_bytes(b"garbage")
    broken = server(ready=False)
    assert broken.proc.wait(30) != 0
    assert "Could not load the ONNX model" in broken.output()


def test_the_main_cli_serve_verb(server, photo, tmp_path):
    """``littlevision serve RUN`` (the Typer verb registered by littlevision.serving.cli)."""
    s = server("--max-batch", "8", entry=("littlevision.cli", "serve"))
    assert post_image(s.url, photo).status_code == 200
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(15) == 0
    from typer.testing import CliRunner

    from littlevision.cli import app

    result = CliRunner().invoke(app, ["serve", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "No such run folder" in result.output
