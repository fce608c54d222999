"""keep, relabel, quarantine and undo on real photos: every round trip ends byte-identical."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from littlevision.doctor import restore
from littlevision.errors import UserError
from littlevision.review import actions
from littlevision.review.journal import Journal, StaleError, active_actions
from littlevision.review.target import open_target
from tests.review.conftest import folders, tree

REPO = Path(__file__).resolve().parents[2]


def journal_ops(root: Path) -> list[str]:
    lines = (root.with_name(root.name + ".quarantine") / "journal.jsonl").read_text().splitlines()
    return [json.loads(line)["op"] for line in lines]


def test_relabel_moves_the_file_and_undo_puts_it_back(pets):
    before = tree(pets)
    target, _ = open_target(pets)
    result = actions.relabel(target, "cats/cat.2.jpg", "dogs")
    assert result.now == "dogs/cat.2.jpg"
    assert not (pets / "cats" / "cat.2.jpg").exists()
    moved = tree(pets)
    assert moved[str(pets / "dogs" / "cat.2.jpg")] == before[str(pets / "cats" / "cat.2.jpg")]
    undone = actions.undo(target)
    assert undone.op == "undo" and undone.file == "cats/cat.2.jpg"
    assert tree(pets) == before
    assert journal_ops(pets) == ["begin", "relabel", "begin", "restored"]


def test_a_name_taken_in_the_new_class_is_never_overwritten(pets):
    target, _ = open_target(pets)
    shutil.copy2(pets / "cats" / "cat.3.jpg", pets / "dogs" / "cat.3.jpg")
    before = tree(pets)
    result = actions.relabel(target, "cats/cat.3.jpg", "dogs")
    assert result.now == "dogs/cat.3~1.jpg"
    actions.undo(target)
    assert tree(pets) == before


def test_every_kind_of_action_is_restored_byte_for_byte_by_the_doctor(pets, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for f in sorted((pets / "dogs").iterdir())[:2]:
        shutil.move(f, inbox / f.name)
    before = tree(pets, inbox)
    dirs = folders(pets)
    target, _ = open_target(pets)
    j = Journal(pets)
    actions.relabel(target, "cats/cat.1.jpg", "dogs", journal=j)
    actions.quarantine(target, "cats/cat.1 copy.jpg", journal=j)
    actions.keep(target, ["cats/cat.4.jpg"], "label_issues", journal=j)
    actions.relabel(target, "dogs/dog.3.jpg", "birds", allow_new_classes=True, journal=j)
    inbox_files = sorted(inbox.iterdir())
    actions.label(target, inbox_files[0], "cats", journal=j)
    actions.quarantine_external(target, inbox_files[1], journal=j)
    assert (pets / "birds" / "dog.3.jpg").is_file()
    assert tree(pets, inbox) != before

    result = restore(j.quarantine)
    assert not result.conflicts
    assert tree(pets, inbox) == before
    assert folders(pets) == dirs  # the 'birds' folder the relabel made is gone again
    # a second restore has nothing left to do
    again = restore(j.quarantine)
    assert again.restored == [] and again.conflicts == []


def test_unknown_class_is_refused_unless_allowed(pets):
    target, _ = open_target(pets)
    before = tree(pets)
    with pytest.raises(UserError, match="There is no class 'birds'.*--allow-new-classes"):
        actions.relabel(target, "cats/cat.2.jpg", "birds")
    with pytest.raises(UserError, match="cannot be a class name"):
        actions.relabel(target, "cats/cat.2.jpg", "../escape", allow_new_classes=True)
    with pytest.raises(UserError, match="already in class 'cats'"):
        actions.relabel(target, "cats/cat.2.jpg", "cats")
    with pytest.raises(UserError, match="not a path inside"):
        actions.relabel(target, "../pets/cats/cat.2.jpg", "dogs")
    assert tree(pets) == before


def test_files_gone_or_changed_since_listed_are_skipped(pets):
    target, _ = open_target(pets)
    path = pets / "cats" / "cat.2.jpg"
    st = path.stat()
    listed = (st.st_size, st.st_mtime_ns)
    with path.open("ab") as f:
        f.write(b"\0")  # edited by another program after the queue was built
    with pytest.raises(StaleError, match="changed since it was listed"):
        actions.relabel(target, "cats/cat.2.jpg", "dogs", expect=listed)
    path.unlink()
    with pytest.raises(StaleError, match="not there any more"):
        actions.quarantine(target, "cats/cat.2.jpg")
    j = Journal(pets)
    assert active_actions(j.records()) == []


def test_keep_needs_the_files_and_undo_needs_something(pets):
    target, _ = open_target(pets)
    with pytest.raises(UserError, match="Nothing to undo"):
        actions.undo(target)
    kept = actions.keep(target, ["cats/cat.2.jpg", "cats/cat.3.jpg"], "exact_duplicates")
    assert [f["file"] for f in kept.record["files"]] == ["cats/cat.2.jpg", "cats/cat.3.jpg"]
    with pytest.raises(UserError, match="No action nope to undo"):
        actions.undo(target, "nope")
    actions.undo(target, kept.id)
    with pytest.raises(UserError, match="undone already"):
        actions.undo(target, kept.id)


def _as_unprivileged(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a Python process that cannot write into read-only folders, even as root
    (root ignores file modes unless it drops CAP_DAC_OVERRIDE)."""
    cmd = [sys.executable, "-c", code]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot make a folder read-only")
        caps = "-dac_override,-dac_read_search,-fowner"
        cmd = [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}", *cmd]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)


def test_a_read_only_data_folder_changes_nothing(pets):
    target, _ = open_target(pets)
    actions.keep(target, ["cats/cat.2.jpg"])  # the journal exists and stays writable
    before = tree(pets)
    records = Journal(pets).records()
    for d in (pets, pets / "cats", pets / "dogs"):
        d.chmod(0o555)
    try:
        out = _as_unprivileged(
            "from littlevision.review import actions\n"
            "from littlevision.review.target import open_target\n"
            "from littlevision.errors import UserError\n"
            f"t, _ = open_target({str(pets)!r})\n"
            "for call in (lambda: actions.relabel(t, 'cats/cat.2.jpg', 'dogs'),\n"
            "             lambda: actions.quarantine(t, 'cats/cat.3.jpg')):\n"
            "    try:\n"
            "        call()\n"
            "    except UserError as e:\n"
            "        print(type(e).__name__, e)\n"
        )
    finally:
        for d in (pets, pets / "cats", pets / "dogs"):
            d.chmod(0o755)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2, out.stdout
    assert all(line.startswith("ConflictError") and "read-only" in line for line in lines)
    assert "Nothing was changed" in lines[0]
    assert tree(pets) == before
    assert Journal(pets).records() == records  # nothing half-done in the journal either


def test_a_read_only_parent_cannot_hold_a_journal(pets):
    target, _ = open_target(pets)
    parent = pets.parent
    parent.chmod(0o555)
    try:
        out = _as_unprivileged(
            "from littlevision.review import actions\n"
            "from littlevision.review.target import open_target\n"
            "from littlevision.errors import UserError\n"
            f"t, _ = open_target({str(pets)!r})\n"
            "try:\n"
            "    actions.relabel(t, 'cats/cat.2.jpg', 'dogs')\n"
            "except UserError as e:\n"
            "    print(type(e).__name__, e)\n"
        )
    finally:
        parent.chmod(0o755)
    assert out.stdout.startswith("ConflictError Cannot write the review journal"), out
    assert (pets / "cats" / "cat.2.jpg").is_file()


def test_tutorial_layout_relabels_within_its_subset(cats_dogs_dir, tmp_path):
    from tests.review.conftest import copy_classes

    root = tmp_path / "split"
    copy_classes(cats_dogs_dir / "train", root / "train", 2)
    copy_classes(cats_dogs_dir / "validation", root / "validation", 2)
    before = tree(root)
    target, _ = open_target(root)
    assert target.tutorial
    f = sorted((root / "validation" / "cats").iterdir())[0].name
    result = actions.relabel(target, f"validation/cats/{f}", "dogs")
    assert result.now == f"validation/dogs/{f}"
    actions.undo(target)
    assert tree(root) == before
