"""The report in a real browser (Debian's headless chromium driven by Playwright).

Run alone with ``pytest -m browser tests/explain``; skipped when chromium or playwright is absent
(``make browser-deps``; ``pip install playwright`` — never ``playwright install``: we use the
system chromium). The screenshot is kept in the test's temp folder (and copied to
$LITTLEVISION_SCREENSHOTS when set) for a person to look at.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from littlevision.explain.report import SECTIONS
from tests.browser import chromium

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium-profile"), 1280, 900) as context:
        yield context.new_page()


def test_report_renders_with_every_image_and_no_errors(browser_page, report_html, tmp_path):
    page = browser_page
    problems, requests = [], []
    page.on(
        "console",
        lambda m: (
            problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(report_html.as_uri(), wait_until="load")

    images = page.evaluate("""Array.from(document.images).map(i => ({
        alt: i.alt, complete: i.complete, w: i.naturalWidth, h: i.naturalHeight,
        shown: i.getBoundingClientRect().width}))""")
    assert len(images) >= 10
    broken = [i["alt"] for i in images if not (i["complete"] and i["w"] > 0 and i["h"] > 0)]
    assert not broken, broken
    assert all(i["shown"] > 20 for i in images), [i for i in images if i["shown"] <= 20]
    assert not problems, problems
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []

    for sid, heading in SECTIONS:
        box = page.locator(f"section#{sid}")
        assert box.count() == 1 and box.is_visible(), sid
        assert page.locator(f"section#{sid} h2").inner_text().strip() == heading
    assert page.locator("nav a").count() == len(SECTIONS)
    # the page is laid out for a screen: nothing overflows sideways
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280

    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    keep = os.environ.get("LITTLEVISION_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy2(shot, Path(keep) / "report.png")
