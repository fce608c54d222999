"""A trained bundle scores novelty: card, novelty.npz, the ONNX features output, predict's CSV."""

from __future__ import annotations

import csv
import json

import numpy as np
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

from littlevision.bundle import Bundle
from littlevision.inference import Predictor


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """scikit-learn's scanned digits: real images of something that is neither cat nor dog."""
    from littlevision.data.demo import write_digits_folder

    return write_digits_folder(tmp_path_factory.mktemp("digits") / "digits")


def test_the_bundle_records_the_threshold_and_how_it_was_set(tiny_run):
    card = json.loads((tiny_run / "card.json").read_text())
    novelty = card["novelty"]
    assert novelty["method"] == "knn" and novelty["target_rate"] == 0.05
    assert novelty["threshold"] > 0 and "validation images" in novelty["set_on"]
    assert abs(novelty["flagged_rate"] - 0.05) <= 0.05
    assert (tiny_run / "novelty.npz").is_file()


def test_onnx_keeps_probabilities_first_and_adds_the_features(tiny_run):
    session = ort.InferenceSession(str(tiny_run / "model.onnx"))
    outputs = [o.name for o in session.get_outputs()]
    assert outputs == ["probabilities", "features"]
    bundle = Bundle.load(tiny_run)
    predictor = Predictor.from_bundle(bundle, precision="fp32")  # model.onnx itself
    images = np.random.default_rng(0).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    probs = predictor.predict_array(images)
    scored = predictor.score_array(images)
    np.testing.assert_array_equal(scored[:, :-1], probs)  # the first output is untouched
    first = session.run(["probabilities"], {"image": images})[0]
    np.testing.assert_allclose(first, probs, atol=1e-6)


def test_predict_csv_has_unknown_and_novelty_and_digits_are_unknown(tiny_run, digits, tmp_path):
    from littlevision.cli import app

    digit_files = [sorted((digits / d).iterdir())[0] for d in "0123456789"]
    out = tmp_path / "p.csv"
    photos = json.loads((tiny_run / "split.json").read_text())
    root = photos["root"]
    val = [f"{root}/{p}" for ps in photos["subsets"]["validation"].values() for p in ps]
    r = CliRunner().invoke(
        app, ["predict", str(tiny_run), *val, *map(str, digit_files), "-o", str(out), "-q"]
    )
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(out, encoding="utf-8")))
    assert list(rows[0])[-2:] == ["unknown", "novelty"]
    assert list(rows[0])[:5] == ["path", "label", "score", "cats", "dogs"]
    photo_rows = [r for r in rows if "digit" not in r["path"]]
    digit_rows = [r for r in rows if "digit" in r["path"]]
    assert sum(r["unknown"] == "true" for r in digit_rows) >= 8
    assert sum(r["unknown"] == "true" for r in photo_rows) <= 2
    assert min(float(r["novelty"]) for r in digit_rows) > np.median(
        [float(r["novelty"]) for r in photo_rows]
    )
    assert all(r["label"] in ("cats", "dogs") for r in digit_rows)  # the label is unchanged


def test_an_old_bundle_without_novelty_still_predicts_without_the_columns(tiny_run, tmp_path):
    import shutil

    from littlevision.cli import app

    old = tmp_path / "old"
    shutil.copytree(tiny_run, old)
    (old / "novelty.npz").unlink()
    card = json.loads((old / "card.json").read_text())
    card.pop("novelty")
    (old / "card.json").write_text(json.dumps(card))
    split = json.loads((old / "split.json").read_text())
    one = next(iter(split["subsets"]["validation"].values()))[0]
    out = tmp_path / "p.csv"
    r = CliRunner().invoke(app, ["predict", str(old), f"{split['root']}/{one}", "-o", str(out)])
    assert r.exit_code == 0, r.output
    header = next(csv.reader(open(out, encoding="utf-8")))
    assert header == ["path", "label", "score", "cats", "dogs"]


def test_unknown_rate_out_of_range_is_a_user_error(small_folder, tmp_path):
    from littlevision.cli import app

    r = CliRunner().invoke(
        app, ["train", str(small_folder), "-o", str(tmp_path / "r"), "--unknown-rate", "2"]
    )
    assert r.exit_code == 2 and "unknown-rate" in r.output
