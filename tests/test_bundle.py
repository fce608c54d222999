"""Which model file a bundle runs: the fast one by default when it has one, the exact one on
request, and old bundles (no fast model) exactly as before."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from littlevision.bundle import Bundle
from littlevision.cli import app
from littlevision.errors import UserError
from littlevision.inference import Predictor


def _swap_columns(src, dst):
    """A copy of ``src`` answering the other class for every image: which ran is then obvious."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    out = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = [f"{o}_pre" if o == out else o for o in node.output]
    model.graph.initializer.append(numpy_helper.from_array(np.array([1, 0], np.int64), "swap"))
    model.graph.node.append(helper.make_node("Gather", [f"{out}_pre", "swap"], [out], axis=1))
    onnx.save(model, str(dst))


@pytest.fixture
def old_bundle(tiny_run, tmp_path):
    """tiny_run as a bundle made before fast models existed: no model.int8.onnx, no card entry."""
    out = tmp_path / "old"
    shutil.copytree(tiny_run, out)
    (out / "model.int8.onnx").unlink(missing_ok=True)
    card = json.loads((out / "card.json").read_text())
    card.pop("fast_model", None)
    (out / "card.json").write_text(json.dumps(card))
    return out


@pytest.fixture
def fast_bundle(old_bundle, tmp_path):
    """A bundle whose model.int8.onnx answers the opposite class of model.onnx."""
    out = tmp_path / "fast"
    shutil.copytree(old_bundle, out)
    _swap_columns(out / "model.onnx", out / "model.int8.onnx")
    return out


def test_default_picks_the_fast_model_and_fp32_the_exact_one(fast_bundle, small_folder):
    bundle = Bundle.load(fast_bundle)
    assert bundle.model_file() == (fast_bundle / "model.int8.onnx", "int8")
    assert bundle.model_file("fp32") == (fast_bundle / "model.onnx", "fp32")
    files = sorted(small_folder.rglob("*.jpg"))[:6]
    fast = Predictor.from_bundle(bundle, threads=1)
    exact = Predictor.from_bundle(bundle, threads=1, precision="fp32")
    assert (fast.precision, exact.precision) == ("int8", "fp32")
    a = fast.predict_paths(files).probabilities
    b = exact.predict_paths(files).probabilities
    np.testing.assert_allclose(a, b[:, ::-1], atol=1e-6)  # each really ran its own file


def test_old_bundle_without_a_fast_model_runs_fp32(old_bundle, small_folder):
    bundle = Bundle.load(old_bundle)
    assert bundle.model_file() == (old_bundle / "model.onnx", "fp32")
    predictor = Predictor.from_bundle(bundle, threads=1)
    assert predictor.precision == "fp32"
    preds = predictor.predict_paths(sorted(small_folder.rglob("*.jpg"))[:4])
    assert preds.probabilities.shape == (4, 2)
    with pytest.raises(UserError, match="no int8 model"):
        bundle.model_file("int8")
    with pytest.raises(UserError, match="Unknown precision"):
        bundle.model_file("fp16")


runner = CliRunner()


def lv(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_cli_predict_and_evaluate_say_which_model_answered(fast_bundle, small_folder, tmp_path):
    one = small_folder / "cats" / "cat.1.jpg"
    rows = {}
    for precision in ("auto", "fp32"):
        out = tmp_path / f"{precision}.csv"
        result = lv("predict", fast_bundle, one, "-o", out, "--precision", precision, "--quiet")
        assert result.exit_code == 0, result.output
        assert ("int8 model" if precision == "auto" else "fp32 model") in result.output
        rows[precision] = next(csv.DictReader(open(out, encoding="utf-8")))
    assert rows["auto"]["label"] != rows["fp32"]["label"]
    result = lv("evaluate", fast_bundle, small_folder, "--json", "--precision", "fp32")
    metrics = json.loads(result.output)
    assert metrics["precision"] == "fp32" and metrics["model_file"] == "model.onnx"
    assert metrics["accuracy"] >= 0.9
    result = lv("evaluate", fast_bundle, small_folder, "--json")
    metrics = json.loads(result.output)
    assert metrics["precision"] == "int8" and metrics["accuracy"] <= 0.1  # the swapped model


def test_cli_int8_on_an_old_bundle_is_one_sentence_exit_2(old_bundle, small_folder, tmp_path):
    result = lv(
        "predict",
        old_bundle,
        small_folder / "cats",
        "-o",
        tmp_path / "p.csv",
        "--precision",
        "int8",
    )
    assert result.exit_code == 2 and "no int8 model" in " ".join(result.output.split())
    assert "Traceback" not in result.output
