"""Symlinks and the doctor (issue 12, hole 6): what a link points to outside DATA's real path
is reported, never examined as part of DATA, never moved, and nothing is written there."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from littlevision.cli import app

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def linked(pets, tmp_path):
    """``pets`` plus a class folder and a file that link out of it, and one link inside it.

    ``outside/birds`` holds three copies of one photo (exact duplicates, which ``--fix`` moves)
    and ``outside/note.txt`` is not an image.
    """
    outside = tmp_path / "outside"
    (outside / "birds").mkdir(parents=True)
    photo = sorted((pets / "cats").iterdir())[0]
    for i in range(3):
        shutil.copy(photo, outside / "birds" / f"bird{i}.jpg")
    (outside / "note.txt").write_text("not an image")
    os.symlink(outside / "birds", pets / "birds", target_is_directory=True)
    os.symlink(outside / "note.txt", pets / "dogs" / "note.jpg")
    os.symlink(pets / "cats" / photo.name, pets / "dogs" / "inside-link.jpg")
    return pets, outside


def test_links_out_are_reported_not_examined_nor_moved(linked, tmp_path):
    pets, outside = linked
    before = _snapshot(outside)
    report_path = tmp_path / "report.json"
    result = CliRunner().invoke(
        app, ["doctor", str(pets), "--quick", "--json-file", str(report_path), "--fix", "all", "-q"]
    )
    assert result.exit_code == 0, result.output
    assert _snapshot(outside) == before  # nothing moved out of, or written into, outside/
    report = json.loads(report_path.read_text())
    links = [f for f in report["findings"] if f["check"] == "links_outside"]
    assert len(links) == 1, report["findings"]
    listed = set(links[0]["files"])
    assert listed == {"birds/bird0.jpg", "birds/bird1.jpg", "birds/bird2.jpg", "dogs/note.jpg"}
    examined = {f for finding in report["findings"] for f in finding["files"]} - listed
    assert not any(f.startswith("birds/") for f in examined)
    quarantine = pets.with_name(pets.name + ".quarantine")
    moved = list(quarantine.rglob("*.jpg")) if quarantine.exists() else []
    assert not any("bird" in p.name for p in moved)
    assert (pets / "birds").is_symlink() and (pets / "dogs" / "note.jpg").is_symlink()


def test_fix_never_moves_a_file_whose_real_path_is_outside(linked):
    """Even from a report that lists it (a report written before the link, or by hand)."""
    from littlevision.doctor.quarantine import fix
    from littlevision.doctor.report import Finding, Report

    pets, outside = linked
    before = _snapshot(outside)
    report = Report(
        root=str(pets),
        n_images=3,
        classes=["birds"],
        counts={},
        findings=[
            Finding(
                check="exact_duplicates",
                severity="error",
                message="copies",
                files=["birds/bird0.jpg", "birds/bird1.jpg"],
                quarantine=["birds/bird1.jpg", "dogs/note.jpg"],
            )
        ],
        checks=["exact_duplicates"],
    )
    result = fix(report, "errors")
    assert result.moved == []
    assert {s["file"] for s in result.skipped} == {"birds/bird1.jpg", "dogs/note.jpg"}
    assert all("outside the data folder" in s["why"] for s in result.skipped), result.skipped
    assert _snapshot(outside) == before


def test_restore_never_writes_through_a_link_out(pets, tmp_path):
    from littlevision.doctor.quarantine import fix, restore
    from littlevision.doctor.report import Finding, Report

    victim = sorted((pets / "cats").iterdir())[0].name
    report = Report(
        root=str(pets),
        n_images=1,
        classes=["cats"],
        counts={},
        findings=[
            Finding(
                check="exact_duplicates",
                severity="error",
                message="copy",
                files=[f"cats/{victim}"],
                quarantine=[f"cats/{victim}"],
            )
        ],
        checks=["exact_duplicates"],
    )
    assert len(fix(report, "errors").moved) == 1
    # cats/ is replaced by a link out of DATA before the restore
    elsewhere = tmp_path / "elsewhere"
    shutil.move(pets / "cats", elsewhere)
    os.symlink(elsewhere, pets / "cats", target_is_directory=True)
    result = restore(pets.with_name(pets.name + ".quarantine"))
    assert result.restored == []
    assert len(result.conflicts) == 1 and "outside the data folder" in result.conflicts[0]["why"]
    assert not (elsewhere / victim).exists()
