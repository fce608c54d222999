"""What a review acts on: the data folder, how it is labelled (class folders or a CSV) and its
classes -- :class:`DataTarget`, opened the way ``doctor`` and ``train`` open data."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from littlevision.errors import UserError

SUBSET_DIRS = ("train", "validation", "val")


@dataclass(frozen=True)
class DataTarget:
    """A labelled data folder a review changes.

    Attributes:
        root: The data folder; every relative path of a review (and of the doctor's report)
            is relative to it, and its quarantine/journal is ``root.quarantine``.
        kind: ``"folder"`` (one subfolder per class) or ``"csv"`` (a labels CSV).
        images: The folder holding the images (``root`` for class folders; the CSV's images).
        csv: The labels CSV, for ``kind == "csv"``.
        classes: The class names when the target was opened.
        tutorial: Whether the folder has ``train/`` and ``validation/`` (class folders inside).
    """

    root: Path
    kind: str
    images: Path
    csv: Path | None
    classes: tuple[str, ...]
    tutorial: bool = False

    def path(self, rel: str) -> Path:
        """``root / rel``, refusing paths that leave the data folder."""
        return inside(self.root, rel)

    def rel(self, path: str | os.PathLike[str]) -> str:
        return Path(os.path.abspath(path)).relative_to(self.root).as_posix()

    def label_of(self, rel: str) -> str | None:
        """The class a folder dataset's file is filed under (``None`` outside class folders)."""
        parts = PurePosixPath(rel).parts
        ci = self.class_part(parts)
        return parts[ci] if ci is not None else None

    def class_part(self, parts: tuple[str, ...]) -> int | None:
        """Index of the class folder in a folder dataset's relative path."""
        ci = 1 if self.tutorial and parts and parts[0] in SUBSET_DIRS else 0
        return ci if len(parts) >= ci + 2 else None


def inside(root: Path, rel: str) -> Path:
    """``root / rel``, refusing absolute paths and ``..`` (a tampered request or journal)."""
    p = PurePosixPath(rel)
    if not p.parts or p.is_absolute() or ".." in p.parts:
        raise UserError(f"'{rel}' is not a path inside '{root}'.")
    return root.joinpath(*p.parts)


def open_target(
    data: str | os.PathLike[str], labels: str | os.PathLike[str] | None = None
) -> tuple[DataTarget, object]:
    """The :class:`DataTarget` and :class:`~littlevision.data.dataset.Dataset` of ``data``.

    ``data`` is read like ``littlevision doctor DATA [--labels CSV]``: class folders (or the
    tutorial's train/ + validation/), a CSV beside its images, a folder holding one CSV and an
    ``images/`` folder, or the images folder of ``labels``.

    Raises:
        UserError: ``data`` does not exist or cannot be read as a dataset.
    """
    from littlevision.data.source import open_dataset

    data = Path(data)
    if not data.exists():
        raise UserError(f"No such file or folder: '{data}'.")
    dataset = open_dataset(data, labels)
    root = Path(os.path.abspath(data if data.is_dir() else data.parent))
    csv = None
    if labels is not None:
        csv = Path(labels)
    elif data.is_file():
        csv = data
    elif str(getattr(dataset, "source", "")).lower().endswith(".csv"):
        csv = Path(dataset.source)
    classes = tuple(dataset.classes)
    if csv is not None:
        target = DataTarget(
            root=root,
            kind="csv",
            images=Path(os.path.abspath(dataset.root)),
            csv=Path(os.path.abspath(csv)),
            classes=classes,
        )
    else:
        tutorial = any(s is not None for s in dataset.subsets)
        target = DataTarget(
            root=root, kind="folder", images=root, csv=None, classes=classes, tutorial=tutorial
        )
    return target, dataset


def check_class_name(name: str) -> str:
    """A new class name that is safe as a folder name and a CSV cell.

    Raises:
        UserError: It is empty, hidden, or has a path separator.
    """
    clean = name.strip()
    if not clean or clean.startswith(".") or "/" in clean or "\\" in clean or "\x00" in clean:
        raise UserError(
            f"'{name}' cannot be a class name: expected a non-empty name without '/', '\\' or a "
            "leading '.'."
        )
    return clean
