"""--fix moves, never deletes; --restore puts back byte for byte; interruptions are safe."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from littlevision.doctor import DoctorConfig, examine, fix, plan_fix, quarantine_dir, restore
from littlevision.doctor import quarantine as q_module
from littlevision.errors import UserError

QUICK = DoctorConfig(embeddings=False)  # exact duplicates and broken files need no model


def _tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` by relative path -> SHA-256: a byte-for-byte fingerprint."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def messy(pets, make) -> Path:
    """pets with two broken files, an exact duplicate and a copy under the other class."""
    cat, dog = make.first(pets / "cats"), make.first(pets / "dogs")
    (pets / "cats" / "empty.jpg").write_bytes(b"")
    (pets / "dogs" / "notes.txt").write_text("not a photo\n")
    shutil.copy(cat, pets / "cats" / "cat copy.jpg")
    sub = pets / "dogs" / "more"
    sub.mkdir()
    shutil.copy(dog, sub / "dog again.jpg")
    return pets


def test_fix_moves_error_files_mirroring_paths_and_restore_undoes_it(messy):
    before = _tree(messy)
    report = examine(messy, config=QUICK)
    planned = {m.file for m in plan_fix(report)}
    assert planned == {
        "cats/empty.jpg",
        "dogs/notes.txt",
        "cats/cat copy.jpg",
        "dogs/more/dog again.jpg",
    }
    result = fix(report)
    q = quarantine_dir(messy)
    assert result.quarantine == q == messy.parent / "pets.quarantine"
    assert {m["from"] for m in result.moved} == planned
    for rel in planned:
        assert not (messy / rel).exists() and (q / rel).is_file()  # moved, mirrored
    after = _tree(messy)
    moved_away = _tree(q)
    moved_away.pop("journal.jsonl")
    assert {**after, **moved_away} == before  # nothing lost, nothing changed
    journal = [json.loads(line) for line in (q / "journal.jsonl").read_text().splitlines()]
    moves = [r for r in journal if r["op"] == "move"]
    assert {r["from"] for r in moves} == planned
    assert all({"from", "to", "why", "check", "sha256"} <= set(r) for r in moves)
    assert all(r["sha256"] == before[r["from"]] for r in moves)

    undone = restore(q)
    assert sorted(undone.restored) == sorted(planned) and not undone.conflicts
    assert _tree(messy) == before
    assert [p.name for p in q.iterdir()] == ["journal.jsonl"]  # empty folders tidied, log kept


def test_a_second_fix_moves_nothing(messy):
    fix(examine(messy, config=QUICK))
    report = examine(messy, config=QUICK)
    assert not report.errors
    assert not fix(report).moved
    # a stale report (files already moved) is also harmless
    stale = examine(messy, config=QUICK)
    assert not fix(stale).moved


def test_replaying_the_same_report_skips_files_already_moved(messy):
    report = examine(messy, config=QUICK)
    first = fix(report)
    second = fix(report)
    assert not second.moved
    assert {s["file"] for s in second.skipped} == {m["from"] for m in first.moved}


def test_an_interrupted_fix_leaves_every_file_in_place_or_in_quarantine(messy, monkeypatch):
    before = _tree(messy)
    report = examine(messy, config=QUICK)
    real_move, calls = q_module._move, []

    def flaky_move(src, dst):
        calls.append(src)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C after the journal line, before the rename
        real_move(src, dst)

    monkeypatch.setattr(q_module, "_move", flaky_move)
    with pytest.raises(KeyboardInterrupt):
        fix(report)
    q = quarantine_dir(messy)
    journal = [json.loads(x) for x in (q / "journal.jsonl").read_text().splitlines()]
    moves = [r for r in journal if r["op"] == "move"]
    assert len(moves) == 3  # the third is journalled although its file never moved
    for r in moves:
        in_place, in_q = (messy / r["from"]).exists(), (q / r["to"]).exists()
        assert in_place != in_q  # exactly one of the two
    assert (messy / moves[2]["from"]).exists()
    present = {**_tree(messy), **{k: v for k, v in _tree(q).items() if k != "journal.jsonl"}}
    assert present == before

    monkeypatch.setattr(q_module, "_move", real_move)
    undone = restore(q)
    assert moves[2]["from"] in undone.already_in_place
    assert _tree(messy) == before


def test_a_journal_line_cut_short_by_a_crash_is_ignored(messy):
    report = examine(messy, config=QUICK)
    fix(report)
    q = quarantine_dir(messy)
    with open(q / "journal.jsonl", "a", encoding="utf-8") as f:
        f.write('{"op": "move", "id": "x", "fr')  # power cut mid-line
    restore(q)
    assert not (messy.parent / "pets.quarantine" / "cats").exists()
    assert (messy / "cats" / "empty.jpg").exists()


def test_restore_is_idempotent_and_never_overwrites(messy):
    before = _tree(messy)
    fix(examine(messy, config=QUICK))
    q = quarantine_dir(messy)
    (messy / "dogs" / "notes.txt").write_text("a new file with the old name\n")
    first = restore(q)
    assert [c["file"] for c in first.conflicts] == ["dogs/notes.txt"]
    assert (messy / "dogs" / "notes.txt").read_text() == "a new file with the old name\n"
    assert (q / "dogs" / "notes.txt").exists()  # the quarantined original is kept
    (messy / "dogs" / "notes.txt").unlink()
    second = restore(q)
    assert second.restored == ["dogs/notes.txt"]
    assert not restore(q).restored
    assert _tree(messy) == before


def test_copies_under_two_classes_are_all_planned_and_unknown_levels_refused(messy):
    cat = sorted((messy / "cats").glob("cat.*.jpg"))[1]
    shutil.copy(cat, messy / "dogs" / "mislabelled.jpg")
    report = examine(messy, checks=["exact_duplicates", "conflicting_labels"], config=QUICK)
    errors_only = {m.file for m in plan_fix(report, "errors")}
    assert {"dogs/mislabelled.jpg", f"cats/{cat.name}"} <= errors_only  # every copy set aside
    with pytest.raises(UserError):
        plan_fix(report, "everything")


def test_fix_all_plans_label_issue_files(messy):
    from littlevision.doctor import Finding, Report

    report = Report(
        root=str(messy),
        n_images=1,
        findings=[
            Finding(
                "label_issues",
                "warning",
                ["cats/cat copy.jpg"],
                "looks like a dog",
                quarantine=["cats/cat copy.jpg"],
            ),
            Finding("near_duplicates", "warning", ["cats/cat copy.jpg", "x.jpg"], "look alike"),
        ],
    )
    assert plan_fix(report, "errors") == []
    assert [m.file for m in plan_fix(report, "all")] == ["cats/cat copy.jpg"]


def test_a_tampered_report_cannot_move_files_outside_the_data_folder(messy, tmp_path):
    from littlevision.doctor import Finding, Report

    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    report = Report(
        root=str(messy),
        n_images=1,
        findings=[
            Finding("unreadable", "error", ["../precious.txt"], "x", quarantine=["../precious.txt"])
        ],
    )
    with pytest.raises(UserError, match="Refusing"):
        fix(report)
    assert outside.read_text() == "keep me"


def test_restore_of_a_folder_that_is_not_a_quarantine_is_a_user_error(tmp_path):
    with pytest.raises(UserError):
        restore(tmp_path)
    (tmp_path / "x.quarantine").mkdir()
    with pytest.raises(UserError, match="journal"):
        restore(tmp_path / "x.quarantine")


def test_nothing_is_ever_deleted_even_across_file_systems(messy, monkeypatch):
    """Force the cross-device path (copy, verify, then remove the original)."""
    import errno

    before = _tree(messy)
    real_rename = os.rename

    def no_rename(src, dst):
        raise OSError(errno.EXDEV, "cross-device link")

    monkeypatch.setattr(q_module.os, "rename", no_rename)
    fix(examine(messy, config=QUICK))
    q = quarantine_dir(messy)
    assert not list(q.rglob("*.partial"))
    monkeypatch.setattr(q_module.os, "rename", real_rename)
    restore(q)
    assert _tree(messy) == before
