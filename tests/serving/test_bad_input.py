"""Every bad input gets a clear 4xx JSON answer; never a 500; the service keeps answering."""

from __future__ import annotations

import base64

import pytest

ERROR_KEYS = {"error", "message", "status"}


def check_error(r, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert ERROR_KEYS <= set(body), body
    assert body["status"] == status and body["message"]
    if code is not None:
        assert body["error"] == code, body
    return body


def still_answers(client, photo) -> None:
    r = client.post("/v1/predict", content=photo, headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200


@pytest.mark.parametrize("form", ["raw", "multipart", "base64"])
def test_bad_images_in_every_form(client, photo, bad_images, form):
    for name, (data, status, code) in bad_images.items():
        if form == "raw":
            r = client.post("/v1/predict", content=data, headers={"Content-Type": "image/jpeg"})
        elif form == "multipart":
            r = client.post("/v1/predict", files={"file": ("x.jpg", data, "image/jpeg")})
        else:
            r = client.post("/v1/predict", json={"image_base64": base64.b64encode(data).decode()})
        if name == "empty" and form == "raw":
            status, code = 400, "empty"
        check_error(r, status, code)
    still_answers(client, photo)


@pytest.mark.parametrize("path", ["/v1/explain", "/v1/feedback?label=cats"])
def test_bad_images_on_other_endpoints(client, photo, bad_images, path):
    for _name, (data, status, code) in bad_images.items():
        r = client.post(path, content=data, headers={"Content-Type": "image/jpeg"})
        # explain answers 501 before decoding when Grad-CAM cannot run here at all
        if r.status_code != 501:
            check_error(r, status, code)
    still_answers(client, photo)


def test_request_shape_errors(client, photo):
    check_error(
        client.post("/v1/predict", content=b"hello", headers={"Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    check_error(
        client.post("/v1/predict", content=photo, headers={"Content-Type": "video/mp4"}),
        415,
        "unsupported_media_type",
    )
    check_error(client.post("/v1/predict"), 400, "empty")
    check_error(
        client.post("/v1/predict", files={"image": ("a.jpg", photo, "image/jpeg")}),
        422,
        "missing_field",
    )
    check_error(
        client.post(
            "/v1/predict",
            data={"file": "a text field"},
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        ),
        400,
    )
    check_error(client.post("/v1/predict", data={"file": "a text field"}), 415)
    r = client.post(
        "/v1/predict", content=b"--x\r\nbroken", headers={"Content-Type": "multipart/form-data"}
    )  # no boundary
    check_error(r, 400, "invalid_multipart")
    check_error(client.post("/v1/predict", json={"image": "abc"}), 422, "missing_field")
    check_error(
        client.post("/v1/predict", json={"image_base64": "not base64!"}), 422, "invalid_base64"
    )
    check_error(client.post("/v1/predict", json={"image_base64": "abc"}), 422, "invalid_base64")
    check_error(client.post("/v1/predict", json={"image_base64": 12}), 422, "invalid_request")
    check_error(client.post("/v1/predict", json=[1, 2]), 422, "invalid_request")
    check_error(
        client.post(
            "/v1/predict", content=b"{not json", headers={"Content-Type": "application/json"}
        ),
        400,
        "invalid_json",
    )
    check_error(
        client.post("/v1/predict?top_k=0", content=photo, headers={"Content-Type": "image/jpeg"}),
        422,
        "invalid_request",
    )
    check_error(
        client.post("/v1/predict?top_k=abc", content=photo, headers={"Content-Type": "image/jpeg"}),
        422,
        "invalid_request",
    )
    check_error(client.get("/v1/predict"), 405, "method_not_allowed")
    check_error(client.get("/no/such/page"), 404, "not_found")
    still_answers(client, photo)


def test_body_over_the_limit_is_413_declared_or_streamed(make_client, photo):
    client = make_client(max_body_bytes=len(photo) - 1)
    check_error(
        client.post("/v1/predict", content=photo, headers={"Content-Type": "image/jpeg"}),
        413,
        "too_large",
    )

    def chunks():  # no Content-Length: the limit counts bytes as they arrive
        for i in range(0, len(photo), 1024):
            yield photo[i : i + 1024]

    check_error(
        client.post("/v1/predict", content=chunks(), headers={"Content-Type": "image/jpeg"}),
        413,
        "too_large",
    )
    check_error(
        client.post("/v1/predict", files={"file": ("a.jpg", photo, "image/jpeg")}), 413, "too_large"
    )
    r = client.post(
        "/v2/models/any/infer",
        content=b"[" + b"0," * len(photo),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413 and list(r.json()) == ["error"]  # the v2 shape: one sentence
    small = photo[:100]
    r = client.post("/v1/predict", content=small, headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 422  # under the limit: judged on its content


def test_decompression_bomb_is_413(client, bad_images):
    data, _, _ = bad_images["png_bomb"]
    check_error(
        client.post("/v1/predict", content=data, headers={"Content-Type": "image/png"}),
        413,
        "too_large",
    )


def test_no_5xx_anywhere_and_metrics_count_the_errors(client, photo, bad_images):
    for data, _, _ in bad_images.values():
        client.post("/v1/predict", content=data, headers={"Content-Type": "image/jpeg"})
    text = client.get("/metrics").text
    assert 'littlevision_decode_errors_total{reason="not_image"}' in text
    assert 'status="5' not in text
