"""Suspected wrong labels on real photos: cats filed under dogs are found, with the label the
model believes in and its confidence."""

from __future__ import annotations

import shutil

import numpy as np

from littlevision.doctor.labels import out_of_fold_probabilities


def test_cats_filed_as_dogs_are_suspected(tmp_path, real_cats_dogs_dir, doctor, make):
    """Needs real cats and dogs: a wrong label shows only against classes that mean something
    (the suite's sample photos are ten unrelated subjects per class)."""
    root = make.copy_classes(real_cats_dogs_dir / "train", tmp_path / "pets", 15)
    cats = sorted((root / "cats").glob("*.jpg"))
    moved = []
    for photo in cats[:2]:
        shutil.move(photo, root / "dogs" / photo.name)
        moved.append(f"dogs/{photo.name}")
    report = doctor(root, checks=["label_issues"])
    found = {f.files[0]: f for f in report.by_check("label_issues")}
    assert set(moved) <= set(found)
    assert len(found) <= 4  # the two planted, at most a couple of genuinely odd photos
    for rel in moved:
        f = found[rel]
        assert f.details["label"] == "dogs" and f.details["predicted"] == "cats"
        assert f.details["confidence"] > 0.5
        assert f.quarantine == [rel] and f.severity == "warning"


def test_out_of_fold_probabilities_never_see_their_own_example():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5))
    y = np.repeat([0, 1], 20)
    x[y == 1] += 3.0
    x[3] += 3.0  # a class-0 point sitting among class 1: its out-of-fold prediction says so
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    p = out_of_fold_probabilities(x, y, 3, folds=5)
    assert p.shape == (40, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    assert (p[:, 2] == 0).all()  # a class with no example gets no probability
    assert p[3].argmax() == 1
