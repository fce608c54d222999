"""CSV listings: rows without a file, files without a row, names with the wrong extension,
empty and contradictory labels -- on real photos with a hand-written labels file."""

from __future__ import annotations

import shutil

from littlevision.data.dataset import Dataset
from littlevision.doctor import examine, list_checks

LISTING = list_checks(family="listing")


def test_every_csv_inconsistency_is_reported(tmp_path, cats_dogs_dir, make):
    images = tmp_path / "shelter" / "images"
    images.mkdir(parents=True)
    cats = sorted((cats_dogs_dir / "train" / "cats").glob("*.jpg"))[:5]
    for f in cats:
        shutil.copy(f, images / f.name)
    make.save(make.open(cats[0]), images / "tabby.png", "PNG")  # the CSV will call it tabby.jpg
    rows = ["file,label"] + [f"{f.name},cat" for f in cats[:3]]
    rows += [
        "tabby.jpg,cat",
        "gone.jpg,cat",
        f"{cats[3].name},",
        f"{cats[0].name},cat",
        f"{cats[1].name},dog",
    ]
    csv = tmp_path / "shelter" / "labels.csv"
    csv.write_text("\n".join(rows) + "\n")
    report = examine(Dataset.from_csv(csv, images), root=tmp_path / "shelter", checks=LISTING)
    by = {c: report.by_check(c) for c in LISTING}
    assert by["missing_files"][0].files == ["images/gone.jpg"]
    assert set(by["unlabelled_files"][0].files) == {
        f"images/{cats[1].name}",
        f"images/{cats[3].name}",
        f"images/{cats[4].name}",
    }
    assert by["empty_labels"][0].files == [f"images/{cats[3].name}"]
    assert by["conflicting_rows"][0].files == [f"images/{cats[1].name}"]
    assert by["duplicate_rows"][0].files == [f"images/{cats[0].name}"]
    [renamed] = by["name_mismatch"]
    assert renamed.files == ["images/tabby.png"] and renamed.details["csv_name"] == "tabby.jpg"
    assert {f.severity for f in report.findings} <= {"warning", "info"}
    assert not any(f.quarantine for f in report.findings)  # listings are the user's to edit


def test_files_beside_the_class_folders_are_an_info(pets):
    (pets / "README.txt").write_text("my pets\n")
    report = examine(pets, checks=["ignored_files"])
    [f] = report.findings
    assert f.files == ["README.txt"] and f.severity == "info"
