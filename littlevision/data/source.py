"""One way to open a user's data from a command line: a class-folder tree or a CSV of labels."""

from __future__ import annotations

import os
from pathlib import Path

from littlevision.errors import UserError


def open_dataset(data: str | os.PathLike, labels: str | os.PathLike | None = None):
    """A Dataset from ``data`` (class folders) or from ``labels`` (a CSV) naming files in ``data``.

    A ``data`` folder that holds exactly one CSV and an ``images/`` folder is read as a CSV set
    too, so ``littlevision train cat-breeds/`` just works.
    """
    from littlevision.data.dataset import Dataset

    data = Path(data)
    if labels is not None:
        labels = Path(labels)
        if not labels.is_file():
            raise UserError(f"No such labels file: '{labels}'.")
        return Dataset.from_csv(labels, data)
    if data.is_file() and data.suffix.lower() == ".csv":
        return Dataset.from_csv(data, data.parent)
    if data.is_dir():
        csvs = sorted(data.glob("*.csv"))
        if len(csvs) == 1 and (data / "images").is_dir():
            return Dataset.from_csv(csvs[0], data / "images")
    return Dataset.from_folder(data)


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".jfif"}


def collect_images(paths: list[Path]) -> list[Path]:
    """Files given directly, plus image files found under folders (recursively, sorted)."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(
                sorted(
                    f
                    for f in p.rglob("*")
                    if f.is_file()
                    and f.suffix.lower() in IMAGE_SUFFIXES
                    and not f.name.startswith(".")
                )
            )
        elif p.is_file():
            files.append(p)
        else:
            raise UserError(f"No such file or folder: '{p}'.")
    if not files:
        raise UserError(f"No images found in {', '.join(map(str, paths))}.")
    return files
