"""Per-image measures are pure functions of pixels, checked on a real photo."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from littlevision.data.decode import load_image
from littlevision.doctor.measures import (
    MEASURES,
    brightness,
    colourfulness,
    contrast,
    dark_level,
    entropy,
    light_level,
    measure_all,
    sharpness,
)


@pytest.fixture(scope="module")
def photo(cats_dogs_dir) -> np.ndarray:
    return load_image(cats_dogs_dir / "train" / "cats" / "cat.1.jpg", 128)


def test_every_measure_is_a_float_of_the_pixels(photo):
    values = measure_all(photo)
    assert set(values) == set(MEASURES)
    assert all(isinstance(v, float) for v in values.values())
    assert measure_all(photo.copy()) == values  # pure: same pixels, same numbers


def test_a_blank_image_has_no_contrast_entropy_or_detail():
    blank = np.full((64, 64, 3), 90, np.uint8)
    assert contrast(blank) == 0.0 and entropy(blank) == 0.0 and sharpness(blank) == 0.0
    assert brightness(blank) == pytest.approx(90.0, abs=0.01)


def test_darkening_and_brightening_move_the_levels(photo):
    dark = (photo * 0.1).astype(np.uint8)
    light = (255 - (255 - photo.astype(np.float32)) * 0.1).astype(np.uint8)
    assert dark_level(dark) < 40 < dark_level(photo)
    assert light_level(light) > 200 > light_level(photo)


def test_blur_lowers_sharpness_and_grey_has_no_colour(photo):
    blurred = np.asarray(Image.fromarray(photo).filter(ImageFilter.GaussianBlur(3)))
    assert sharpness(blurred) < 0.2 * sharpness(photo)
    grey = np.repeat(photo.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    assert colourfulness(grey) == 0.0 < colourfulness(photo)
