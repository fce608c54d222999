"""The command line end to end on real photos, and every user mistake giving exit 2."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
from typer.testing import CliRunner

from littlevision.cli import app

runner = CliRunner()


def lv(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def cli_run(small_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    result = lv("train", small_folder, "-o", out, "--val-split", "0.3", "--quiet", "--no-report")
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output
    return out


def test_train_evaluate_predict_info(cli_run, small_folder, tmp_path):
    result = lv("evaluate", cli_run, small_folder, "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert metrics["n"] == 40 and metrics["accuracy"] >= 0.9
    assert set(metrics["per_class"]) == {"cats", "dogs"}
    assert len(metrics["confusion"]) == 2

    out_csv = tmp_path / "pred.csv"
    result = lv(
        "predict",
        cli_run,
        small_folder / "cats",
        small_folder / "dogs" / "dog.1.jpg",
        "-o",
        out_csv,
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(out_csv, encoding="utf-8")))
    assert list(rows[0]) == ["path", "label", "score", "cats", "dogs", "unknown", "novelty"]
    assert len(rows) == 21
    cats = [r for r in rows if "/cats/" in r["path"]]
    assert sum(r["label"] == "cats" for r in cats) >= 18
    assert all(abs(float(r["cats"]) + float(r["dogs"]) - 1) < 1e-4 for r in rows)

    result = lv("info", cli_run)
    assert result.exit_code == 0 and "bottleneck" in result.output and "cats, dogs" in result.output
    assert "cost per image" in result.output and "G multiply-adds" in result.output
    assert "ms per image" in result.output


def test_predict_skips_a_broken_file_and_says_so(cli_run, small_folder, tmp_path):
    folder = tmp_path / "new"
    folder.mkdir()
    shutil.copy(small_folder / "cats" / "cat.1.jpg", folder / "ok.jpg")
    (folder / "broken.jpg").write_bytes(b"not really a jpeg")
    result = lv("predict", cli_run, folder, "-o", tmp_path / "p.csv", "--quiet")
    assert result.exit_code == 0, result.output
    assert "1 file(s) skipped" in result.output
    assert len(list(csv.DictReader(open(tmp_path / "p.csv")))) == 1


def test_budget_and_backbones_are_for_auto_only(small_folder, tmp_path):
    result = lv("train", small_folder, "-o", tmp_path / "r", "--budget", "1m", "--quiet")
    assert result.exit_code == 2 and "--budget is for --recipe auto" in result.output
    result = lv("train", small_folder, "-o", tmp_path / "r", "--recipe", "auto", "--budget", "soon")
    assert result.exit_code == 2 and "--budget must be a duration" in result.output


def _one_class(tmp_path, small_folder):
    d = tmp_path / "one"
    shutil.copytree(small_folder / "cats", d / "cats")
    return d


def _empty_class(tmp_path, small_folder):
    d = tmp_path / "empty"
    shutil.copytree(small_folder / "cats", d / "cats")
    (d / "dogs").mkdir()
    return d


@pytest.mark.parametrize(
    "case, needle",
    [
        ("missing_folder", "No such"),
        ("one_class", "at least 2 classes"),
        ("empty_class", "has no"),
        ("csv_without_label", "label"),
        ("bad_bundle", "not a littlevision run"),
        ("predict_missing_path", "No such file"),
    ],
)
def test_user_mistakes_exit_2_with_one_sentence(case, needle, tmp_path, small_folder, cli_run):
    if case == "missing_folder":
        args = ("train", tmp_path / "nope", "-o", tmp_path / "r")
    elif case == "one_class":
        args = ("train", _one_class(tmp_path, small_folder), "-o", tmp_path / "r")
    elif case == "empty_class":
        args = ("train", _empty_class(tmp_path, small_folder), "-o", tmp_path / "r")
    elif case == "csv_without_label":
        (tmp_path / "l.csv").write_text("path,size,width\ncat.1.jpg,3,5\ncat.2.jpg,4,6\n")
        args = (
            "train",
            small_folder / "cats",
            "--labels",
            tmp_path / "l.csv",
            "-o",
            tmp_path / "r",
        )
    elif case == "bad_bundle":
        (tmp_path / "notarun").mkdir()
        args = ("predict", tmp_path / "notarun", small_folder / "cats", "-o", tmp_path / "p.csv")
    else:
        args = ("predict", cli_run, tmp_path / "nothing-here.jpg", "-o", tmp_path / "p.csv")
    result = lv(*args, "--quiet") if args[0] == "train" else lv(*args)
    assert result.exit_code == 2, result.output
    assert needle in result.output
    assert "Traceback" not in result.output


def test_version_is_the_package_version():
    import littlevision

    result = lv("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"littlevision {littlevision.__version__}"


def test_json_puts_the_result_on_stdout_and_warnings_on_stderr(cli_run, small_folder, tmp_path):
    data = tmp_path / "data"
    for cls in ("cats", "dogs"):
        (data / cls).mkdir(parents=True)
        for f in sorted((small_folder / cls).iterdir())[:6]:
            shutil.copy(f, data / cls / f.name)
    (data / "dogs" / "broken.jpg").write_bytes(b"not really a jpeg")

    trained = lv("train", data, "-o", tmp_path / "run", "--no-report", "-q", "--json")
    assert trained.exit_code == 0, trained.output
    result = json.loads(trained.stdout)
    assert result["run"] == str(tmp_path / "run")
    assert result["card"]["data"]["n_train"] + result["card"]["data"]["n_val"] == 13
    assert [s["path"] for s in result["card"]["data"]["skipped"]] == ["dogs/broken.jpg"]
    assert "1 file(s) skipped" in trained.stderr and "broken.jpg" in trained.stderr

    predicted = lv("predict", cli_run, data / "dogs", "-o", tmp_path / "p.csv", "--json")
    assert predicted.exit_code == 0, predicted.output
    result = json.loads(predicted.stdout)
    assert result["n_predicted"] == 6 and len(result["predictions"]) == 6
    [failure] = result["failures"]
    assert failure["path"].endswith("broken.jpg") and failure["reason"] == "not_image"
    first = result["predictions"][0]
    assert first["label"] in ("cats", "dogs") and set(first["probabilities"]) == {"cats", "dogs"}
    assert first["score"] == max(first["probabilities"].values())
    assert "1 file(s) skipped" in predicted.stderr

    info = lv("info", cli_run, "--json")
    assert json.loads(info.stdout) == json.loads((cli_run / "card.json").read_text())
    evaluated = lv("evaluate", cli_run, data, "--json")
    metrics = json.loads(evaluated.stdout)
    assert metrics["n"] == 12 and len(metrics["skipped"]) == 1
    assert "broken.jpg" in evaluated.stderr
