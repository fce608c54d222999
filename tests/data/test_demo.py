"""The embedded demo dataset: real scanned digits written as a class-folder tree."""

from __future__ import annotations

import numpy as np
import pytest

from littlevision.data import DIGITS_COUNT, Dataset, decode_many, load_image, write_digits_folder


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return write_digits_folder(tmp_path_factory.mktemp("demo") / "digits")


def test_writes_every_digit_in_class_folders(digits):
    ds = Dataset.from_folder(digits)
    assert ds.classes == [str(d) for d in range(10)]
    assert len(ds) == DIGITS_COUNT == 1797
    assert min(ds.counts().values()) >= 170
    assert all(p.suffix == ".png" for p in ds.paths)


def test_images_are_32px_dark_ink_on_white(digits):
    first = load_image(digits / "0" / "digit_0000.png")
    assert first.shape == (32, 32, 3)
    assert first[..., 0].max() == 255 and first[..., 0].min() < 64  # paper and ink
    assert (first[..., 0] == first[..., 2]).all()  # grayscale


def test_pixels_are_the_scikit_learn_scans(digits):
    from sklearn.datasets import load_digits

    scans = load_digits()
    i = 42
    label = int(scans.target[i])
    img = load_image(digits / str(label) / f"digit_{i:04d}.png", 8)[..., 0].astype(float)
    ink = 255.0 - scans.images[i] * 255.0 / 16.0
    assert np.corrcoef(img.ravel(), ink.ravel())[0, 1] > 0.9


def test_is_idempotent_and_completes_an_interrupted_write(digits):
    files = sorted(digits.rglob("*.png"))
    stamps = [f.stat().st_mtime_ns for f in files]
    assert write_digits_folder(digits) == digits
    assert [f.stat().st_mtime_ns for f in files] == stamps  # nothing rewritten
    files[5].unlink()
    write_digits_folder(digits)
    assert files[5].is_file() and len(list(digits.rglob("*.png"))) == DIGITS_COUNT
    assert not list(digits.rglob(".*"))  # no temporary files left behind


def test_all_decode(digits):
    result = decode_many(sorted(digits.rglob("*.png"))[:200], 32)
    assert not result.failures


def test_size_is_validated(tmp_path):
    with pytest.raises(ValueError, match="size >= 8"):
        write_digits_folder(tmp_path, size=4)
