"""retrain -> gate -> promote or reject; versions; rollback restores bytes; bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from littlevision._io import file_sha256
from littlevision.bundle import Bundle
from littlevision.errors import UserError
from littlevision.lifecycle import GateRule, retrain, rollback, versions

from .conftest import add_feedback


def test_feedback_retrains_and_the_gate_promotes(retrained, tiny_run):
    run, result = retrained
    assert result.promoted and not result.forced and result.version == 2
    assert result.data["n_feedback_train"] + result.data["n_feedback_held_out"] == 20
    assert result.data["n_feedback_held_out"] > 0
    frozen = result.gate["frozen_validation"]
    assert frozen["current"]["n"] == frozen["candidate"]["n"] == 12
    bundle = Bundle.load(run)
    assert bundle.run_version == 2 and bundle.name == Bundle.load(tiny_run).name
    assert bundle.card["lifecycle"]["parent"] == 1
    assert (run / "model.onnx").is_symlink() and (run / "current").is_symlink()
    # the run's files are the new version's, read through the same paths as before
    assert file_sha256(run / "model.onnx") == file_sha256(run / "versions/2/model.onnx")
    assert file_sha256(run / "versions/1/model.onnx") == file_sha256(tiny_run / "model.onnx")


def test_versions_lists_every_version_with_its_figures(retrained):
    run, _ = retrained
    found = versions(run)
    assert [(v.version, v.status) for v in found] == [(1, "promoted"), (2, "serving")]
    assert found[1].gate["passed"] and found[1].data["n_feedback_train"] > 0
    r = CliRunner().invoke(__import__("littlevision.cli").cli.app, ["versions", str(run), "--json"])
    assert r.exit_code == 0
    assert [v["status"] for v in json.loads(r.stdout)] == ["promoted", "serving"]


def test_rollback_restores_the_earlier_model_byte_for_byte(retrained_copy, tiny_run):
    before = {n: file_sha256(tiny_run / n) for n in ("model.onnx", "labels.json", "novelty.npz")}
    result = rollback(retrained_copy)
    assert (result.version, result.previous) == (1, 2)
    for name, digest in before.items():
        assert file_sha256(retrained_copy / name) == digest
    assert Bundle.load(retrained_copy).run_version == 1
    with pytest.raises(UserError, match="no version before 1"):
        rollback(retrained_copy)
    assert rollback(retrained_copy, to=2).version == 2


def test_the_gate_rejects_a_worse_candidate_and_keeps_serving(retrained_copy, cats_dogs_dir):
    served = file_sha256(retrained_copy / "model.onnx")
    shutil.rmtree(retrained_copy / "feedback")
    add_feedback(retrained_copy, cats_dogs_dir, per_class=30, start=0, swap=True)
    result = retrain(retrained_copy)
    assert not result.promoted and result.version == 3 and result.reasons
    assert file_sha256(retrained_copy / "model.onnx") == served
    assert [v.status for v in versions(retrained_copy)] == ["promoted", "serving", "rejected"]
    # --force promotes it anyway, and says so
    forced = retrain(retrained_copy, force=True)
    assert forced.promoted and forced.forced
    assert versions(retrained_copy)[-1].forced


def test_a_gate_made_to_fail_on_purpose_rejects(retrained_copy):
    result = retrain(retrained_copy, rule=GateRule(log_loss_slack=-10.0))
    assert not result.promoted and "log-loss" in result.reasons[0]
    assert Bundle.load(retrained_copy).run_version == 2


def test_bad_input_is_one_sentence_and_a_non_zero_exit(retrained_copy, tmp_path):
    from littlevision.cli import app

    runner = CliRunner()
    unknown = retrained_copy / "feedback" / "horses"
    unknown.mkdir()
    shutil.copy2(next((retrained_copy / "feedback" / "cats").iterdir()), unknown / "h.jpg")
    r = runner.invoke(app, ["retrain", str(retrained_copy)])
    assert (
        r.exit_code == 2 and "'horses' (1 images)" in r.output and "--allow-new-classes" in r.output
    )
    shutil.rmtree(unknown)
    r = runner.invoke(app, ["retrain", str(retrained_copy), "--data", str(tmp_path / "nowhere")])
    assert r.exit_code == 2 and "--data" in r.output and "Traceback" not in r.output
    empty = tmp_path / "empty"
    shutil.copytree(retrained_copy, empty, symlinks=True)
    shutil.rmtree(empty / "feedback")
    r = runner.invoke(app, ["retrain", str(empty)])
    assert r.exit_code == 2 and "No feedback" in r.output
    r = runner.invoke(app, ["rollback", str(retrained_copy), "--to", "9"])
    assert r.exit_code == 2 and "no version 9" in r.output


def test_a_second_retrain_at_once_refuses(retrained_copy):
    from littlevision.lifecycle.layout import lifecycle_lock

    with lifecycle_lock(retrained_copy):  # another process, as far as the lock can tell
        code = (
            "import sys; from littlevision.lifecycle import retrain\n"
            "from littlevision.errors import UserError\n"
            f"try: retrain({str(retrained_copy)!r})\n"
            "except UserError as e: print(e); sys.exit(2)\n"
        )
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 2 and "Another retrain" in p.stdout


def test_a_corrupt_version_is_never_promoted(retrained_copy):
    onnx = retrained_copy / "versions" / "1" / "model.onnx"
    onnx.write_bytes(b"not an onnx model")
    with pytest.raises(UserError, match="does not load"):
        rollback(retrained_copy, to=1)
    assert Bundle.load(retrained_copy).run_version == 2


def test_a_new_class_is_added_only_when_allowed(retrained_copy, tmp_path):
    from littlevision.data.demo import write_digits_folder

    digits = write_digits_folder(tmp_path / "digits")
    out = retrained_copy / "feedback" / "digits"
    out.mkdir()
    for f in sorted(digits.rglob("*.png"))[::60][:25]:
        shutil.copy2(f, out / f.name)
    result = retrain(retrained_copy, allow_new_classes=True, force=True)
    assert result.data["new_classes"] == ["digits"]
    assert Bundle.load(retrained_copy).labels == ["cats", "dogs", "digits"]


def test_prune_keeps_the_newest_and_the_served(retrained_copy):
    rollback(retrained_copy)  # serve 1
    retrain(retrained_copy, rule=GateRule(log_loss_slack=-10.0))  # 3, rejected
    found = versions(retrained_copy, prune=1)
    assert [v.version for v in found] == [1, 3]
    assert not (retrained_copy / "versions" / "2").exists()
    assert Path(retrained_copy / "feedback").is_dir()  # images are never deleted


def test_a_full_disk_during_retrain_is_one_sentence_and_changes_nothing(
    retrained_copy, monkeypatch
):
    import errno

    import littlevision.training.run as run_module

    served = file_sha256(retrained_copy / "model.onnx")
    numbers = sorted(p.name for p in (retrained_copy / "versions").iterdir())

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "model.keras")

    monkeypatch.setattr(run_module, "write_bundle", full)
    with pytest.raises(UserError, match="No space left on device.*still served"):
        retrain(retrained_copy)
    assert file_sha256(retrained_copy / "model.onnx") == served
    assert sorted(p.name for p in (retrained_copy / "versions").iterdir()) == numbers
