"""The perceptual hash: copies of a real photo stay close, different photos do not."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from littlevision.data.decode import load_image
from littlevision.doctor.phash import HASH_BITS, hamming, phash


def _jpeg(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def test_resized_and_reencoded_copies_are_within_a_few_bits(cats_dogs_dir):
    path = cats_dogs_dir / "train" / "dogs" / "dog.1.jpg"
    img = Image.open(path).convert("RGB")
    base = phash(load_image(path, 128))
    half = phash(load_image(_jpeg(img.resize((img.width // 2, img.height // 2)), 90), 128))
    rough = phash(load_image(_jpeg(img, 25), 128))
    assert hamming(base, half) <= 4 and hamming(base, rough) <= 4


def test_different_photos_differ_in_many_bits(cats_dogs_dir):
    files = sorted((cats_dogs_dir / "train" / "cats").glob("*.jpg"))[:12]
    hashes = np.array([phash(load_image(f, 128)) for f in files], dtype=np.uint64)
    d = hamming(hashes[:, None], hashes[None, :])
    assert d.shape == (12, 12) and (np.diag(d) == 0).all()
    assert d[~np.eye(12, dtype=bool)].min() >= 12
    assert all(0 <= int(h) < 2**HASH_BITS for h in hashes)


def test_any_image_size_hashes():
    rng = np.random.default_rng(0)
    for shape in [(7, 5, 3), (32, 32, 3), (300, 41, 3)]:
        assert isinstance(phash(rng.integers(0, 256, shape, dtype=np.uint8)), int)
