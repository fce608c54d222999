"""Tiny, elongated, blank, dark, overexposed and blurry images, each made from a real photo."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from littlevision.doctor import examine, list_checks

QUALITY = list_checks(family="quality")


def _fault(img: Image.Image, kind: str) -> Image.Image:
    w, h = img.size
    if kind == "tiny":
        return img.resize((40, 30))
    if kind == "extreme_aspect_ratio":
        return img.crop((0, h // 2 - 40, w, h // 2 + 40)).resize((480, 120))
    if kind == "blank":
        return img.point(lambda v: 200)
    if kind == "dark":
        return ImageEnhance.Brightness(img).enhance(0.1)
    if kind == "overexposed":  # blown highlights: the photo washed towards white
        white = Image.new("RGB", img.size, "white")
        return Image.blend(ImageEnhance.Brightness(img).enhance(1.5), white, 0.8)
    if kind == "blurry":
        from PIL import ImageFilter

        return img.filter(ImageFilter.GaussianBlur(6))
    raise ValueError(kind)


@pytest.mark.parametrize(
    "kind", ["tiny", "extreme_aspect_ratio", "blank", "dark", "overexposed", "blurry"]
)
def test_each_fault_is_found_by_its_check_alone(pets, make, kind):
    photo = make.first(pets / "cats")
    make.save(_fault(make.open(photo), kind), pets / "cats" / "faulty.jpg")
    report = examine(pets, checks=QUALITY)
    checks = {f.check for f in report.findings if "cats/faulty.jpg" in f.files}
    assert checks == {kind}
    # the untouched real photos are not flagged at all
    assert report.flagged_files() == {"cats/faulty.jpg"}
    assert all(f.severity == "warning" and not f.quarantine for f in report.findings)


def test_a_small_photo_is_judged_tiny_not_blurry(pets, make):
    img = make.open(make.first(pets / "dogs"))
    make.save(img.resize((50, 40)), pets / "dogs" / "thumb.jpg")
    report = examine(pets, checks=QUALITY)
    assert {f.check for f in report.findings} == {"tiny"}


def test_thresholds_come_from_the_config(pets):
    from littlevision.doctor import DoctorConfig

    sides = [min(Image.open(p).size) for p in sorted(pets.rglob("*.jpg"))]
    report = examine(pets, checks=["tiny"], config=DoctorConfig(tiny_side=int(np.max(sides)) + 1))
    assert len(report.by_check("tiny")) == len(sides)


@pytest.mark.parametrize(("fill", "check"), [(0, "dark"), (255, "overexposed"), (120, "blank")])
def test_a_constant_image_is_reported_once_under_its_most_telling_name(pets, make, fill, check):
    img = make.open(make.first(pets / "cats")).point(lambda v: fill)
    make.save(img, pets / "cats" / "constant.jpg")
    report = examine(pets, checks=QUALITY)
    assert [f.check for f in report.findings] == [check]
