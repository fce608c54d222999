"""/v1/feedback and the API key: corrections land in RUN/feedback/<label>/<sha256>.<ext>, only there."""

from __future__ import annotations

import base64
import hashlib

import pytest


def files_under(path):
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())


def test_feedback_is_saved_by_content_hash_under_its_label(client, run_dir, photo):
    digest = hashlib.sha256(photo).hexdigest()
    r = client.post(
        "/v1/feedback",
        files={"file": ("../../evil name.jpg", photo, "image/jpeg")},
        data={"label": "dogs"},
    )
    assert r.status_code == 201, r.text
    assert r.json() == {
        "saved": True,
        "label": "dogs",
        "sha256": digest,
        "path": f"feedback/dogs/{digest}.jpg",
    }
    assert (run_dir / "feedback" / "dogs" / f"{digest}.jpg").read_bytes() == photo
    # the same image again: stored once
    again = client.post(
        "/v1/feedback", files={"file": ("x.jpg", photo, "image/jpeg")}, data={"label": "dogs"}
    )
    assert again.status_code == 200 and again.json()["saved"] is False
    assert files_under(run_dir / "feedback") == [f"dogs/{digest}.jpg"]


def test_feedback_in_json_and_raw_forms(client, run_dir, odd_images):
    png, _ = odd_images["png_rgba"]
    r = client.post(
        "/v1/feedback", json={"image_base64": base64.b64encode(png).decode(), "label": "cats"}
    )
    assert r.status_code == 201 and r.json()["path"].endswith(".png")
    webp, _ = odd_images["webp"]
    r = client.post("/v1/feedback?label=dogs", content=webp, headers={"Content-Type": "image/webp"})
    assert r.status_code == 201 and r.json()["path"].endswith(".webp")
    # the extension follows the content, not the client's content type or name
    r = client.post(
        "/v1/feedback", files={"file": ("photo.jpg", png, "image/jpeg")}, data={"label": "dogs"}
    )
    assert r.json()["path"].endswith(".png")
    assert len(files_under(run_dir / "feedback")) == 3


@pytest.mark.parametrize("label", ["birds", "../cats", "cats/../../x", "", "CATS", "/etc/passwd"])
def test_only_the_models_own_labels_are_accepted(client, run_dir, photo, label):
    r = client.post(
        "/v1/feedback", files={"file": ("a.jpg", photo, "image/jpeg")}, data={"label": label}
    )
    assert r.status_code == 422 and r.json()["error"] in ("unknown_label", "missing_field")
    assert not (run_dir / "feedback").exists()
    assert not list(run_dir.parent.glob("x*")) and not (run_dir.parent / "cats").exists()


def test_missing_label_and_bad_image(client, run_dir, photo):
    r = client.post("/v1/feedback", files={"file": ("a.jpg", photo, "image/jpeg")})
    assert (r.status_code, r.json()["error"]) == (422, "missing_field")
    r = client.post(
        "/v1/feedback",
        files={"file": ("a.jpg", b"not an image", "image/jpeg")},
        data={"label": "cats"},
    )
    assert (r.status_code, r.json()["error"]) == (422, "not_image")
    assert not (run_dir / "feedback").exists()


def test_api_key_guards_feedback_and_reload(make_client, run_dir, photo):
    client = make_client(api_key="s3cret-key")
    upload = {"files": {"file": ("a.jpg", photo, "image/jpeg")}, "data": {"label": "cats"}}
    for headers in (
        {},
        {"X-API-Key": "wrong"},
        {"Authorization": "Bearer wrong"},
        {"X-API-Key": "s3cret-ke"},
        {"X-API-Key": "s3cret-key-and-more"},
    ):
        r = client.post("/v1/feedback", headers=headers, **upload)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"] == "Bearer"
        assert client.post("/v1/reload", headers=headers).status_code == 401
    assert not (run_dir / "feedback").exists()
    assert (
        client.post("/v1/feedback", headers={"X-API-Key": "s3cret-key"}, **upload).status_code
        == 201
    )
    assert (
        client.post(
            "/v1/feedback", headers={"Authorization": "Bearer s3cret-key"}, **upload
        ).status_code
        == 200
    )
    assert client.post("/v1/reload", headers={"X-API-Key": "s3cret-key"}).status_code == 200
    # reading endpoints stay open
    r = client.post("/v1/predict", content=photo, headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200
    assert client.get("/v1/model").status_code == 200


def test_without_a_key_mutating_endpoints_are_open(client, photo):
    r = client.post(
        "/v1/feedback", files={"file": ("a.jpg", photo, "image/jpeg")}, data={"label": "cats"}
    )
    assert r.status_code == 201
    assert client.post("/v1/reload").status_code == 200
