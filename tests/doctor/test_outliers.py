"""Outliers: an off-topic real photo and a blanked-out photo among pets stand out."""

from __future__ import annotations

import numpy as np

from littlevision.doctor.outliers import outlier_threshold, robust_z


def test_an_erased_photo_is_an_outlier(tmp_path, cats_dogs_dir, doctor, make):
    root = make.copy_classes(cats_dogs_dir / "train", tmp_path / "pets", 25)
    blank = make.open(make.first(root / "dogs")).point(lambda v: 128)  # the photo, erased
    make.save(blank, root / "dogs" / "erased.jpg")
    report = doctor(root, checks=["outliers"])
    assert report.flagged_files("outliers") == {"dogs/erased.jpg"}
    top = report.by_check("outliers")[0]
    assert top.severity == "warning" and top.quarantine == top.files
    assert top.details["score"] >= top.details["threshold"] >= 3.0


def test_robust_z_ignores_the_extremes_it_measures():
    values = np.array([1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 10.0])
    z = robust_z(values)
    assert z[-1] > 50 and abs(z[:-1]).max() < 2


def test_the_threshold_grows_with_the_number_of_images():
    assert outlier_threshold(50) == 3.0
    assert 3.9 < outlier_threshold(2800) < 4.1
    assert outlier_threshold(10, fixed=2.5) == 2.5
