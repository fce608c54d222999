"""Every verb that writes checks its output path before the work starts (issue 12, hole 5):
one sentence, exit 2, nothing left behind, and no work done first."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from littlevision._paths import check_output_dir, check_output_file
from littlevision.cli import app
from littlevision.errors import UserError

runner = CliRunner()


def _listing(root) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def place(tmp_path):
    (tmp_path / "a_folder").mkdir()
    (tmp_path / "a_file.txt").write_text("keep me")
    (tmp_path / "image.jpg").write_bytes(b"\xff\xd8\xff not really")
    (tmp_path / "run").mkdir()  # not a run: the output must be refused before the run is read
    return tmp_path


# The output is wrong in each case; the other arguments may be wrong too, so a verb that read
# its inputs first would say something else.
CASES = {
    "predict into a folder": ["predict", "{t}/run", "{t}/image.jpg", "-o", "{t}/a_folder"],
    "predict into .": ["predict", "{t}/run", "{t}/image.jpg", "-o", "."],
    "predict into /proc": ["predict", "{t}/run", "{t}/image.jpg", "-o", "/proc/self/x.csv"],
    "predict under a file": ["predict", "{t}/run", "{t}/image.jpg", "-o", "{t}/a_file.txt/p.csv"],
    "train onto a file": ["train", "{t}/a_folder", "-o", "{t}/a_file.txt"],
    "train under /proc": ["train", "{t}/a_folder", "-o", "/proc/self/run"],
    "doctor --json-file into a folder": ["doctor", "{t}/a_folder", "--json-file", "{t}/a_folder"],
    "doctor --html under a file": ["doctor", "{t}/a_folder", "--html", "{t}/a_file.txt/r.html"],
    "explain onto a file": ["explain", "{t}/run", "{t}/image.jpg", "-o", "{t}/a_file.txt"],
    "feature-maps into a folder": ["feature-maps", "{t}/run", "{t}/image.jpg", "-o", "{t}"],
    "filters onto a file": ["filters", "{t}/run", "-o", "{t}/a_file.txt"],
    "report into a folder": ["report", "{t}/run", "-o", "{t}/a_folder"],
    "compare onto a file": ["compare", "{t}/a_folder", "-o", "{t}/a_file.txt"],
    "demo onto a file": ["demo", "-o", "{t}/a_file.txt", "--data", "{t}/digits"],
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_wrong_output_is_one_sentence_exit_2_and_leaves_nothing(case, place, monkeypatch):
    if "/proc" in " ".join(CASES[case]) and not os.path.isdir("/proc/self"):
        pytest.skip("needs /proc")
    monkeypatch.chdir(place)
    before = _listing(place)
    args = [a.format(t=place) for a in CASES[case]]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Cannot write" in result.output, result.output
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())  # rich wraps at the terminal's width
    assert text.startswith("error: Cannot write") and text.count("error") == 1, text
    assert _listing(place) == before
    assert (place / "a_file.txt").read_text() == "keep me"


def test_the_checks_accept_what_can_be_written(tmp_path):
    assert check_output_file(tmp_path / "new" / "deeper" / "p.csv") == tmp_path / "new/deeper/p.csv"
    assert check_output_file(tmp_path / "existing.csv") == tmp_path / "existing.csv"
    (tmp_path / "existing.csv").write_text("old")
    check_output_file(tmp_path / "existing.csv")  # overwriting a file is fine
    check_output_dir(tmp_path)
    check_output_dir(tmp_path / "new-run")
    assert _listing(tmp_path) == {"existing.csv"}  # nothing created by checking


def test_the_checks_refuse_a_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK) and os.geteuid() == 0:
            pytest.skip("root writes everywhere")
        with pytest.raises(UserError, match="cannot be created"):
            check_output_file(ro / "p.csv")
    finally:
        ro.chmod(0o700)
