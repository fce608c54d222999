"""The HTML report is one self-contained file: inline thumbnails, duplicate pairs side by side,
label issues with the predicted label and confidence."""

from __future__ import annotations

import re
import shutil

from littlevision.doctor import DoctorConfig, Finding, examine
from littlevision.doctor.html import thumbnail_uri


def test_page_is_self_contained_with_thumbnails_per_finding(pets, make, tmp_path):
    cat = make.first(pets / "cats")
    shutil.copy(cat, pets / "cats" / "twin.jpg")
    (pets / "dogs" / "empty.jpg").write_bytes(b"")
    report = examine(pets, config=DoctorConfig(embeddings=False))
    report.findings.append(
        Finding(
            "label_issues",
            "warning",
            [f"cats/{cat.name}"],
            "looks like a dog",
            quarantine=[f"cats/{cat.name}"],
            details={"label": "cats", "predicted": "dogs", "confidence": 0.87},
        )
    )
    path = tmp_path / "out" / "doctor.html"
    report.to_html(path)
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>")
    assert not re.search(r'(src|href)="(https?:|file:|/)', page)  # nothing outside the file
    assert page.count("data:image/jpeg;base64,") >= 3
    dupes = page[page.index('id="exact_duplicates"') :]
    dupes = dupes[: dupes.index("</div></div></div>")]
    assert "cats/twin.jpg" in dupes and f"cats/{cat.name}" in dupes  # side by side in one row
    assert "looks like dogs" in page and "87%" in page
    assert "cannot be shown" in page  # the empty file gets a placeholder, not a crash


def test_thumbnails_keep_the_aspect_ratio_and_fail_softly(pets, tmp_path):
    import base64
    import io

    from PIL import Image

    photo = sorted((pets / "dogs").glob("*.jpg"))[0]
    uri = thumbnail_uri(photo, side=100)
    thumb = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    w, h = Image.open(photo).size
    assert max(thumb.size) == 100
    assert abs(thumb.size[0] / thumb.size[1] - w / h) < 0.05
    (tmp_path / "bad.jpg").write_text("no")
    assert thumbnail_uri(tmp_path / "bad.jpg") is None
