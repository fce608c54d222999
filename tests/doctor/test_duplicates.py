"""Exact copies, near copies, train/validation leaks and one image under two classes."""

from __future__ import annotations

import shutil

from PIL import Image


def test_exact_copy_in_the_same_class_keeps_the_original(pets, doctor):
    src = sorted((pets / "cats").glob("*.jpg"))[0]
    shutil.copy(src, pets / "cats" / "copy of it.jpg")
    report = doctor(pets, checks=["exact_duplicates", "conflicting_labels"])
    [group] = report.by_check("exact_duplicates")
    assert sorted(group.files) == sorted([f"cats/{src.name}", "cats/copy of it.jpg"])
    assert group.quarantine == ["cats/copy of it.jpg"]
    assert group.severity == "error"
    assert not report.by_check("conflicting_labels")


def test_the_same_image_under_two_classes_is_an_error_and_every_copy_is_set_aside(pets, doctor):
    src = sorted((pets / "dogs").glob("*.jpg"))[1]
    shutil.copy(src, pets / "cats" / "dog_or_cat.jpg")
    report = doctor(pets, checks=["conflicting_labels"])
    [conflict] = report.by_check("conflicting_labels")
    assert sorted(conflict.files) == sorted([f"dogs/{src.name}", "cats/dog_or_cat.jpg"])
    assert sorted(conflict.quarantine) == sorted(conflict.files)
    assert conflict.details["labels"] == ["cats", "dogs"]


def test_resized_reencoded_and_cropped_copies_are_near_duplicates(pets, doctor, make):
    photos = sorted((pets / "cats").glob("*.jpg"))
    a, b, c = (make.open(p) for p in photos[:3])
    make.save(
        a.resize((a.width // 2, a.height // 2), Image.Resampling.LANCZOS),
        pets / "cats" / "small_copy.jpg",
    )
    make.save(b, pets / "cats" / "reencoded.jpg", quality=30)
    w, h = c.size
    make.save(
        c.crop((int(0.04 * w), int(0.04 * h), int(0.96 * w), int(0.96 * h))),
        pets / "cats" / "cropped.jpg",
    )
    report = doctor(pets, checks=["near_duplicates", "exact_duplicates"])
    groups = {frozenset(f.files) for f in report.by_check("near_duplicates")}
    assert frozenset({f"cats/{photos[0].name}", "cats/small_copy.jpg"}) in groups
    assert frozenset({f"cats/{photos[1].name}", "cats/reencoded.jpg"}) in groups
    assert frozenset({f"cats/{photos[2].name}", "cats/cropped.jpg"}) in groups
    assert len(groups) == 3  # and no real photo of the slice is called a copy of another
    assert not report.by_check("exact_duplicates")
    assert all(
        f.severity == "warning" and not f.quarantine for f in report.by_check("near_duplicates")
    )


def test_train_validation_leaks_exact_and_near_move_the_validation_copy(pets_split, doctor, make):
    train_cat = sorted((pets_split / "train" / "cats").glob("*.jpg"))[0]
    train_dog = sorted((pets_split / "train" / "dogs").glob("*.jpg"))[0]
    shutil.copy(train_cat, pets_split / "validation" / "cats" / "leaked.jpg")
    dog = make.open(train_dog)
    make.save(
        dog.resize((dog.width * 3 // 4, dog.height * 3 // 4)),
        pets_split / "validation" / "dogs" / "leaked_resized.jpg",
        quality=70,
    )
    report = doctor(pets_split, checks=["leakage"])
    leaks = {f.details["kind"]: f for f in report.by_check("leakage")}
    assert set(leaks) == {"exact", "near"}
    assert leaks["exact"].quarantine == ["validation/cats/leaked.jpg"]
    assert leaks["near"].quarantine == ["validation/dogs/leaked_resized.jpg"]
    assert f"train/cats/{train_cat.name}" in leaks["exact"].files
    assert all(f.severity == "error" for f in leaks.values())


def test_no_leakage_check_without_subsets(pets, doctor):
    src = sorted((pets / "cats").glob("*.jpg"))[0]
    shutil.copy(src, pets / "cats" / "again.jpg")
    assert not doctor(pets, checks=["leakage"]).findings


def test_without_embeddings_the_perceptual_hash_still_finds_resized_copies(pets, make):
    from littlevision.doctor import DoctorConfig, examine

    photo = sorted((pets / "dogs").glob("*.jpg"))[0]
    img = make.open(photo)
    shutil.copy(photo, pets / "cats" / "same_bytes.jpg")
    make.save(img.resize((img.width // 2, img.height // 2)), pets / "cats" / "half.jpg")
    report = examine(
        pets,
        checks=["exact_duplicates", "conflicting_labels"],
        config=DoctorConfig(embeddings=False),
    )
    assert "embed" not in report.timings
    [conflict] = report.by_check("conflicting_labels")  # exact + near joined, no embeddings
    assert {"cats/same_bytes.jpg", "cats/half.jpg", f"dogs/{photo.name}"} <= set(conflict.files)
