"""The HTML report: one self-contained file, every section, graceful without the images."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil

import pytest

from littlevision.explain.report import SECTIONS, write_report

EXTERNAL = re.compile(
    r"""(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:|//|file:|ftp:)""", re.I
)


def check_self_contained(html: str) -> None:
    assert not EXTERNAL.search(html), EXTERNAL.search(html).group(0)
    assert "<link" not in html.lower() and "<script" not in html.lower()
    assert "url(" not in html and "@import" not in html
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', html)
    assert srcs and all(
        s.startswith(("data:image/png;base64,", "data:image/jpeg;base64,")) for s in srcs
    )
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert all(h.startswith("#") for h in hrefs), hrefs
    for sid, heading in SECTIONS:
        assert f'<section id="{sid}">' in html, sid
        assert f"<h2>{heading}</h2>" in html, heading


def test_report_is_one_self_contained_file(report_html):
    assert sorted(p.name for p in report_html.parent.iterdir()) == ["report.html"]
    html = report_html.read_text(encoding="utf-8")
    check_self_contained(html)
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert 'class="note"' not in html  # nothing failed or was missing


def test_report_shows_the_run(report_html, explain_run):
    html = report_html.read_text(encoding="utf-8")
    card = json.loads((explain_run / "card.json").read_text())
    for text in (
        "bottleneck",
        "lite0",
        card["model_version"],
        card["versions"]["keras"],
        "efficientnet_lite0/head_relu",
        "Recomputed on 12 validation images",
        "exact_duplicates",
        "2 files are byte-for-byte copies",
    ):
        assert text in html, text
    # 12 validation images: the tiny model makes few mistakes; photos + Grad-CAM for each shown
    n_examples = html.count('class="example')
    assert 4 <= n_examples <= 8
    assert html.count('alt="Grad-CAM for') >= n_examples
    assert html.count('alt="activation maximisation') == 4  # 2 filters + 2 classes
    assert 'alt="feature maps of three layers"' in html and 'alt="first-layer kernels"' in html


def test_report_without_the_images_says_so(explain_run, tmp_path, small_folder, fast_report):
    run = tmp_path / "moved-run"
    shutil.copytree(explain_run, run, ignore=shutil.ignore_patterns("report.html"))
    split = json.loads((run / "split.json").read_text())
    split["root"] = str(tmp_path / "gone")
    (run / "split.json").write_text(json.dumps(split))
    card = json.loads((run / "card.json").read_text())
    card["data"]["source"] = str(tmp_path / "gone")
    card["data"]["skipped"] = [
        {
            "path": "cats/cat.999.jpg",
            "reason": "truncated",  # as train writes
            "message": "cats/cat.999.jpg: the file is cut short",
        }
    ]
    (run / "card.json").write_text(json.dumps(card))
    html = write_report(run, config=fast_report).read_text(encoding="utf-8")
    assert (run / "report.html").is_file()
    check_self_contained(html)
    assert "The validation images are gone" in html and "--data FOLDER" in html
    assert 'class="example' not in html
    assert (
        "cats/cat.999.jpg" in html and "truncated" in html and "1 file(s) could not be read" in html
    )
    # ... and finds them again when told where the data went
    html = write_report(run, config=fast_report, data_root=small_folder).read_text(encoding="utf-8")
    assert "are gone" not in html and 'class="example' in html


@pytest.mark.parametrize(
    "recipe", ["bottleneck", "scratch", pytest.param("finetune", marks=pytest.mark.slow)]
)
def test_a_run_of_every_recipe_can_be_reported(
    recipe, request, tmp_path, small_folder, fast_report
):
    if recipe == "bottleneck":  # the report of the shared run, made once for several tests
        check_self_contained(request.getfixturevalue("report_html").read_text(encoding="utf-8"))
        return
    if recipe == "scratch":
        run = request.getfixturevalue("scratch_run")
    else:
        if importlib.util.find_spec(f"littlevision.training.{recipe}") is None:
            pytest.skip(f"littlevision.training.{recipe} is not there yet (another engineer)")
        from littlevision.training.run import TrainConfig, train

        run = tmp_path / recipe
        train(small_folder, run, TrainConfig(recipe=recipe, val_split=0.3), epochs=1)
    html = write_report(run, tmp_path / "r.html", config=fast_report).read_text(encoding="utf-8")
    check_self_contained(html)
    assert 'class="example' in html and 'alt="Grad-CAM for' in html
    if (run / "history.json").is_file():
        assert 'alt="learning curves' in html


def test_a_run_without_the_keras_model_is_still_reported(explain_run, tmp_path, fast_report):
    run = tmp_path / "onnx-only"
    shutil.copytree(explain_run, run, ignore=shutil.ignore_patterns("model.keras", "report.html"))
    html = write_report(run, config=fast_report).read_text(encoding="utf-8")
    check_self_contained(html)
    assert "no model.keras" in html and "These need the Keras model" in html
    assert 'class="example' in html and 'alt="Grad-CAM for' not in html  # photos, no maps
    assert "Recomputed on 12 validation images" in html  # calibration needs only the ONNX model
