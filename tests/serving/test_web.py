"""The web page at GET /, in Debian's headless Chromium driven by Playwright's Python client.

Never ``playwright install``: the system Chromium is used through ``executable_path``. Every
request the page makes is checked to go to the service on 127.0.0.1 and nowhere else.
The page's Content-Security-Policy stays in force (no ``bypass_csp``), so these tests also
prove the page's own script runs under it. Set LITTLEVISION_SCREENSHOTS=DIR to keep screenshots.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.browser import chromium

pytestmark = pytest.mark.browser


@pytest.fixture
def browser_page(tmp_path):
    """A page in a fresh Chromium profile that may only talk to 127.0.0.1."""
    elsewhere: list[str] = []

    def only_loopback(route):
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlparse(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            elsewhere.append(url)
            route.abort()

    with chromium(tmp_path / "profile", 1000, 900) as context:
        context.route("**/*", only_loopback)
        page = context.pages[0] if context.pages else context.new_page()
        page.set_default_timeout(20_000)
        yield page
    assert elsewhere == [], f"the page tried to reach beyond 127.0.0.1: {elsewhere}"


def screenshot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5_000
    keep = os.environ.get("LITTLEVISION_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)
    return path


def test_upload_an_image_see_the_prediction_and_send_a_correction(
    browser_page, server, run_dir, cats_dogs_dir, tmp_path, served
):
    import httpx
    from playwright.sync_api import expect

    page = browser_page
    s = server()
    photo = sorted((cats_dogs_dir / "validation" / "dogs").iterdir())[0]
    expected = httpx.post(
        s.url + "/v1/predict", content=photo.read_bytes(), headers={"Content-Type": "image/jpeg"}
    ).json()

    page.goto(s.url + "/")
    expect(page.locator("#model")).to_contain_text(served.name)
    page.set_input_files("#file", str(photo))
    page.wait_for_selector("#classes li:nth-child(2)")
    rows = page.locator("#classes li")
    assert rows.count() == 2
    assert rows.nth(0).locator(".name").inner_text() == expected["label"]
    shown = rows.nth(0).locator(".pct").inner_text()
    assert shown == f"{expected['score'] * 100:.1f}%"
    assert page.locator("#preview").evaluate("img => img.naturalWidth") > 0
    # the tiny bundle has no model.keras: the page says so clearly; a trained run shows it
    expect(page.locator("#overlay-note")).to_contain_text(
        re.compile("not available|where the model looked"), timeout=180_000
    )
    screenshot(page, tmp_path, "web-prediction")

    other = "cats" if expected["label"] == "dogs" else "dogs"
    page.select_option("#label", other)
    page.click("#send")
    expect(page.locator("#feedback-status")).to_contain_text("saved")
    saved = list((run_dir / "feedback" / other).iterdir())
    assert len(saved) == 1 and saved[0].read_bytes() == photo.read_bytes()
    screenshot(page, tmp_path, "web-feedback")


def test_a_bad_file_shows_the_services_message(browser_page, server, tmp_path):
    page = browser_page
    s = server()
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image, whatever the name says")
    page.goto(s.url + "/")
    page.set_input_files("#file", str(bad))
    from playwright.sync_api import expect

    expect(page.locator("#error")).to_contain_text("not an image format")
    assert page.locator("#result").is_hidden()
    screenshot(page, tmp_path, "web-error")
