"""Class balance: a strongly imbalanced set and a class with too few images."""

from __future__ import annotations

from littlevision.doctor import DoctorConfig, examine


def test_imbalance_and_too_few_images(pets):
    for photo in sorted((pets / "dogs").glob("*.jpg"))[1:]:
        photo.unlink()
    report = examine(pets, checks=["class_imbalance", "too_few_images"])
    [imbalance] = report.by_check("class_imbalance")
    assert imbalance.details["counts"] == {"cats": 6, "dogs": 1}
    assert imbalance.files == [] and imbalance.severity == "warning"
    few = {f.details["label"]: f.details["count"] for f in report.by_check("too_few_images")}
    assert few == {"cats": 6, "dogs": 1}


def test_broken_files_do_not_count_and_balance_within_the_ratio_is_fine(pets):
    (pets / "dogs" / "broken.jpg").write_bytes(b"")
    config = DoctorConfig(min_per_class=6)
    report = examine(pets, checks=["class_imbalance", "too_few_images"], config=config)
    assert not report.findings
