"""Shared fixtures: real photos from ../shared/datasets, copied when a test changes them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("LITTLEVISION_DATASETS", REPO.parent / "shared" / "datasets"))


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
def cats_dogs_dir() -> Path:
    """The Keras tutorial layout: train/{cats,dogs}, validation/{cats,dogs} (read-only)."""
    return _need(DATASETS / "cats-vs-dogs")


@pytest.fixture(scope="session")
def cat_breeds_dir() -> Path:
    """The messy CSV-labelled set: images/ and labels.csv (read-only)."""
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
