"""``littlevision doctor``: exit codes 0 (ran) / 1 (--fail-on) / 2 (user mistake), reports,
--fix and --restore through the command line."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from littlevision.cli import app

QUICK = ["--only", "unreadable", "--only", "exact_duplicates", "--only", "tiny", "-q"]


def _run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def _tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_a_full_run_exits_0_and_writes_json_and_html(pets, make, tmp_path):
    shutil.copy(make.first(pets / "cats"), pets / "dogs" / "which.jpg")
    result = _run(
        "doctor", pets, "--json-file", tmp_path / "r.json", "--html", tmp_path / "r.html", "-q"
    )
    assert result.exit_code == 0, result.output
    assert "The same image under two classes" in result.output
    assert "--fix" in result.output  # says what to do next
    data = json.loads((tmp_path / "r.json").read_text())
    assert {f["check"] for f in data["findings"]} >= {"exact_duplicates", "conflicting_labels"}
    assert (tmp_path / "r.html").read_text().startswith("<!doctype html>")


def test_fail_on_exits_1_only_when_findings_of_that_severity_exist(pets, make):
    assert _run("doctor", pets, *QUICK, "--fail-on", "error").exit_code == 0
    make.save(make.open(make.first(pets / "cats")).resize((30, 20)), pets / "cats" / "tiny.jpg")
    assert _run("doctor", pets, *QUICK, "--fail-on", "error").exit_code == 0
    assert _run("doctor", pets, *QUICK, "--fail-on", "warning").exit_code == 1
    (pets / "dogs" / "empty.jpg").write_bytes(b"")
    assert _run("doctor", pets, *QUICK).exit_code == 0  # found errors, but no --fail-on
    assert _run("doctor", pets, *QUICK, "--fail-on", "error").exit_code == 1


@pytest.mark.parametrize(
    "args",
    [
        ["doctor", "{missing}"],
        ["doctor", "{pets}", "--fail-on", "sometimes"],
        ["doctor", "{pets}", "--fix", "everything"],
        ["doctor", "{pets}", "all"],
        ["doctor", "{pets}", "--only", "no_such_check"],
        ["doctor", "--restore", "{pets}"],
        ["doctor", "{pets}", "--restore", "{pets}"],
        ["doctor"],
    ],
)
def test_user_mistakes_exit_2_with_one_sentence(pets, tmp_path, args):
    filled = [a.format(pets=pets, missing=tmp_path / "nowhere") for a in args]
    result = _run(*filled)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "error" in result.output.lower() or "usage" in result.output.lower()


def test_fix_then_restore_from_the_command_line_is_byte_for_byte(pets, make):
    before = _tree(pets)
    shutil.copy(make.first(pets / "dogs"), pets / "dogs" / "again.jpg")
    (pets / "cats" / "empty.jpg").write_bytes(b"")
    with_problems = _tree(pets)
    fixed = _run("doctor", pets, *QUICK, "--fix")
    assert fixed.exit_code == 0, fixed.output
    assert _tree(pets) == before  # exactly the two bad files left
    quarantine = pets.parent / "pets.quarantine"
    assert (quarantine / "journal.jsonl").is_file()
    again = _run("doctor", pets, *QUICK, "--fix")
    assert "nothing to move" in again.output
    restored = _run("doctor", "--restore", quarantine)
    assert restored.exit_code == 0, restored.output
    assert "restored 2 file(s)" in restored.output
    assert _tree(pets) == with_problems


def test_fix_before_the_folder_is_understood(pets):
    (pets / "cats" / "empty.jpg").write_bytes(b"")
    result = _run("doctor", "--fix", pets, *QUICK)
    assert result.exit_code == 0, result.output
    assert not (pets / "cats" / "empty.jpg").exists()


def test_fix_all_also_quarantines_warnings_of_fix_level_all(pets, make):
    from littlevision.doctor import get_check

    assert get_check("outliers").fix == "all" and get_check("label_issues").fix == "all"
    (pets / "cats" / "empty.jpg").write_bytes(b"")
    result = _run("doctor", pets, "--fix", "all", *QUICK)
    assert result.exit_code == 0, result.output
    assert "--fix all" in result.output and not (pets / "cats" / "empty.jpg").exists()


def test_quick_runs_without_a_model(pets):
    result = _run("doctor", pets, "--quick", "-q", "--json")
    assert result.exit_code == 0, result.output
    checks = json.loads(result.stdout)["summary"]["checks_run"]
    assert "label_issues" not in checks and "exact_duplicates" in checks


def test_json_to_stdout(pets):
    result = _run("doctor", pets, *QUICK, "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["summary"]["n_images"] == 12


def test_csv_data_reports_paths_relative_to_the_folder_given(tmp_path, cats_dogs_dir):
    folder = tmp_path / "shelter"
    (folder / "images").mkdir(parents=True)
    names = [f.name for f in sorted((cats_dogs_dir / "train" / "cats").glob("*.jpg"))[:4]]
    for n in names:
        shutil.copy(cats_dogs_dir / "train" / "cats" / n, folder / "images" / n)
    rows = [f"{n},cat" for n in names[:3]] + ["gone.jpg,cat", f"{names[3]},dog"]
    (folder / "labels.csv").write_text("id,label\n" + "\n".join(rows) + "\n")
    result = _run("doctor", folder, "--only", "missing_files", "-q", "--json")
    data = json.loads(result.stdout)
    assert data["findings"][0]["files"] == ["images/gone.jpg"]
