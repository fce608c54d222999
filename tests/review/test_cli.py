"""``littlevision review``: user mistakes are one sentence and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from littlevision.errors import UserError
from littlevision.review.cli import collected_folder

REPO = Path(__file__).resolve().parents[2]


def lv(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "littlevision.cli", "review", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_help_lists_the_options():
    out = lv("--help")
    assert out.returncode == 0
    for option in ("--run", "--unlabelled", "--allow-new-classes", "--port"):
        assert option in out.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["/no/such/folder"], "No such file or folder"),
        (["{pets}", "--host", "0.0.0.0"], "loopback only"),
        (["{pets}", "--unlabelled", "/no/inbox"], "No such folder of unlabelled images"),
        (["{pets}", "--unlabelled", "{pets}/cats"], "inside the data folder"),
        (["{pets}", "--run", "{pets}"], "run"),
    ],
)
def test_mistakes_exit_2_with_one_sentence(pets, args, words):
    out = lv(*[a.format(pets=pets) for a in args], "--quick")
    assert out.returncode == 2, out.stdout + out.stderr
    text = " ".join((out.stdout + out.stderr).split())
    assert "error:" in text and words in text
    assert "Traceback" not in text


def test_a_run_folder_gives_its_collected_images(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "card.json").write_text("{}")
    with pytest.raises(UserError, match="serve RUN --collect"):
        collected_folder(run)
    (run / "collected").mkdir()
    assert collected_folder(run) == run / "collected"
    assert collected_folder(tmp_path) == tmp_path
