"""examine(): from a path or a Dataset, with check selection, from a notebook."""

from __future__ import annotations

import shutil

import pytest

import littlevision.doctor as doctor_pkg
from littlevision.data.dataset import Dataset
from littlevision.doctor import DoctorConfig, examine, list_checks, select_checks
from littlevision.errors import UserError


def test_a_path_a_dataset_and_a_slice_all_work(pets):
    quick = DoctorConfig(embeddings=False)
    by_path = examine(str(pets), config=quick)
    ds = Dataset.from_folder(pets)
    by_ds = examine(ds, config=quick)
    assert by_path.findings == by_ds.findings and by_path.n_images == 12
    sliced = examine(ds[:3], config=quick)
    assert sliced.n_images == 3 and sliced.root == str(pets.absolute())


def test_selection_and_skips(pets):
    assert select_checks(["blurry", "unreadable"]) == ["unreadable", "blurry"]  # report order
    assert "label_issues" not in select_checks(skip=["label_issues"])
    assert select_checks() == list_checks()
    report = examine(pets, checks=["tiny", "blank"])
    assert report.checks == ["tiny", "blank"] and "embed" not in report.timings
    with pytest.raises(UserError):
        select_checks(skip=["nope"])


def test_embeddings_are_computed_once_and_shared_with_training_cache(pets, doctor, embedder):
    shutil.copy(sorted((pets / "cats").glob("*.jpg"))[0], pets / "cats" / "x.jpg")
    report = doctor(pets)
    assert set(report.checks) == set(list_checks())
    assert report.timings["embed"] >= 0
    again = embedder.embed_paths(sorted(pets.rglob("*.jpg")))
    assert again.n_cached == 13  # the doctor filled the cache training reads


def test_the_public_surface_is_complete():
    for name in doctor_pkg.__all__:
        assert getattr(doctor_pkg, name) is not None
    assert {"examine", "Report", "Finding", "fix", "restore", "register_check"} <= set(
        doctor_pkg.__all__
    )
    with pytest.raises(AttributeError):
        doctor_pkg.no_such_name  # noqa: B018
