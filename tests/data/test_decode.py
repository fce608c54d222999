"""Safe decoding on real photos made odd on purpose (copies in a temp folder, never the originals)."""

from __future__ import annotations

import io
import pickle
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from littlevision.data.decode import (
    DECODE_REASONS,
    MAX_PIXELS,
    DecodeError,
    decode_many,
    iter_decoded,
    load_image,
    probe,
    resize_image,
)

# -- fixtures: real photos, and odd files made from them -----------------------------------------


@pytest.fixture(scope="module")
def photo(cats_dogs_dir) -> Path:
    """A real JPEG photo, wider than high or higher than wide (read-only)."""
    return cats_dogs_dir / "train" / "cats" / "cat.10.jpg"


@pytest.fixture(scope="module")
def rgb(photo) -> np.ndarray:
    with Image.open(photo) as im:
        return np.asarray(im.convert("RGB"))


def _save(image: Image.Image, path: Path, fmt: str, **params) -> Path:
    image.save(path, format=fmt, **params)
    return path


def _png_with_size(src: Image.Image, width: int, height: int) -> bytes:
    """A real small PNG whose IHDR (and its CRC) claims ``width x height``: a cheap bomb."""
    buf = io.BytesIO()
    src.save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@pytest.fixture(scope="module")
def odd(tmp_path_factory, photo, rgb) -> dict[str, Path]:
    """One real photo turned into every kind of odd file a user's folder holds."""
    d = tmp_path_factory.mktemp("odd")
    img = Image.fromarray(rgb)
    small = img.resize((50, 40))
    files = {"jpeg": Path(shutil.copy(photo, d / "plain.jpg"))}
    files["cmyk"] = _save(img.convert("CMYK"), d / "cmyk.jpg", "JPEG", quality=95)
    files["png_named_jpg"] = _save(img, d / "really_a_png.jpg", "PNG")
    files["gray"] = _save(img.convert("L"), d / "gray.jpg", "JPEG", quality=95)
    cut = photo.read_bytes()
    files["truncated"] = d / "truncated.jpg"
    files["truncated"].write_bytes(cut[: len(cut) // 2])
    files["empty"] = d / "empty.jpg"
    files["empty"].write_bytes(b"")
    files["text"] = d / "notes.jpg"
    files["text"].write_text("these are not the pixels you are looking for\n")
    files["thumbs"] = d / "Thumbs.db"  # an OLE compound file header, as Windows writes them
    files["thumbs"].write_bytes(bytes.fromhex("d0cf11e0a1b11ae1") + b"\0" * 504)
    files["bomb"] = d / "bomb.png"  # 9000x9000 = 81 Mpx: over our limit, under Pillow's
    files["bomb"].write_bytes(_png_with_size(small, 9000, 9000))
    files["huge_bomb"] = d / "huge_bomb.png"  # 30000x30000: Pillow itself refuses it
    files["huge_bomb"].write_bytes(_png_with_size(small, 30000, 30000))
    return files


# -- load_image ----------------------------------------------------------------------------------


def test_plain_jpeg_is_rgb_uint8_of_the_photo(odd, rgb):
    out = load_image(odd["jpeg"])
    assert out.dtype == np.uint8 and out.shape == rgb.shape
    np.testing.assert_array_equal(out, rgb)
    assert out.flags.writeable


def test_size_resizes_whole_image_to_a_square(odd):
    out = load_image(odd["jpeg"], 64)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8


def test_bytes_and_path_give_the_same_pixels(odd):
    np.testing.assert_array_equal(
        load_image(odd["jpeg"].read_bytes(), 32), load_image(odd["jpeg"], 32)
    )


def test_cmyk_jpeg_becomes_rgb_close_to_the_original(odd, rgb):
    out = load_image(odd["cmyk"])
    assert out.shape == rgb.shape
    assert np.abs(out.astype(int) - rgb).mean() < 8  # JPEG re-encoding noise only


def test_content_decides_format_not_the_extension(odd, rgb):
    np.testing.assert_array_equal(load_image(odd["png_named_jpg"]), rgb)
    info = probe(odd["png_named_jpg"])
    assert info.format == "PNG" and not info.extension_matches_format
    assert probe(odd["jpeg"]).extension_matches_format


def test_grayscale_becomes_three_equal_channels(odd):
    out = load_image(odd["gray"], 48)
    assert out.shape == (48, 48, 3)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("truncated", "truncated"),
        ("empty", "empty"),
        ("text", "not_image"),
        ("thumbs", "not_image"),
        ("bomb", "too_large"),
        ("huge_bomb", "too_large"),
    ],
)
def test_broken_files_fail_with_a_reason_and_the_path(odd, name, reason):
    with pytest.raises(DecodeError) as info:
        load_image(odd[name], 64)
    err = info.value
    assert err.reason == reason and err.reason in DECODE_REASONS
    assert err.path == odd[name]
    assert odd[name].name in str(err)


def test_bomb_is_refused_before_decoding_but_probe_reads_its_header(odd):
    info = probe(odd["bomb"])
    assert (info.width, info.height) == (9000, 9000) and info.pixels > MAX_PIXELS
    with pytest.raises(DecodeError, match="megapixel safety limit"):
        load_image(odd["bomb"])


def test_max_pixels_is_a_parameter(odd):
    with pytest.raises(DecodeError) as info:
        load_image(odd["jpeg"], max_pixels=1000)
    assert info.value.reason == "too_large"


def test_missing_file_and_folder_are_unreadable(tmp_path):
    for source in (tmp_path / "nope.jpg", tmp_path):
        with pytest.raises(DecodeError) as info:
            load_image(source)
        assert info.value.reason == "unreadable"


def test_empty_bytes(tmp_path):
    with pytest.raises(DecodeError) as info:
        load_image(b"")
    assert info.value.reason == "empty" and info.value.path is None


def test_decode_error_pickles_with_its_attributes(odd):
    with pytest.raises(DecodeError) as info:
        load_image(odd["truncated"])
    back = pickle.loads(pickle.dumps(info.value))
    assert (back.path, back.reason, str(back)) == (odd["truncated"], "truncated", str(info.value))


@pytest.mark.parametrize("size", [0, -3, 2.5, True])
def test_bad_size_is_a_value_error(odd, size):
    with pytest.raises(ValueError, match="size"):
        load_image(odd["jpeg"], size)


def _with_orientation(image: Image.Image, orientation: int, fmt: str = "JPEG") -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    image.save(buf, format=fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def test_exif_orientation_6_transposes_the_stored_pixels(rgb):
    height = rgb.shape[0]
    stored = Image.fromarray(rgb[:, : height * 4 // 5])  # narrower than high: a transpose shows
    data = _with_orientation(stored, 6, "PNG")  # PNG: lossless, exact comparison
    out = load_image(data)
    assert out.shape == (stored.width, height, 3)
    np.testing.assert_array_equal(out, np.rot90(np.asarray(stored), k=-1))  # 90 deg clockwise


def test_exif_orientation_survives_jpeg_draft(rgb):
    """Draft (decoder-side downscaling) runs before the rotation; the result must still turn."""
    stored = Image.fromarray(rgb)
    rotated = _with_orientation(stored, 6)
    buf = io.BytesIO()
    stored.transpose(Image.Transpose.ROTATE_270).save(buf, format="JPEG", quality=95)
    upright = load_image(buf.getvalue(), 64)
    got = load_image(rotated, 64)
    unturned = load_image(_with_orientation(stored, 1), 64)
    err_right = np.abs(got.astype(int) - upright).mean()
    err_wrong = np.abs(unturned.astype(int) - upright).mean()
    assert err_right < 4 < err_wrong
    assert probe_bytes_orientation(rotated) == 6


def probe_bytes_orientation(data: bytes) -> int | None:
    with Image.open(io.BytesIO(data)) as im:
        return im.getexif().get(0x0112)


def test_probe_reads_exif_orientation(tmp_path, rgb):
    path = tmp_path / "turned.jpg"
    path.write_bytes(_with_orientation(Image.fromarray(rgb), 6))
    info = probe(path)
    assert info.exif_orientation == 6 and info.format == "JPEG" and info.n_frames == 1
    assert (info.width, info.height) == (rgb.shape[1], rgb.shape[0])
    assert info.file_size == path.stat().st_size


def test_palette_png_transparency_is_composited_on_white(rgb):
    pal = Image.fromarray(rgb).resize((64, 48)).quantize(64)
    index = pal.getpixel((0, 0))
    buf = io.BytesIO()
    pal.save(buf, format="PNG", transparency=index)
    out = load_image(buf.getvalue())
    clear = np.asarray(pal) == index
    assert clear.any() and not clear.all()
    assert (out[clear] == 255).all()
    opaque = np.asarray(pal.convert("RGB"))[~clear]
    np.testing.assert_array_equal(out[~clear], opaque)


def test_rgba_and_la_alpha_is_composited_on_white(rgb):
    base = Image.fromarray(rgb).resize((40, 30))
    alpha = np.zeros((30, 40), np.uint8)
    alpha[:, 20:] = 255  # left half transparent, right half opaque
    for mode in ("RGBA", "LA"):
        img = base.convert(mode[:-1])
        img.putalpha(Image.fromarray(alpha))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        out = load_image(buf.getvalue())
        assert (out[:, :20] == 255).all(), mode
        np.testing.assert_array_equal(out[:, 20:], np.asarray(img.convert("RGB"))[:, 20:])


def test_16bit_grayscale_png_is_scaled_not_clipped(rgb):
    gray8 = np.asarray(Image.fromarray(rgb).convert("L"))
    gray16 = gray8.astype(np.uint16) * 257  # full 16-bit range
    img16 = Image.fromarray(gray16)
    assert img16.mode.startswith("I;16")
    buf = io.BytesIO()
    img16.save(buf, format="PNG")
    out = load_image(buf.getvalue())
    np.testing.assert_array_equal(out[..., 0], gray8)  # clipping would make it all 255


@pytest.mark.parametrize("mode", ["I", "F", "1", "P", "L", "CMYK"])
def test_every_mode_becomes_rgb_uint8(rgb, mode):
    base = Image.fromarray(rgb).resize((32, 24)).convert("L")
    if mode == "I":
        img = Image.fromarray(np.asarray(base).astype(np.int32) * 257, "I")
    elif mode == "F":
        img = Image.fromarray(np.asarray(base).astype(np.float32) / 255.0, "F")
    else:
        img = base.convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="TIFF")
    out = load_image(buf.getvalue())
    assert out.shape == (24, 32, 3) and out.dtype == np.uint8
    if mode in ("I", "F", "L"):
        assert np.abs(out[..., 0].astype(int) - np.asarray(base)).max() <= 1


def test_multi_frame_gif_uses_the_first_frame():
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    out = load_image(buf.getvalue())
    assert (out == (255, 0, 0)).all()


def test_resize_image_matches_load_image(odd, rgb):
    np.testing.assert_array_equal(resize_image(rgb, 40), load_image(odd["png_named_jpg"], 40))
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        resize_image(rgb[..., 0], 40)


# -- decode_many / iter_decoded ------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed(odd, cats_dogs_dir) -> list[Path]:
    good = sorted((cats_dogs_dir / "train" / "dogs").iterdir())[:6]
    return [
        good[0],
        odd["truncated"],
        *good[1:4],
        odd["text"],
        odd["empty"],
        *good[4:],
        odd["cmyk"],
    ]


def test_decode_many_keeps_order_and_reports_failures(mixed):
    seen: list[int] = []
    result = decode_many(mixed, 32, workers=2, progress=seen.append)
    assert result.ok_indices.tolist() == [0, 2, 3, 4, 7, 8, 9]
    assert result.images.shape == (7, 32, 32, 3) and result.images.dtype == np.uint8
    for img, i in zip(result.images, result.ok_indices, strict=True):
        np.testing.assert_array_equal(img, load_image(mixed[i], 32))
    assert [(e.path, e.reason) for e in result.failures] == [
        (mixed[1], "truncated"),
        (mixed[5], "not_image"),
        (mixed[6], "empty"),
    ]
    assert seen == list(range(1, len(mixed) + 1))


def test_decode_many_one_worker_equals_many(mixed):
    a, b = decode_many(mixed, 24, workers=1), decode_many(mixed, 24, workers=3)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.ok_indices, b.ok_indices)


def test_decode_many_of_nothing():
    result = decode_many([], 16)
    assert result.images.shape == (0, 16, 16, 3) and len(result) == 0 and not result.failures


def test_iter_decoded_streams_the_same_result_in_batches(mixed):
    whole = decode_many(mixed, 24)
    seen: list[int] = []
    batches = list(iter_decoded(mixed, 24, batch_size=3, workers=2, progress=seen.append))
    assert len(batches) == 4
    assert all(len(b) + len(b.failures) <= 3 for b in batches)
    np.testing.assert_array_equal(np.concatenate([b.images for b in batches]), whole.images)
    np.testing.assert_array_equal(np.concatenate([b.ok_indices for b in batches]), whole.ok_indices)
    assert [e.path for b in batches for e in b.failures] == [e.path for e in whole.failures]
    assert seen[-1] == len(mixed)


def test_iter_decoded_can_stop_early(mixed):
    stream = iter_decoded(mixed * 20, 24, batch_size=4)
    first = next(stream)
    stream.close()  # must not hang or decode the rest
    assert first.ok_indices[0] == 0


def test_decode_many_real_cat_breeds_formats(cat_breeds_dir):
    """The real odd files: .png that is a PNG, .png that is a WebP, progressive .jpeg."""
    names = ["Cat1018.png", "Cat1035.png", "Cat1021.jpeg", "Cat1.jpg"]
    result = decode_many([cat_breeds_dir / "images" / n for n in names], 64)
    assert not result.failures and result.images.shape == (4, 64, 64, 3)
    info = probe(cat_breeds_dir / "images" / "Cat1035.png")
    assert info.format == "WEBP" and not info.extension_matches_format
