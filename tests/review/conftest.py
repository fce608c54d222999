"""Small real data folders a review may change: class folders and a CSV-labelled set."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest


def copy_classes(src: Path, dst: Path, per_class: int) -> Path:
    """Copy the first ``per_class`` photos (``cat.1.jpg``, ``cat.2.jpg``...) of each class folder
    of ``src`` into ``dst``."""
    for class_dir in sorted(p for p in src.iterdir() if p.is_dir()):
        out = dst / class_dir.name
        out.mkdir(parents=True, exist_ok=True)
        for f in sorted(class_dir.iterdir(), key=lambda p: (len(p.name), p.name))[:per_class]:
            shutil.copy2(f, out / f.name)
    return dst


def tree(*roots: Path) -> dict[str, str]:
    """``{path: sha256}`` of every file under ``roots`` (the review's lock file aside)."""
    out = {}
    for root in roots:
        if not root.exists():
            continue
        for p in sorted(root.rglob("*")):
            if p.is_file() and p.name != ".review.lock":
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def folders(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_dir()}


@pytest.fixture
def pets(cats_dogs_dir, tmp_path) -> Path:
    """6 cats and 6 dogs in class folders, plus one byte-identical copy of a cat."""
    root = copy_classes(cats_dogs_dir / "train", tmp_path / "pets", per_class=6)
    shutil.copy2(root / "cats" / "cat.1.jpg", root / "cats" / "cat.1 copy.jpg")
    return root


@pytest.fixture
def breeds(cat_breeds_dir, tmp_path) -> Path:
    """12 photos of cat-breeds and a labels CSV that is not what ``csv`` would write: extra
    columns, a quoted cell, CRLF endings, a BOM, ids without extension, rows out of order."""
    root = tmp_path / "breeds"
    (root / "images").mkdir(parents=True)
    names = sorted(p.name for p in (cat_breeds_dir / "images").iterdir())[:12]
    for n in names:
        shutil.copy2(cat_breeds_dir / "images" / n, root / "images" / n)
    rows = ["\ufeffid,breed,notes,source"]
    for k, n in enumerate(reversed(names)):
        breed = "Abyssinian" if k % 2 else "Bengal"
        ident = n.rsplit(".", 1)[0] if k % 3 == 0 else n
        note = '"likes boxes, and ""quotes"""' if k == 1 else "plain"
        rows.append(f"{ident},{breed},{note},shelter {k}")
    (root / "labels.csv").write_bytes(("\r\n".join(rows) + "\r\n").encode("utf-8"))
    return root
