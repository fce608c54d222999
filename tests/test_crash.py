"""A crash in a CLI verb (a bug, not a user mistake): one line naming a log with the traceback,
exit code 3; user mistakes stay exit 2 with one sentence (issue 12)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from littlevision import _crash

# A verb whose library call fails the way a bug would: open_dataset raising a plain error.
CRASHING = """
import sys
import littlevision.data.source as source

def broken(*args, **kwargs):
    raise RuntimeError("something inside broke")

source.open_dataset = broken
sys.argv = ["littlevision", "train", sys.argv[1], "-o", sys.argv[2], "--quiet"]
from littlevision.cli import main
main()
"""


def run(code: str, *args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.fixture
def env(tmp_path, monkeypatch):
    import os

    monkeypatch.setenv("LITTLEVISION_LOG_DIR", str(tmp_path / "logs"))
    return {**os.environ, "LITTLEVISION_LOG_DIR": str(tmp_path / "logs")}


def test_a_crash_is_one_line_naming_the_log_and_exit_3(tmp_path, env):
    (tmp_path / "data").mkdir()
    result = run(CRASHING, str(tmp_path / "data"), str(tmp_path / "run"), env=env)
    assert result.returncode == _crash.EXIT_CRASH == 3, result.stderr
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    assert "RuntimeError: something inside broke" in lines[0] and "bug" in lines[0]
    logs = list((tmp_path / "logs").glob("crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in lines[0]
    log = logs[0].read_text()
    assert "Traceback" in log and "something inside broke" in log and "train" in log


def test_a_user_mistake_is_still_exit_2_without_a_log(tmp_path, env):
    code = (
        "import sys; sys.argv=['littlevision','train',sys.argv[1],'-o',sys.argv[2]];"
        "from littlevision.cli import main; main()"
    )
    result = run(code, str(tmp_path / "nope"), str(tmp_path / "run"), env=env)
    assert result.returncode == 2, result.stderr
    assert "No such" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "logs").exists()


def test_the_log_falls_back_to_the_temporary_folder(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    monkeypatch.setenv("LITTLEVISION_LOG_DIR", str(blocker / "logs"))
    try:
        raise ValueError("boom")
    except ValueError as e:
        path = _crash.write_crash_log(e, ["littlevision", "x"])
    try:
        assert "boom" in path.read_text() and not str(path).startswith(str(blocker))
    finally:
        path.unlink()
