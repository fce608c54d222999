"""Valid but unusual images are info at most -- never an error or a warning -- and each is
told apart by its own info check."""

from __future__ import annotations

import pytest
from PIL import Image

from littlevision.doctor import examine


@pytest.mark.parametrize(
    "kind", ["cmyk", "gray", "exif_rotated", "png_named_jpg", "palette", "rgba_png", "gray16_png"]
)
def test_valid_but_unusual_images_are_never_errors(pets, make, kind):
    img = make.open(make.first(pets / "cats"))
    target = pets / "cats" / f"odd_{kind}.jpg"
    if kind == "cmyk":
        make.save(img.convert("CMYK"), target)
    elif kind == "gray":
        make.save(img.convert("L"), target)
    elif kind == "exif_rotated":
        make.with_exif_orientation(img.transpose(Image.Transpose.ROTATE_90), target, 6)
    elif kind == "png_named_jpg":
        make.save(img, target, "PNG")
    elif kind == "palette":
        target = target.with_suffix(".png")
        make.save(img.convert("P", palette=Image.Palette.ADAPTIVE), target, "PNG")
    elif kind == "rgba_png":
        target = target.with_suffix(".png")
        rgba = img.convert("RGBA")
        rgba.putalpha(200)
        make.save(rgba, target, "PNG")
    else:
        import numpy as np

        target = target.with_suffix(".png")
        grey16 = np.asarray(img.convert("L"), dtype=np.uint16) * 257
        make.save(Image.fromarray(grey16), target, "PNG")
    report = examine(
        pets, skip=["label_issues", "outliers", "near_duplicates", "leakage", "conflicting_labels"]
    )
    rel = f"cats/{target.name}"
    found = [f for f in report.findings if rel in f.files]
    assert not [f for f in found if f.severity == "error"], found
    assert not [f for f in found if f.severity == "warning"], found
    expected_info = {
        "cmyk": "unusual_mode",
        "gray": "grayscale",
        "exif_rotated": "exif_orientation",
        "png_named_jpg": "extension_mismatch",
        "palette": "unusual_mode",
        "rgba_png": "unusual_mode",
        "gray16_png": "grayscale",
    }[kind]
    assert expected_info in {f.check for f in found}


def test_an_animated_gif_is_a_multi_frame_info(pets, make):
    img = make.open(make.first(pets / "dogs")).resize((120, 90))
    frames = [img, img.rotate(10), img.rotate(20)]
    frames[0].save(pets / "dogs" / "wag.gif", save_all=True, append_images=frames[1:])
    report = examine(pets, checks=["multi_frame", "unusual_mode"])
    assert report.flagged_files("multi_frame") == {"dogs/wag.gif"}
    assert "3 frames" in report.by_check("multi_frame")[0].message
