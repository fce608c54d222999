"""The review page's API over a real session: actions, errors as 4xx, thumbnails, two tabs."""

from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient

from littlevision.review.app import create_app
from littlevision.review.session import ReviewConfig, ReviewSession
from littlevision.review.thumbs import ThumbnailCache
from tests.review.conftest import tree


@pytest.fixture
def session(pets) -> ReviewSession:
    return ReviewSession.build(ReviewConfig(data=pets, quick=True))


@pytest.fixture
def client(session, tmp_path) -> TestClient:
    return TestClient(create_app(session, ThumbnailCache(tmp_path / "thumbs")))


def _item(state, queue, path):
    q = next(q for q in state["queues"] if q["name"] == queue)
    return next(it for it in q["items"] if it["files"][0]["path"] == path)


def test_page_and_state(client, session):
    page = client.get("/")
    assert page.status_code == 200 and "review.js" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/review.js").status_code == 200
    state = client.get("/api/state").json()
    assert state["classes"] == ["cats", "dogs"]
    names = [q["name"] for q in state["queues"]]
    assert names == ["findings", "all"]
    [dup] = state["queues"][0]["items"]
    assert dup["check"] == "exact_duplicates" and len(dup["files"]) == 2
    assert dup["files"][dup["target"]]["role"].startswith("fix would move")
    assert state["progress"]["all"] == {"total": 13, "reviewed": 0}


def test_relabel_undo_and_answered_twice(client, pets):
    before = tree(pets)
    state = client.get("/api/state").json()
    it = _item(state, "all", "cats/cat.2.jpg")
    r = client.post("/api/act", json={"key": it["key"], "action": "relabel", "value": "dogs"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert (pets / "dogs" / "cat.2.jpg").is_file() and not (pets / "cats" / "cat.2.jpg").exists()
    [changed] = [i for i in answer["items"] if i["key"] == it["key"]]
    assert changed["done"]["op"] == "relabel" and changed["done"]["label"] == "dogs"
    assert changed["files"][0]["now"] == "dogs/cat.2.jpg"
    assert answer["progress"]["all"]["reviewed"] == 1

    again = client.post("/api/act", json={"key": it["key"], "action": "keep"})
    assert again.status_code == 409 and "answered already" in again.json()["message"]

    r = client.post("/api/undo", json={"key": it["key"]})
    assert r.status_code == 200 and r.json()["progress"]["all"]["reviewed"] == 0
    assert tree(pets) == before


def test_quarantine_a_duplicate_then_the_twin_view_follows(client, pets):
    state = client.get("/api/state").json()
    dup = state["queues"][0]["items"][0]
    target = dup["files"][dup["target"]]["path"]
    r = client.post("/api/act", json={"key": dup["key"], "action": "quarantine"})
    assert r.status_code == 200
    moved = next(i for i in r.json()["items"] if i["key"] == dup["key"])
    assert moved["files"][dup["target"]]["now_where"] == "quarantine"
    assert (pets.with_name("pets.quarantine") / target).is_file()
    # the same file in the 'all' queue now says where it went, and refuses a second move
    other = _item(client.get("/api/state").json(), "all", target)
    assert other["files"][0]["now_where"] == "quarantine"
    r = client.post("/api/act", json={"key": other["key"], "action": "relabel", "value": "dogs"})
    assert r.status_code == 409 and "moved by another answer" in r.json()["message"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"key": "img:cats/cat.2.jpg", "action": "relabel", "value": "birds"}, 400, "no class"),
        ({"key": "img:cats/cat.2.jpg", "action": "explode"}, 400, "Unknown action"),
        ({"key": "img:nope.jpg", "action": "keep"}, 400, "No item"),
        ({"key": "img:cats/cat.2.jpg", "action": "relabel"}, 400, "needs a class"),
        ({"key": "img:cats/cat.2.jpg", "action": "keep", "member": 5}, 400, "No image 5"),
        ({"action": "keep"}, 422, "key"),
    ],
)
def test_mistakes_are_4xx_with_a_sentence(client, pets, body, status, words):
    before = tree(pets)
    r = client.post("/api/act", json=body)
    assert r.status_code == status, r.text
    assert words in r.json()["message"]
    assert tree(pets) == before


def test_changed_or_missing_files_are_skipped_with_409(client, pets):
    (pets / "cats" / "cat.3.jpg").write_bytes((pets / "cats" / "cat.4.jpg").read_bytes())
    r = client.post("/api/act", json={"key": "img:cats/cat.3.jpg", "action": "keep"})
    assert r.status_code == 409 and "changed since it was listed" in r.json()["message"]
    (pets / "cats" / "cat.5.jpg").unlink()
    r = client.post(
        "/api/act", json={"key": "img:cats/cat.5.jpg", "action": "relabel", "value": "dogs"}
    )
    assert r.status_code == 409 and "not there any more" in r.json()["message"]
    assert client.post("/api/undo", json={}).status_code == 400  # nothing to undo


def test_only_loopback_hosts_and_json_posts(client):
    assert client.get("/api/state", headers={"host": "evil.example:8765"}).status_code == 403
    r = client.post("/api/undo", data={"key": "x"})
    assert r.status_code == 415


def test_thumbnails_are_cached_outside_the_data_folder(client, pets, tmp_path):
    before = tree(pets)
    r = client.get("/thumb", params={"where": "data", "p": "cats/cat.2.jpg", "s": 160})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content[:2] == b"\xff\xd8"
    thumbs = client.app.state.thumbs
    assert (thumbs.misses, thumbs.hits) == (1, 0)
    assert (
        client.get("/thumb", params={"where": "data", "p": "cats/cat.2.jpg"}).content == r.content
    )
    assert thumbs.hits == 1
    assert list((tmp_path / "thumbs").rglob("*.jpg"))
    assert tree(pets) == before
    assert client.get("/thumb", params={"where": "data", "p": "../pets/x.jpg"}).status_code == 400
    assert client.get("/thumb", params={"where": "inbox", "p": "/etc/passwd"}).status_code == 400
    assert client.get("/thumb", params={"where": "data", "p": "cats/none.jpg"}).status_code == 404
    assert (
        client.get("/thumb", params={"where": "data", "p": "cats/cat.2.jpg", "s": 7}).status_code
        == 400
    )
    (pets / "cats" / "notes.txt").write_text("not an image")
    assert client.get("/thumb", params={"where": "data", "p": "cats/notes.txt"}).status_code == 422
    assert client.get("/api/gradcam", params={"p": "cats/cat.2.jpg"}).status_code == 404


def test_a_second_tab_or_a_restart_sees_the_same_answers(client, pets, tmp_path):
    client.post("/api/act", json={"key": "img:cats/cat.2.jpg", "action": "keep"})
    restarted = ReviewSession.build(ReviewConfig(data=pets, quick=True))
    other = TestClient(create_app(restarted, ThumbnailCache(tmp_path / "t2")))
    it = _item(other.get("/api/state").json(), "all", "cats/cat.2.jpg")
    assert it["done"]["op"] == "keep"
    r = other.post("/api/act", json={"key": it["key"], "action": "quarantine"})
    assert r.status_code == 409  # not doubled
    assert (pets / "cats" / "cat.2.jpg").is_file()


def test_label_next_ranks_the_inbox_and_labels_into_the_class_folder(pets, tmp_path, cats_dogs_dir):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for cls in ("cats", "dogs"):
        for f in sorted((cats_dogs_dir / "validation" / cls).iterdir())[:3]:
            shutil.copy2(f, inbox / f.name)
    (inbox / "readme.txt").write_text("not an image")
    session = ReviewSession.build(ReviewConfig(data=pets, quick=True, unlabelled=(inbox,)))
    items = session.queues["next"]
    assert len(items) == 6  # the text file is not an image
    guesses = {it.files[0].path.rsplit("/", 1)[1]: it.suggested for it in items}
    right = sum(g == ("cats" if name.startswith("cat") else "dogs") for name, g in guesses.items())
    assert right >= 5, guesses
    scores = [it.score for it in items]
    assert all(0 <= s <= 1 for s in scores)
    first = items[0]
    answer = session.act(first.key, "relabel", first.suggested)
    name = first.files[0].path.rsplit("/", 1)[1]
    assert (pets / first.suggested / name).is_file() and not (inbox / name).exists()
    assert answer["progress"]["next"]["reviewed"] == 1
    session.undo()
    assert (inbox / name).is_file() and not (pets / first.suggested / name).exists()


def test_top_losses_with_a_run_and_gradcam_on_demand(tiny_run, small_folder, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_folder, data)
    session = ReviewSession.build(ReviewConfig(data=data, run=tiny_run, quick=True))
    losses = session.queues["losses"]
    assert len(losses) == 40
    scores = [it.score for it in losses]
    assert scores == sorted(scores, reverse=True) and scores[-1] >= 0
    worst = losses[0]
    assert worst.check == "label_issues" and "the model says" in worst.title
    client = TestClient(create_app(session, ThumbnailCache(tmp_path / "thumbs")))
    state = client.get("/api/state").json()
    assert state["gradcam"] is True
    assert [q["name"] for q in state["queues"]] == ["findings", "losses", "all"]
    path = worst.files[0].path
    r = client.get("/api/gradcam", params={"p": path})
    assert r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n"
    # keeping a top loss is a keep for label_issues: the doctor will not report it
    client.post("/api/act", json={"key": worst.key, "action": "keep"})
    from littlevision.review.journal import keep_marks

    assert (path, "label_issues") in keep_marks(data)
