"""Fixtures for the doctor's tests: small fresh copies of real photos, and ways to break them.

Every test gets its own copy (a dozen real photos from the suite's ``cats_dogs_dir``) and
makes one file faulty on purpose; the shared datasets are never touched.
"""

from __future__ import annotations

import io
import shutil
import struct
import zlib
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image, ImageFilter


def copy_classes(src: Path, dst: Path, per_class: int, start: int = 0) -> Path:
    """Copy ``per_class`` photos of each class folder of ``src`` into ``dst``."""
    for class_dir in sorted(p for p in src.iterdir() if p.is_dir()):
        files = sorted(class_dir.iterdir(), key=lambda p: p.name)[start : start + per_class]
        out = dst / class_dir.name
        out.mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copy2(f, out / f.name)
    return dst


@pytest.fixture
def pets(tmp_path, cats_dogs_dir) -> Path:
    """A fresh folder of 6 cats and 6 dogs (real photos, class folders)."""
    return copy_classes(cats_dogs_dir / "train", tmp_path / "pets", 6)


@pytest.fixture
def pets_split(tmp_path, cats_dogs_dir) -> Path:
    """The tutorial layout in small: train/{cats,dogs} 6 each, validation/{cats,dogs} 3 each."""
    root = tmp_path / "split"
    copy_classes(cats_dogs_dir / "train", root / "train", 6)
    copy_classes(cats_dogs_dir / "validation", root / "validation", 3)
    return root


@pytest.fixture(scope="session")
def embedder():
    """One embedder for the session (its ONNX export happens once, then the cache serves)."""
    from littlevision.features import Embedder

    return Embedder("lite0")


@pytest.fixture
def doctor(embedder):
    """``doctor(data, checks=[...], **kw)``: :func:`examine` sharing the session's embedder."""
    from littlevision.doctor import examine

    def run(data, checks=None, **kwargs):
        return examine(data, checks=checks, embedder=embedder, **kwargs)

    return run


def _png_claiming(src: Image.Image, width: int, height: int) -> bytes:
    """A real small PNG whose header (IHDR, CRC fixed) claims ``width x height``: a bomb."""
    buf = io.BytesIO()
    src.save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _save(img: Image.Image, path: Path, fmt: str = "JPEG", **params) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "JPEG":
        params.setdefault("quality", 92)
    img.save(path, format=fmt, **params)
    return path


def _with_exif_orientation(img: Image.Image, path: Path, orientation: int) -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _save(img, path, exif=exif.tobytes())


def _first(folder: Path, pattern: str = "*.jpg") -> Path:
    return sorted(folder.glob(pattern))[0]


def _open(path: Path) -> Image.Image:
    with Image.open(path) as img:
        return img.convert("RGB")


@pytest.fixture(scope="session")
def make():
    """Ways to make a real photo faulty (or valid but unusual), as plain functions."""
    return SimpleNamespace(
        copy_classes=copy_classes,
        open=_open,
        save=_save,
        first=_first,
        png_claiming=_png_claiming,
        with_exif_orientation=_with_exif_orientation,
        blur=lambda img, radius=6: img.filter(ImageFilter.GaussianBlur(radius)),
    )
