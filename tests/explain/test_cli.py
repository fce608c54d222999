"""The explain verbs, run through the real ``littlevision`` command (Typer's test runner)."""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image
from typer.testing import CliRunner

from littlevision.cli import app

runner = CliRunner()


def said(result) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def test_explain_writes_one_png_per_image(explain_run, photos, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(photos[0].read_bytes()[:200])  # a real JPEG, truncated
    out = tmp_path / "explanations"
    result = runner.invoke(
        app,
        [
            "explain",
            str(explain_run),
            str(photos[0]),
            str(photos[2]),
            str(broken),
            "-o",
            str(out),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted([f"{photos[0].stem}.png", f"{photos[2].stem}.png"])
    with Image.open(out / f"{photos[0].stem}.png") as im:
        assert im.format == "PNG" and im.size[0] > 2 * im.size[1]  # photo | overlay | top-3
    assert "skipped" in said(result) and "broken.jpg" in said(result)
    assert "Grad-CAM for cats" in said(result)


def test_explain_json_lists_each_image_and_warns_on_stderr(explain_run, photos, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    out = tmp_path / "x"
    args = ["explain", str(explain_run), str(photos[0]), str(broken), "-o", str(out), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    done, skipped = json.loads(result.stdout)["images"]
    assert done["output"] == str(out / f"{photos[0].stem}.png") and done["label"] == "cats"
    assert skipped["output"] is None and skipped["error"]
    assert "broken.jpg" in result.stderr


def test_explain_a_chosen_class(explain_run, photos, tmp_path):
    result = runner.invoke(
        app,
        [
            "explain",
            str(explain_run),
            str(photos[0]),
            "--class",
            "dogs",
            "-o",
            str(tmp_path),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Grad-CAM for dogs" in said(result)
    bad = runner.invoke(
        app,
        [
            "explain",
            str(explain_run),
            str(photos[0]),
            "--class",
            "horses",
            "-o",
            str(tmp_path),
            "--quiet",
        ],
    )
    assert bad.exit_code == 2 and "Unknown class 'horses'" in said(bad)


def test_feature_maps_and_layers_verbs(explain_run, photos, tmp_path):
    out = tmp_path / "fm.png"
    result = runner.invoke(
        app,
        [
            "feature-maps",
            str(explain_run),
            str(photos[1]),
            "--layers",
            "stem_relu,-1",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert Image.open(out).format == "PNG"
    listing = runner.invoke(app, ["layers", str(explain_run)])
    assert listing.exit_code == 0 and "head_relu" in said(listing)
    bad = runner.invoke(app, ["feature-maps", str(explain_run), str(photos[1]), "--layers", "nope"])
    assert bad.exit_code == 2 and "No layer named 'nope'" in said(bad)


def test_verbs_refuse_a_folder_that_is_not_a_run(tmp_path, photos):
    for args in (
        ["explain", str(tmp_path), str(photos[0])],
        ["report", str(tmp_path)],
        ["layers", str(tmp_path)],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "is not a littlevision run" in said(result)


def test_a_run_without_model_keras_cannot_be_explained(explain_run, photos, tmp_path):
    run = tmp_path / "onnx-only"
    shutil.copytree(explain_run, run, ignore=shutil.ignore_patterns("model.keras", "report.html"))
    result = runner.invoke(app, ["explain", str(run), str(photos[0]), "-o", str(tmp_path)])
    assert result.exit_code == 2 and "no model.keras" in said(result)


@pytest.mark.slow
def test_report_verb_with_the_default_settings(explain_run, tmp_path):
    out = tmp_path / "club.html"
    result = runner.invoke(app, ["report", str(explain_run), "-o", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "opens offline" in said(result)
