"""Shared fixtures: small folders of real photos that the test suite makes itself.

The default suite needs nothing beside the repository. Its photos are real ones shipped by
dependencies (scikit-image's sample data, scikit-learn's and matplotlib's sample photos) and the
three cats-vs-dogs photos stored in ``tests/models/fixtures/lite0_parity.npz``, cropped, mirrored
and resized into a small folder with the Keras tutorial's layout (:func:`make_sample_pets`).
``real_cats_dogs_dir`` and ``cat_breeds_dir`` are the full sets in ``../shared/datasets``,
for slow tests and benchmarks; they skip when that folder is absent (a fresh clone).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("LITTLEVISION_DATASETS", REPO.parent / "shared" / "datasets"))
PARITY_PHOTOS = REPO / "tests" / "models" / "fixtures" / "lite0_parity.npz"

# Ten photos per class, each distinct from every other (no two are near duplicates, none is
# dark, blurry, grey or tiny): the first ten files of a class are one view of each. Greyscale
# scans are toned sepia so that they are colour photos like the rest.
CAT_SOURCES = (
    "skimage:chelsea.png",
    "parity:0",
    "skimage:astronaut.png",
    "matplotlib:grace_hopper.jpg",
    "parity:1",
    "skimage:camera.png",
    "skimage:coffee.png",
    "skimage:rocket.jpg",
    "skimage:motorcycle_left.png",
    "sklearn:china.jpg",
)
DOG_SOURCES = (
    "parity:2",
    "sklearn:flower.jpg",
    "skimage:ihc.png",
    "skimage:retina.jpg",
    "skimage:coins.png",
    "skimage:grass.png",
    "skimage:gravel.png",
    "skimage:brick.png",
    "skimage:cell.png",
    "skimage:text.png",
)
# Validation views: the first three are of photos among train's first six (a model trained on
# those should know them), cropped small enough not to be near copies of train's whole views
# (chosen where such crops measured embedding cosine <= 0.85), then three of the other photos.
VALIDATION_SOURCES = {"cats": (1, 4, 2, 8, 6, 7), "dogs": (3, 2, 5, 8, 7, 6)}


def _source_photo(spec: str):
    """One real photo shipped by a dependency (or stored in the repository), as RGB."""
    from PIL import Image, ImageOps

    kind, name = spec.split(":")
    if kind == "parity":
        with np.load(PARITY_PHOTOS) as data:
            return Image.fromarray(data["images"][int(name)])
    if kind == "sklearn":
        from sklearn.datasets import load_sample_image

        return Image.fromarray(load_sample_image(name))
    if kind == "matplotlib":
        from matplotlib import cbook

        with cbook.get_sample_data(name) as f, Image.open(f) as img:
            return img.convert("RGB")
    import skimage.data

    with Image.open(Path(skimage.data.data_dir) / name) as img:
        if img.mode in ("L", "I", "I;16"):
            return ImageOps.colorize(img.convert("L"), "#2b1d0e", "#fff4e0")
        return img.convert("RGB")


def _view(img, rng: np.random.Generator, whole: bool, scale_range=(0.45, 0.7)):
    """A crop of ``img``: most of it for the first view, a smaller, maybe mirrored part after."""
    from PIL import Image, ImageEnhance, ImageOps

    w, h = img.size
    scale = rng.uniform(0.8, 0.95) if whole else rng.uniform(*scale_range)
    cw = min(w, int(w * scale * rng.uniform(0.9, 1.1)))
    ch = min(h, int(h * scale * rng.uniform(0.9, 1.1)))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    view = img.crop((x, y, x + cw, y + ch))
    if not whole and rng.random() < 0.5:
        view = ImageOps.mirror(view)
    view = ImageEnhance.Brightness(view).enhance(rng.uniform(0.9, 1.1))
    longest = int(rng.integers(240, 400))
    if max(view.size) > longest:
        f = longest / max(view.size)
        view = view.resize(
            (round(view.width * f), round(view.height * f)), Image.Resampling.LANCZOS
        )
    return view


def _names(prefix: str, n: int, first: int) -> list[str]:
    """``cat.1.jpg`` ... in the order ``sorted()`` lists them (cat.1, cat.10, cat.11, ...)."""
    return sorted(f"{prefix}.{first + i}.jpg" for i in range(n))


def make_sample_pets(root: Path, n_train: int = 30, n_val: int = 6, seed: int = 0) -> Path:
    """Write the tutorial layout ``train/{cats,dogs}``, ``validation/{cats,dogs}`` of real photos.

    Files are named as in the tutorial (``cat.1.jpg``; validation from ``cat.4001.jpg``) and
    numbered so that name order is the order they were made in: the first ten of a class in
    ``sorted()`` order are one view of each of its ten photos, distinct from one another; later
    ones are further crops of the same photos (near duplicates of the first ten, as crops are).
    """
    rng = np.random.default_rng(seed)
    for cls, prefix, specs in (("cats", "cat", CAT_SOURCES), ("dogs", "dog", DOG_SOURCES)):
        photos = [_source_photo(s) for s in specs]
        plan = {
            "train": [(k < len(photos), k % len(photos)) for k in range(n_train)],
            "validation": [
                (False, VALIDATION_SOURCES[cls][k % len(VALIDATION_SOURCES[cls])])
                for k in range(n_val)
            ],
        }
        for subset, first in (("train", 1), ("validation", 4001)):
            out = root / subset / cls
            out.mkdir(parents=True, exist_ok=True)
            views = plan[subset]
            scales = (0.45, 0.7) if subset == "train" else (0.4, 0.55)
            for name, (whole, i) in zip(_names(prefix, len(views), first), views, strict=True):
                _view(photos[i], rng, whole, scales).save(out / name, quality=90)
    return root


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Keep the tests' weights and embeddings out of the user's cache."""
    if "LITTLEVISION_CACHE" not in os.environ:
        os.environ["LITTLEVISION_CACHE"] = str(tmp_path_factory.mktemp("lv-cache"))
    yield


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real images not found at {path} (the shared datasets folder is absent)")
    return path


@pytest.fixture(scope="session")
def cats_dogs_dir(tmp_path_factory) -> Path:
    """The Keras tutorial layout in small, made by the suite (read-only: copy what you change).

    ``train/{cats,dogs}`` 30 photos each, ``validation/{cats,dogs}`` 6 each: see
    :func:`make_sample_pets`. "cats" and "dogs" are class names here; the pixels are real
    photos of ten subjects per class (a cat, people, objects; a dog, flowers, textures).
    """
    return make_sample_pets(tmp_path_factory.mktemp("sample") / "cats-vs-dogs")


@pytest.fixture(scope="session")
def real_cats_dogs_dir() -> Path:
    """The full cats-vs-dogs set in ../shared/datasets (read-only; skips when absent)."""
    return _need(DATASETS / "cats-vs-dogs")


@pytest.fixture(scope="session")
def cat_breeds_dir() -> Path:
    """The messy CSV-labelled set in ../shared/datasets: images/ and labels.csv (read-only)."""
    return _need(DATASETS / "cat-breeds")


def copy_slice(src_root: Path, dst_root: Path, per_class: int, subset: str = "train") -> Path:
    """Copy ``per_class`` images of each class of a tutorial-layout folder into ``dst_root``."""
    for class_dir in sorted((src_root / subset).iterdir()):
        files = sorted(class_dir.iterdir(), key=lambda p: p.name)[:per_class]
        out = dst_root / class_dir.name
        out.mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copy2(f, out / f.name)
    return dst_root


@pytest.fixture(scope="session")
def small_folder(cats_dogs_dir, tmp_path_factory) -> Path:
    """20 cats and 20 dogs in class folders (a session-wide copy: do not modify)."""
    return copy_slice(cats_dogs_dir, tmp_path_factory.mktemp("small") / "pets", per_class=20)


@pytest.fixture(scope="session")
def tiny_run(small_folder, tmp_path_factory) -> Path:
    """A real bundle: the default recipe trained on 40 photos (session-wide: do not modify)."""
    from littlevision.training.run import TrainConfig, train

    out = tmp_path_factory.mktemp("runs") / "tiny"
    train(small_folder, out, TrainConfig(val_split=0.3, seed=0))
    return out
