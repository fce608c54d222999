"""Property-based fuzzing of the one decoding path (issue 12): random and mutated image bytes
give an RGB uint8 image or a ``DecodeError`` -- never another exception.

The seed images are real scans (scikit-learn's handwritten digits, bundled with it), encoded in
every format the decoder reads, so the suite needs no downloaded data.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from littlevision.data.decode import DecodeError, load_image, probe

FORMATS = (
    ("PNG", "RGB"),
    ("JPEG", "RGB"),
    ("GIF", "P"),
    ("WEBP", "RGB"),
    ("BMP", "RGB"),
    ("TIFF", "RGB"),
    ("PNG", "RGBA"),
    ("JPEG", "CMYK"),
    ("PNG", "I;16"),
)


def _seeds() -> list[bytes]:
    from sklearn.datasets import load_digits

    digit = load_digits().images[7]  # 8x8, 0..16
    gray = Image.fromarray((digit * 15).astype(np.uint8)).resize((24, 24))
    out = []
    for fmt, mode in FORMATS:
        img = gray.convert("RGB").convert(mode) if mode != "I;16" else gray.convert("I;16")
        buffer = io.BytesIO()
        img.save(buffer, fmt)
        out.append(buffer.getvalue())
    return out


SEEDS = _seeds()
FUZZ = settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


def _decodes_or_says_why(data: bytes, size: int | None) -> None:
    try:
        image = load_image(data, size, max_pixels=4_000_000)
    except DecodeError as e:
        assert e.reason in ("empty", "truncated", "not_image", "too_large", "unreadable")
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    if size is not None:
        assert image.shape == (size, size, 3)


def test_every_seed_decodes():
    for data in SEEDS:
        assert load_image(data, 16).shape == (16, 16, 3)


@FUZZ
@given(data=st.binary(max_size=2048), size=st.sampled_from([None, 16]))
def test_random_bytes(data, size):
    _decodes_or_says_why(data, size)


@FUZZ
@given(
    seed=st.sampled_from(range(len(SEEDS))),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=12),
    cut=st.one_of(st.none(), st.integers(0, 10**6)),
    size=st.sampled_from([None, 16]),
)
def test_mutated_images(seed, flips, cut, size):
    data = bytearray(SEEDS[seed])
    for position, value in flips:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    _decodes_or_says_why(bytes(data), size)


@FUZZ
@given(seed=st.sampled_from(range(len(SEEDS))), junk=st.binary(min_size=1, max_size=64))
def test_images_with_junk_spliced_into_the_header(seed, junk):
    data = SEEDS[seed]
    _decodes_or_says_why(data[:16] + junk + data[16:], 16)


@pytest.mark.parametrize("index", range(len(SEEDS)))
def test_probe_on_a_mutated_file_is_an_answer_or_a_decode_error(tmp_path, index):
    rng = np.random.default_rng(index)
    data = bytearray(SEEDS[index])
    for position in rng.integers(0, len(data), 6):
        data[position] = int(rng.integers(0, 256))
    path = tmp_path / "x.img"
    path.write_bytes(bytes(data))
    try:
        probe(path)
    except DecodeError:
        pass


@pytest.mark.slow
@settings(
    max_examples=3000, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
@given(
    seed=st.sampled_from(range(len(SEEDS))),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=40),
    cut=st.one_of(st.none(), st.integers(0, 10**6)),
)
def test_mutated_images_long(seed, flips, cut):
    data = bytearray(SEEDS[seed])
    for position, value in flips:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    _decodes_or_says_why(bytes(data), 16)
