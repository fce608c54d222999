"""The journal is the source of truth: the doctor honours keep marks, and a killed review loses
nothing that was answered."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from littlevision.doctor import DoctorConfig, examine, restore
from littlevision.review import actions
from littlevision.review.journal import Journal, active_actions, keep_marks
from littlevision.review.target import open_target
from tests.review.conftest import tree

REPO = Path(__file__).resolve().parents[2]
QUICK = DoctorConfig(embeddings=False)


def test_the_doctor_honours_keep_marks_while_the_files_are_unchanged(pets):
    report = examine(pets, config=QUICK)
    [dup] = report.by_check("exact_duplicates")
    target, _ = open_target(pets)
    kept = actions.keep(target, dup.files, "exact_duplicates")
    assert keep_marks(pets)[("cats/cat.1.jpg", "exact_duplicates")]

    again = examine(pets, config=QUICK)
    assert again.by_check("exact_duplicates") == []
    assert again.reviewed == 1
    assert again.to_dict()["summary"]["reviewed"] == 1
    # a keep is for that check only
    assert examine(pets, config=DoctorConfig(embeddings=False, honour_reviews=False)).by_check(
        "exact_duplicates"
    )

    # both copies replaced by another picture: still duplicates, but not the ones a person saw
    for name in dup.files:
        shutil.copy2(pets / "cats" / "cat.5.jpg", pets / name)
    [dup2] = examine(pets, config=QUICK).by_check("exact_duplicates")
    assert set(dup2.files) == {*dup.files, "cats/cat.5.jpg"}

    # undoing the keep brings the finding back too
    actions.keep(target, dup2.files, "exact_duplicates")
    assert not examine(pets, config=QUICK).by_check("exact_duplicates")
    actions.undo(target)
    assert examine(pets, config=QUICK).by_check("exact_duplicates")
    assert kept.id


_LOOP = """
import sys
from littlevision.review import actions
from littlevision.review.journal import Journal
from littlevision.review.target import open_target
t, ds = open_target(sys.argv[1])
j = Journal(t.root)
for p, label in zip(ds.paths, ds.labels):
    other = "dogs" if label == "cats" else "cats"
    r = actions.relabel(t, t.rel(p), other, journal=j)
    print(r.id, flush=True)
    sys.stdin.readline()  # the test says when to go on
"""


def test_a_review_killed_mid_session_keeps_every_answered_action(pets):
    before = tree(pets)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _LOOP, str(pets)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    answered = []
    for _ in range(4):
        answered.append(proc.stdout.readline().strip())
        proc.stdin.write("go\n")
        proc.stdin.flush()
    proc.send_signal(signal.SIGKILL)  # while the fifth action is under way (or about to be)
    proc.wait(timeout=30)
    assert all(answered)
    active = [r["id"] for r in active_actions(Journal(pets).records())]
    assert active[: len(answered)] == answered  # every answer is in the journal, in order
    assert len(active) <= len(answered) + 1  # at most one more was under way
    result = restore(Journal(pets).quarantine)
    assert not result.conflicts
    assert tree(pets) == before


_CRASH = """
import os, sys
from littlevision.review import actions
from littlevision.review.target import open_target
t, ds = open_target(sys.argv[1])
actions.relabel(t, "cats/cat.2.jpg", "dogs")
actions._move = lambda src, dst: os.kill(os.getpid(), 9)  # dies between journal and rename
actions.relabel(t, "cats/cat.3.jpg", "dogs")
"""


def test_killed_between_the_journal_and_the_move(pets):
    before = tree(pets)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", _CRASH, str(pets)], env=env, timeout=120)
    assert out.returncode == -9
    assert (pets / "cats" / "cat.3.jpg").is_file()  # never moved
    assert [r["from"] for r in active_actions(Journal(pets).records())] == [
        "cats/cat.2.jpg",
        "cats/cat.3.jpg",
    ]
    result = restore(Journal(pets).quarantine)
    assert result.restored == ["cats/cat.2.jpg"]
    assert result.already_in_place == ["cats/cat.3.jpg"]
    assert tree(pets) == before
