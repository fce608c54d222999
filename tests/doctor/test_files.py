"""Broken files are errors with the right check; valid but unusual images never are."""

from __future__ import annotations

from PIL import Image

from littlevision.doctor import DoctorConfig, examine, list_checks

FILE_CHECKS = list_checks(family="files")


def _checks_for(report, rel):
    return {f.check for f in report.findings if rel in f.files}


def test_broken_files_are_each_reported_once_by_their_check(pets, make):
    photo = make.first(pets / "cats")
    data = photo.read_bytes()
    (pets / "cats" / "empty.jpg").write_bytes(b"")
    (pets / "cats" / "cut.jpg").write_bytes(data[: len(data) // 2])
    (pets / "dogs" / "notes.txt").write_text("not a picture\n")
    (pets / "dogs" / "Thumbs.db").write_bytes(bytes.fromhex("d0cf11e0a1b11ae1") + b"\0" * 504)
    (pets / "dogs" / "bomb.png").write_bytes(
        make.png_claiming(make.open(photo).resize((40, 30)), 20000, 20000)
    )
    report = examine(pets, checks=FILE_CHECKS)
    assert _checks_for(report, "cats/empty.jpg") == {"unreadable"}
    assert report.by_check("unreadable")[0].details["reason"] == "empty"
    assert _checks_for(report, "cats/cut.jpg") == {"truncated"}
    assert _checks_for(report, "dogs/notes.txt") == {"not_an_image"}
    assert _checks_for(report, "dogs/Thumbs.db") == {"not_an_image"}
    assert _checks_for(report, "dogs/bomb.png") == {"decompression_bomb"}
    assert len(report.errors) == 5
    assert all(f.severity == "error" and f.quarantine == f.files for f in report.errors)


def test_the_pixel_limit_is_a_setting(pets, make):
    photo = make.first(pets / "dogs")
    w, h = Image.open(photo).size
    report = examine(pets, checks=["decompression_bomb"], config=DoctorConfig(max_pixels=w * h - 1))
    assert f"dogs/{photo.name}" in report.flagged_files("decompression_bomb")


def test_a_vanished_file_is_a_finding_not_a_crash(pets):
    from littlevision.data.dataset import Dataset

    ds = Dataset.from_folder(pets)
    victim = ds.paths[0]
    victim.unlink()
    report = examine(ds, config=DoctorConfig(embeddings=False))
    assert report.by_check("unreadable")[0].files == [ds.relative(victim).as_posix()]
