"""``compare``: every recipe on the same split, one table in Markdown, PNG and JSON."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from littlevision.cli import app


def test_compare_trains_each_recipe_on_the_same_split_and_writes_the_table(small_folder, tmp_path):
    out = tmp_path / "cmp"
    result = CliRunner().invoke(
        app,
        [
            "compare",
            str(small_folder),
            "--recipes",
            "bottleneck,scratch",
            "--epochs",
            "1",
            "-o",
            str(out),
            "-q",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    for name in ("compare.md", "compare.png", "compare.json"):
        assert (out / name).is_file(), name
    table = json.loads((out / "compare.json").read_text())
    printed = json.loads(result.stdout)  # --json: the same table on stdout
    assert printed["output"] == str(out) and printed["rows"] == table["rows"]
    rows = {r["recipe"]: r for r in table["rows"]}
    assert set(rows) == {"bottleneck", "scratch"}
    for r in rows.values():
        assert 0 <= r["accuracy"] <= 1 and r["log_loss"] >= 0 and r["train_s"] > 0
        assert r["images_per_s"] > 0 and r["model_mb"] > 0
    assert rows["scratch"]["tutorial_accuracy"] == 0.80
    assert rows["scratch"]["info"]["epochs_run"] == 1
    splits = [json.loads((out / r / "split.json").read_text()) for r in ("bottleneck", "scratch")]
    assert splits[0] == splits[1]
    md = (out / "compare.md").read_text()
    assert md.startswith("| recipe | validation accuracy | log-loss |")
    assert "tutorial (2016)" in md and "~80%" in md  # cats vs dogs: the published figures
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"


def test_unknown_recipe_is_one_sentence_and_exit_2(small_folder, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "compare",
            str(small_folder),
            "--recipes",
            "bottleneck,magic",
            "-o",
            str(tmp_path / "c"),
            "-q",
        ],
    )
    assert result.exit_code == 2
    assert "Unknown recipe 'magic'" in result.output


def test_compare_runs_tables_runs_trained_already_and_refuses_different_splits(tiny_run, tmp_path):
    import shutil

    import pytest

    from littlevision.bundle import Bundle
    from littlevision.errors import UserError
    from littlevision.training.comparison import compare_runs

    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    result = compare_runs([tiny_run, copy])
    metrics = Bundle.load(tiny_run).metrics
    assert [r.recipe for r in result.rows] == ["bottleneck", "bottleneck"]
    assert result.rows[0].accuracy == metrics["accuracy"] and result.rows[0].images_per_s > 0
    assert result.rows[0].tutorial_accuracy == 0.90  # cats and dogs: the tutorial's figure
    assert result.n_val == metrics["n"]

    split = json.loads((copy / "split.json").read_text())
    cats = split["subsets"]["validation"]["cats"]
    split["subsets"]["validation"]["cats"] = cats[1:]
    (copy / "split.json").write_text(json.dumps(split))
    with pytest.raises(UserError, match="different images"):
        compare_runs([tiny_run, copy])


def test_compare_backbones_trains_each_pair_and_draws_the_speed_frontier(small_folder, tmp_path):
    out = tmp_path / "cmp"
    result = CliRunner().invoke(
        app,
        [
            "compare",
            str(small_folder),
            "--recipes",
            "bottleneck",
            "--backbones",
            "lite0,lite1",
            "-o",
            str(out),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    table = json.loads((out / "compare.json").read_text())
    rows = {(r["recipe"], r["backbone"]): r for r in table["rows"]}
    assert set(rows) == {("bottleneck", "lite0"), ("bottleneck", "lite1")}
    assert (out / "bottleneck-lite0" / "model.onnx").is_file()
    assert json.loads((out / "bottleneck-lite1" / "card.json").read_text())["image_size"] == 240
    # the faster model is always on the frontier; the slower one only if it is more accurate
    lite0, lite1 = rows[("bottleneck", "lite0")], rows[("bottleneck", "lite1")]
    fastest = max((lite0, lite1), key=lambda r: r["images_per_s"])
    assert fastest["on_frontier"]
    other = lite1 if fastest is lite0 else lite0
    assert other["on_frontier"] == (other["accuracy"] > fastest["accuracy"])
    md = (out / "compare.md").read_text()
    assert "bottleneck (lite1, 240 px)" in md and "](compare-frontier.png)" in md
    assert (out / "compare-frontier.png").read_bytes()[:4] == b"\x89PNG"
    page = (out / "compare.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "frontier" in page


def test_frontier_keeps_what_no_other_beats_on_both():
    from littlevision.training.comparison import frontier

    points = [(0.90, 100.0), (0.95, 40.0), (0.89, 50.0), (0.95, 30.0)]
    assert frontier(points) == [True, True, False, False]


def test_unknown_backbone_is_one_sentence_and_exit_2(small_folder, tmp_path):
    result = CliRunner().invoke(
        app,
        ["compare", str(small_folder), "--backbones", "lite0,lite9", "-o", str(tmp_path / "c")],
    )
    assert result.exit_code == 2
    assert "Unknown backbone 'lite9'" in result.output
