"""The adversarial probe's corpus as a regression suite (issue 12): about 150 bad inputs --
bodies, JSON shapes, tensors, labels, headers, multipart, disconnects, slow clients -- against
one real uvicorn process on 127.0.0.1. Every answer is the expected 4xx (never a 5xx), the
server counts no 5xx, and it still answers a good request at the end. Bounded: each request
has a 15 s timeout and the whole corpus runs in well under a minute on 2 busy cores.
"""

from __future__ import annotations

import base64
import json
import random
import shutil
import socket
import struct
import time
import zlib

import httpx
import pytest

from .server_process import Server

LIMIT_MB = 1


@pytest.fixture(scope="module")
def live(bundle_source, tmp_path_factory):
    run = shutil.copytree(bundle_source, tmp_path_factory.mktemp("probe") / "run")
    server = Server(
        run,
        "--no-access-log",
        "--max-body-mb",
        str(LIMIT_MB),
        "--body-timeout-s",
        "3",
        "--header-timeout-s",
        "2",
        "--max-queue",
        "16",
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def model(live):
    return httpx.get(live.url + "/v1/model", timeout=10).json()


def _png_bomb(w: int, h: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def raw(body: bytes, ctype: str | None = "image/jpeg") -> dict:
    return {"content": body, "headers": {"Content-Type": ctype} if ctype else {}}


def js(obj) -> dict:
    return {"content": json.dumps(obj).encode(), "headers": {"Content-Type": "application/json"}}


def bodies(photo: bytes) -> list[tuple[str, dict, set[int]]]:
    """Bad image bodies for /v1/predict: (name, httpx kwargs, allowed statuses)."""
    rng = random.Random(12)
    cases = [
        ("empty", raw(b""), {400}),
        ("no content type, empty", raw(b"", None), {400}),
        ("no content type, bytes", raw(photo, None), {415}),
        ("text", raw(b"hello\n" * 40), {422}),
        ("html", raw(b"<html><script>alert(1)</script></html>"), {422}),
        ("svg", raw(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"), {422}),
        ("nul bytes", raw(b"\0" * 5000), {422}),
        ("truncated jpeg", raw(photo[: len(photo) // 2]), {422}),
        ("jpeg header only", raw(photo[:200]), {422}),
        ("jpeg magic only", raw(b"\xff\xd8\xff"), {422}),
        ("png magic only", raw(b"\x89PNG\r\n\x1a\n", "image/png"), {422}),
        ("gif header only", raw(b"GIF89a\x10\x00\x10\x00", "image/gif"), {422}),
        ("png bomb", raw(_png_bomb(40000, 40000), "image/png"), {413}),
        ("png 1x huge", raw(_png_bomb(1, 2**31 - 1), "image/png"), {413, 422}),
        ("over the limit", raw(b"\xff" * (LIMIT_MB * 1024 * 1024 + 10)), {413}),
        ("text/plain", raw(photo, "text/plain"), {415}),
        ("application/xml", raw(b"<a/>", "application/xml"), {415}),
        ("content type garbage", raw(photo, "%%%/;;;"), {415}),
        ("multipart without boundary", raw(b"--x\r\n", "multipart/form-data"), {400}),
        (
            "multipart wrong boundary",
            raw(b"--x\r\n\r\n--x--", "multipart/form-data; boundary=y"),
            {400, 422},
        ),
        (
            "multipart truncated",
            raw(
                b'--b\r\nContent-Disposition: form-data; name="file"',
                "multipart/form-data; boundary=b",
            ),
            {400, 422},
        ),
    ]
    for n in (1, 17, 1000, 60000):
        cases.append(
            (f"random {n} bytes", raw(bytes(rng.getrandbits(8) for _ in range(n))), {400, 413, 422})
        )
    for i in range(8):  # a real photo with a few bytes flipped: an image or a clean 4xx
        data = bytearray(photo)
        for _ in range(8):
            data[rng.randrange(200, len(data))] = rng.getrandbits(8)
        cases.append((f"mutated photo {i}", raw(bytes(data)), {200, 422}))
    return cases


def json_shapes() -> list[tuple[str, dict, set[int]]]:
    deep = b'{"image_base64": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    return [
        ("json list", js([1, 2]), {422}),
        ("json number", js(1), {422}),
        ("json string", js("x"), {422}),
        ("json null", js(None), {422}),
        ("json empty object", js({}), {422}),
        ("image_base64 number", js({"image_base64": 1}), {422}),
        ("image_base64 null", js({"image_base64": None}), {422}),
        ("image_base64 list", js({"image_base64": []}), {422}),
        ("image_base64 object", js({"image_base64": {}}), {422}),
        ("image_base64 bad", js({"image_base64": "@@@"}), {422}),
        ("image_base64 empty", js({"image_base64": ""}), {400}),
        ("data url empty", js({"image_base64": "data:,"}), {400}),
        ("base64 of text", js({"image_base64": base64.b64encode(b"hi").decode()}), {422}),
        (
            "nested 900",
            {
                "content": b'{"image_base64": ' + b"[" * 900 + b"]" * 900 + b"}",
                "headers": {"Content-Type": "application/json"},
            },
            {400, 422},
        ),
        ("nested 5000", {"content": deep, "headers": {"Content-Type": "application/json"}}, {400}),
        ("malformed", raw(b"{nope", "application/json"), {400}),
        ("invalid utf-8", raw(b'{"image_base64": "\xff\xfe"}', "application/json"), {400}),
        ("lone surrogate", raw(b'{"image_base64": "\\ud800"}', "application/json"), {422}),
        ("NaN", raw(b'{"image_base64": NaN}', "application/json"), {400, 422}),
        ("10k keys", js({f"k{i}": i for i in range(10000)}), {422}),
        ("vnd+json", raw(b"{}", "application/vnd.api+json"), {422}),
    ]


def test_bad_bodies_and_json_shapes_are_4xx_everywhere(live, photo):
    wrong = []
    with httpx.Client(base_url=live.url, timeout=15) as client:
        for name, kwargs, allowed in bodies(photo) + json_shapes():
            for path in ("/v1/predict", "/v1/explain", "/v1/feedback?label=cats"):
                status = client.post(path, **kwargs).status_code
                ok = allowed | ({501} if path == "/v1/explain" else set())
                if path.startswith("/v1/feedback"):
                    ok = ok | {201, 200}
                if status not in ok or status >= 500 and status != 501:
                    wrong.append((name, path, status))
    assert not wrong, wrong


def tensors(size: int) -> list[tuple[str, dict, set[int]]]:
    def t(**change):
        tensor = {
            "name": "image",
            "shape": [1, size, size, 3],
            "datatype": "UINT8",
            "data": [0] * (size * size * 3),
        }
        tensor.update(change)
        return js({"inputs": [tensor]})

    n = size * size * 3
    return [
        ("wrong name", t(name="x" * 10000), {400}),
        ("fp32", t(datatype="FP32"), {400}),
        ("datatype number", t(datatype=1), {422}),
        ("shape wrong", t(shape=[1, 2, 3]), {400}),
        ("shape N=0", t(shape=[0, size, size, 3]), {400}),
        ("shape N huge", t(shape=[10**9, size, size, 3]), {413}),
        ("shape negative", t(shape=[-1, size, size, 3]), {400}),
        ("shape huge list", t(shape=list(range(10000))), {400}),
        ("data short", t(data=[1, 2, 3]), {400}),
        ("data floats", t(data=[0.5] * n), {400}),
        ("data strings", t(data=["a"] * n), {400}),
        ("data bools", t(data=[True] * n), {400}),
        ("data 256", t(data=[256] * n), {400}),
        ("data -1", t(data=[-1] * n), {400}),
        ("data 1e30", t(data=[10**30] * n), {400}),
        ("data null", t(data=None), {422}),
        ("data uneven", t(data=[[1, 2], [3]]), {400}),
        (
            "data deep",
            {
                "content": b'{"inputs":[{"name":"image","shape":[1],"datatype":"UINT8","data":'
                + b"[" * 3000
                + b"]" * 3000
                + b"}]}",
                "headers": {"Content-Type": "application/json"},
            },
            {400},
        ),
        ("no inputs", js({"inputs": []}), {422}),
        (
            "two inputs",
            js({"inputs": [{"name": "image", "shape": [1], "datatype": "UINT8", "data": [1]}] * 2}),
            {422},
        ),
        (
            "wrong output",
            js(
                {
                    "inputs": [
                        {
                            "name": "image",
                            "shape": [1, size, size, 3],
                            "datatype": "UINT8",
                            "data": [0] * n,
                        }
                    ],
                    "outputs": [{"name": "logits"}],
                }
            ),
            {400},
        ),
        ("not json", raw(b"{", "application/json"), {400}),
        ("text/plain", raw(b"{}", "text/plain"), {415}),
    ]


def test_bad_tensors_are_4xx(live, model):
    wrong = []
    with httpx.Client(base_url=live.url, timeout=15) as client:
        for name, kwargs, allowed in tensors(model["image_size"]):
            status = client.post(f"/v2/models/{model['name']}/infer", **kwargs).status_code
            if status not in allowed:
                wrong.append((name, status))
        status = client.post(
            "/v2/models/other/infer", **tensors(model["image_size"])[0][1]
        ).status_code
        if status != 404:
            wrong.append(("unknown model", status))
    assert not wrong, wrong


def test_bad_labels_and_multipart_are_4xx(live, photo, model):
    label = model["labels"][0]
    f = ("a.jpg", photo, "image/jpeg")
    cases = [
        ("no label", {"files": {"file": f}}, {422}),
        ("unknown label", {"files": {"file": f}, "data": {"label": "zebra"}}, {422}),
        ("label ../x", {"files": {"file": f}, "data": {"label": "../x"}}, {422}),
        ("label empty", {"files": {"file": f}, "data": {"label": ""}}, {422}),
        ("label nul", {"files": {"file": f}, "data": {"label": "a\0b"}}, {422}),
        ("label 100 KB", {"files": {"file": f}, "data": {"label": "x" * 100_000}}, {422}),
        (
            "label as file",
            {"files": {"file": f, "label": ("l.txt", label.encode(), "text/plain")}},
            {422},
        ),
        (
            "label number json",
            js({"image_base64": base64.b64encode(photo).decode(), "label": 3}),
            {422},
        ),
        (
            "label list json",
            js({"image_base64": base64.b64encode(photo).decode(), "label": [label]}),
            {422},
        ),
        ("file as text", {"data": {"file": "not a file", "label": label}}, {415, 422}),
        (
            "empty file",
            {"files": {"file": ("a.jpg", b"", "image/jpeg")}, "data": {"label": label}},
            {400},
        ),
        (
            "filename traversal",
            {"files": {"file": ("../../etc/passwd", b"x", "image/jpeg")}, "data": {"label": label}},
            {422},
        ),
        ("two files", {"files": [("file", f), ("file", f)], "data": {"label": label}}, {413}),
    ]
    wrong = []
    with httpx.Client(base_url=live.url, timeout=15) as client:
        for name, kwargs, allowed in cases:
            status = client.post("/v1/feedback", **kwargs).status_code
            if status not in allowed:
                wrong.append((name, status))
        many = [("files", f)] * 40
        status = client.post("/v1/predict/batch", files=many).status_code
        if status != 413:
            wrong.append(("40 files in a batch", status))
        status = client.post(
            "/v1/predict/batch", content=photo, headers={"Content-Type": "image/jpeg"}
        ).status_code
        if status != 415:
            wrong.append(("batch raw body", status))
    assert not wrong, wrong


def _exchange(port: int, data: bytes, wait: float = 5.0) -> bytes:
    """Send raw bytes, return whatever the server answers before closing or ``wait`` s."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR) if data.endswith(b"\r\n\r\n") else None
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


def test_malformed_http_is_answered_or_closed_never_5xx(live):
    head = "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
    cases = [
        head + "Content-Length: abc\r\n\r\n",
        head + "Content-Length: -5\r\n\r\n",
        head + "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        head + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        head + "Transfer-Encoding: chunked\r\n\r\nzz\r\n",
        head + "X-Big: " + "a" * 100_000 + "\r\n\r\n",
        "GARBAGE\r\n\r\n",
        "POST /v1/predict HTTP/9.9\r\n\r\n",
        "POST /v1/%00%ff HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /" + "a" * 70_000 + " HTTP/1.1\r\nHost: x\r\n\r\n",
    ]
    for data in cases:
        answer = _exchange(live.port, data.encode("latin-1"))
        status = answer.split(b" ", 2)[1] if answer.startswith(b"HTTP/1.1 ") else b""
        assert not status.startswith(b"5"), (data[:80], answer[:200])


def _metrics_statuses(url: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("littlevision_requests_total{"):
            status = line.split('status="')[1].split('"')[0]
            out[status] = out.get(status, 0) + float(line.split()[-1])
    return out


def test_disconnects_and_slow_clients_then_still_serving(live, photo):
    from concurrent.futures import ThreadPoolExecutor

    before = _metrics_statuses(live.url).get("499", 0)
    head = (
        "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
        f"Content-Length: {len(photo)}\r\n\r\n"
    ).encode()
    for _ in range(5):  # hang up mid-upload
        with socket.create_connection(("127.0.0.1", live.port), timeout=5) as s:
            s.sendall(head + photo[:500])
            time.sleep(0.1)

    def trickle(data: bytes, seconds: float, prefix: bytes = b"") -> float:
        """Send ``prefix``, then ``data`` a byte per 0.2 s; seconds until the server closed."""
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", live.port), timeout=5) as s:
            s.sendall(prefix)
            s.settimeout(0.2)
            for i in range(len(data)):
                if time.monotonic() - t0 > seconds:
                    break
                try:
                    s.sendall(data[i : i + 1])
                    if s.recv(65536) == b"":
                        break
                except TimeoutError:
                    continue  # nothing from the server yet
                except OSError:
                    break
        return time.monotonic() - t0

    with ThreadPoolExecutor(6) as pool:
        slow_bodies = [pool.submit(trickle, photo, 10, head) for _ in range(3)]
        slow_heads = [pool.submit(trickle, head, 10) for _ in range(3)]
        time.sleep(0.5)
        fast = httpx.post(
            live.url + "/v1/predict",
            content=photo,
            headers={"Content-Type": "image/jpeg"},
            timeout=15,
        )
        held = [f.result() for f in slow_bodies + slow_heads]
    assert fast.status_code == 200
    assert max(held) < 8, held  # cut off by --body-timeout-s 3 / --header-timeout-s 2
    deadline = time.monotonic() + 10
    while _metrics_statuses(live.url).get("499", 0) < before + 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    statuses = _metrics_statuses(live.url)
    assert statuses.get("499", 0) >= before + 5, statuses
    assert statuses.get("408", 0) >= 1, (statuses, held)


def test_no_5xx_was_ever_counted_and_the_server_still_answers(live, photo):
    # runs last in this module (pytest keeps file order)
    statuses = _metrics_statuses(live.url)
    fives = {k: v for k, v in statuses.items() if k.startswith("5") and k != "501"}
    assert not fives, statuses
    r = httpx.post(
        live.url + "/v1/predict", content=photo, headers={"Content-Type": "image/jpeg"}, timeout=15
    )
    assert r.status_code == 200
    assert live.proc.poll() is None
