"""The review page in a real browser (Debian's headless chromium driven by Playwright), against
a real ``python -m littlevision.review.cli`` process: open it, relabel by keyboard, see the file
move on disk, undo, label an inbox image.

Screenshots are kept in the test's temp folder and copied to $LITTLEVISION_SCREENSHOTS when set
(``docs/images/`` holds the ones docs/review.md shows).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.browser import chromium
from tests.review.conftest import tree

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_review(args: list[str], timeout: float = 300) -> tuple[subprocess.Popen, str]:
    """Start ``python -m littlevision.review.cli ARGS`` and wait until it serves."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "littlevision.review.cli", *args, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            raise AssertionError(f"review exited with {proc.returncode}")
        if line.startswith("review: http"):
            break
    url = f"http://127.0.0.1:{port}/"
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("review did not start listening")


def shoot(page, tmp_path: Path, name: str) -> Path:
    """A screenshot as a small palette PNG (copied to $LITTLEVISION_SCREENSHOTS when set)."""
    from PIL import Image

    raw = tmp_path / f"{name}.raw.png"
    page.screenshot(path=str(raw))
    out = tmp_path / f"{name}.png"
    Image.open(raw).convert("RGB").quantize(128).save(out, optimize=True)
    keep = os.environ.get("LITTLEVISION_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy2(out, Path(keep) / out.name)
    return out


@pytest.fixture
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium-profile"), 1100, 720) as context:
        yield context.new_page()


def wait_true(page, expression: str, arg=None, timeout_s: float = 30.0) -> None:
    """Poll ``expression`` from Python until it is truthy. ``wait_for_function`` would build its
    predicate with eval inside the page, which the page's own CSP (script-src 'self') forbids."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression, arg):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout_s:.0f} s: {expression}")
        page.wait_for_timeout(50)


def wait_status(page, words: str) -> str:
    wait_true(page, "w => document.querySelector('#status').textContent.includes(w)", words, 15)
    return page.inner_text("#status")


def test_review_by_keyboard(browser, pets, tmp_path, cats_dogs_dir):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for cls in ("cats", "dogs"):
        for f in sorted((cats_dogs_dir / "validation" / cls).iterdir())[:3]:
            shutil.copy2(f, inbox / f.name)
    before = tree(pets, inbox)
    proc, url = start_review([str(pets), "--unlabelled", str(inbox)])
    page = browser
    problems, hosts = [], set()
    page.on(
        "console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: hosts.add(r.url.split("/")[2]))
    try:
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        assert page.locator("#tabs button").count() == 3  # findings, label next, all images
        assert "exact_duplicates" in page.inner_text("#detail")
        wait_true(page, "Array.from(document.images).every(i => i.complete)")
        shoot(page, tmp_path, "review-findings")

        # Tab to 'All images', arrow to cats/cat.2.jpg, press 2: it becomes a dog
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        assert page.get_attribute("#tabs button[aria-selected='true']", "data-queue") == "all"
        for _ in range(2):
            page.keyboard.press("ArrowRight")
        assert "cats/cat.2.jpg" in page.inner_text("#detail h2")
        page.keyboard.press("2")
        assert "cats -> dogs" in wait_status(page, "cat.2.jpg")
        assert (pets / "dogs" / "cat.2.jpg").is_file() and not (
            pets / "cats" / "cat.2.jpg"
        ).exists()
        assert page.inner_text("#progress") == "1 of 13 reviewed"
        assert page.locator("#strip button.done").count() == 1
        page.keyboard.press("ArrowLeft")  # back to the answered one
        assert "Answered" in page.inner_text("#detail")
        shoot(page, tmp_path, "review-relabelled")

        page.keyboard.press("u")
        wait_status(page, "undone")
        assert (pets / "cats" / "cat.2.jpg").is_file() and not (
            pets / "dogs" / "cat.2.jpg"
        ).exists()
        assert page.inner_text("#progress") == "0 of 13 reviewed"

        # Label next: the model's guess is preselected, Enter accepts it
        page.keyboard.press("Shift+Tab")
        assert page.get_attribute("#tabs button[aria-selected='true']", "data-queue") == "next"
        wait_true(page, "Array.from(document.images).every(i => i.complete)")
        shoot(page, tmp_path, "review-label-next")
        guess = page.get_attribute(".actions button.suggested", "data-class")
        name = page.get_attribute(".files img", "alt").rsplit("/", 1)[1]
        page.keyboard.press("Enter")
        wait_status(page, f"{name} -> {guess}")
        assert (pets / guess / name).is_file() and not (inbox / name).exists()
        page.keyboard.press("u")
        wait_status(page, "undone")

        timings = page.evaluate("window.reviewTimings")
        assert len(timings) == 4
        assert not problems, problems
        assert hosts == {url.split("/")[2]}  # nothing but the review server
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert tree(pets, inbox) == before
