"""The labelled image set: an immutable sequence of (path, label, subset) items.

A :class:`Dataset` only *lists* files; it never decodes them (that is :mod:`.decode`'s job, and
the doctor's). It behaves like a Python sequence -- ``len``, iteration, ``ds[i]`` -- and indexing
it with a slice, a list of indices or a boolean mask gives another ``Dataset`` with the same
``classes``, so class indices stay stable across every subset of one set of data.
"""

from __future__ import annotations

import csv
import math
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, overload

import numpy as np

from littlevision.errors import UserError

__all__ = ["Dataset", "Item", "LoadReport", "SUBSETS"]

SUBSETS: tuple[str, str] = ("train", "validation")
"""The subsets a folder can declare (Keras tutorial layout: ``train/`` and ``validation/``)."""

_VALIDATION_DIRS = ("validation", "val")
_SPLIT_FORMAT = "littlevision.split"
_SPLIT_VERSION = 1
_ID_COLUMNS = (
    "filename",
    "file_name",
    "file",
    "filepath",
    "file_path",
    "path",
    "image",
    "image_name",
    "image_path",
    "image_id",
    "img",
    "id",
)
_LABEL_COLUMNS = ("label", "labels", "class", "class_name", "breed", "category", "target", "y")
_REPR_CLASSES = 5


@dataclass(frozen=True, slots=True)
class Item:
    """One image file and what is known about it.

    Attributes:
        path: The image file.
        label: Its class name, or ``None`` when unlabelled.
        subset: ``"train"`` or ``"validation"`` when the folder layout (or a split) says so.
    """

    path: Path
    label: str | None = None
    subset: str | None = None


@dataclass
class LoadReport:
    """What a loader saw but did not turn into items, so nothing is dropped silently.

    Attributes:
        missing_rows: CSV ids (with a label) whose file is not in the images folder.
        unlabelled_files: Files in the images folder that no CSV row labels.
        empty_labels: CSV ids whose label is empty; their files are in ``unlabelled_files``.
        duplicate_rows: CSV ids naming a file an earlier row already named, with the same label.
        conflicting_rows: CSV ids naming a file another row gives a *different* label; such files
            are left out (which label is right cannot be known) and listed in
            ``unlabelled_files``.
        ambiguous_rows: CSV ids matching several files (``cat1`` with ``cat1.jpg`` and
            ``cat1.png`` present, neither exactly named); left out.
        ignored: Paths skipped on purpose: files beside the class folders, extra top-level
            folders (``test/``) of a train/validation layout.
        csv_name: The CSV's file name, for the summary's wording.
    """

    missing_rows: list[str] = field(default_factory=list)
    unlabelled_files: list[Path] = field(default_factory=list)
    empty_labels: list[str] = field(default_factory=list)
    duplicate_rows: list[str] = field(default_factory=list)
    conflicting_rows: list[str] = field(default_factory=list)
    ambiguous_rows: list[str] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)
    csv_name: str = "the CSV"

    def __bool__(self) -> bool:
        """True when there is anything to tell the user."""
        return any(values for _, values in self._entries())

    def _entries(self) -> list[tuple[str, list]]:
        csv_name = self.csv_name
        return [
            (f"rows of {csv_name} name a file that is not there", self.missing_rows),
            (f"files have no label in {csv_name}", self.unlabelled_files),
            (f"rows of {csv_name} have an empty label", self.empty_labels),
            (f"rows of {csv_name} repeat a file already listed", self.duplicate_rows),
            (f"rows of {csv_name} give a file a conflicting label", self.conflicting_rows),
            (f"rows of {csv_name} match several files", self.ambiguous_rows),
            ("paths were ignored (not inside a class folder)", self.ignored),
        ]

    def summary(self, examples: int = 3) -> str:
        """Counts and a few examples of each kind of problem, one line each.

        Args:
            examples: How many examples to show per line.

        Returns:
            Lines such as ``10000 rows of labels.csv name a file that is not there (e.g.
            Cat1001.jpg, Cat1002.jpg, Cat1003.jpg)``; ``"nothing was left out"`` when empty.
        """
        lines = []
        for words, values in self._entries():
            if not values:
                continue
            shown = ", ".join(_short(v) for v in values[:examples])
            more = ", ..." if len(values) > examples else ""
            lines.append(f"{len(values)} {words} (e.g. {shown}{more})")
        return "\n".join(lines) if lines else "nothing was left out"


class Dataset(Sequence[Item]):
    """An immutable sequence of :class:`Item`, with the class list that gives labels an index.

    Args:
        items: The items, in order.
        classes: All class names, in index order. Defaults to the sorted labels present. Giving it
            explicitly keeps a class with no image (it will be flagged) and keeps indices stable.
        root: Folder the paths are reported relative to (see :meth:`relative`).
        source: What the data was loaded from, in the user's words, for ``repr``.
        load_report: What the loader left out, and why.

    Raises:
        ValueError: A label is not in ``classes``, or ``classes`` repeats a name.
    """

    __slots__ = ("_items", "_classes", "_index", "root", "source", "load_report", "_hash")

    def __init__(
        self,
        items: Iterable[Item],
        classes: Iterable[str] | None = None,
        root: str | os.PathLike[str] | None = None,
        source: str | None = None,
        load_report: LoadReport | None = None,
    ):
        self._items: tuple[Item, ...] = tuple(items)
        for item in self._items:
            if not isinstance(item, Item):
                raise TypeError(f"Expected Item objects. Received: {item!r}")
        labels = {item.label for item in self._items if item.label is not None}
        if classes is None:
            self._classes: tuple[str, ...] = tuple(sorted(labels))
        else:
            self._classes = tuple(str(c) for c in classes)
            if len(set(self._classes)) != len(self._classes):
                raise ValueError(f"Expected distinct class names. Received: {list(self._classes)}")
            unknown = sorted(labels - set(self._classes))
            if unknown:
                raise ValueError(
                    f"Expected every label to be one of classes={list(self._classes)}. "
                    f"Received labels not in it: {unknown[:5]}"
                )
        self._index = {name: i for i, name in enumerate(self._classes)}
        self.root = Path(root) if root is not None else None
        self.source = source
        self.load_report = load_report
        self._hash: int | None = None

    # -- loaders -------------------------------------------------------------------------------

    @classmethod
    def from_folder(cls, path: str | os.PathLike[str]) -> Dataset:
        """List a folder with one subfolder per class (``path/cats/*.jpg``, ``path/dogs/*.jpg``).

        When ``path`` holds ``train/`` and ``validation/`` (or ``val/``), each with class
        subfolders, it is the Keras tutorial layout and items get ``subset`` ``"train"`` or
        ``"validation"``, which :meth:`split` then honours. Every non-hidden file under a class
        folder is listed, images or not (a stray ``Thumbs.db`` is the doctor's to flag, not ours
        to hide); hidden files and folders (``.DS_Store``, ``.ipynb_checkpoints``) are skipped.

        Args:
            path: The folder.

        Returns:
            The dataset; its ``load_report.ignored`` lists files beside the class folders.

        Raises:
            UserError: ``path`` does not exist, is not a folder, or has no class subfolders.
        """
        root = _existing_folder(path, "folder")
        report = LoadReport()
        entries = _visible(root)
        subdirs = {p.name: p for p in entries if p.is_dir()}
        val_names = [name for name in _VALIDATION_DIRS if name in subdirs]
        if "train" in subdirs and val_names:
            if len(val_names) > 1:
                raise UserError(
                    f"'{path}' has both validation/ and val/: keep one, so it is clear which "
                    "images are for validation."
                )
            layout = {"train": subdirs["train"], "validation": subdirs[val_names[0]]}
            report.ignored += [p for p in entries if p not in layout.values()]
        else:
            layout = {None: root}
        items: list[Item] = []
        classes: set[str] = set()
        for subset, folder in layout.items():
            inside = _visible(folder)
            class_dirs = [p for p in inside if p.is_dir()]
            report.ignored += [p for p in inside if not p.is_dir()]
            classes.update(d.name for d in class_dirs)
            for class_dir in class_dirs:
                items += [Item(f, class_dir.name, subset) for f in _files_under(class_dir)]
        if not classes:
            n_files = sum(1 for p in entries if p.is_file())
            found = f"; found {n_files} files directly in it" if n_files else ""
            raise UserError(
                f"No class subfolders in '{path}': expected one subfolder per class, "
                f"like '{Path(path) / 'cats'}' and '{Path(path) / 'dogs'}'{found}."
            )
        report.ignored.sort()
        return cls(items, sorted(classes), root=root, source=str(path), load_report=report)

    @classmethod
    def from_csv(
        cls,
        csv_path: str | os.PathLike[str],
        images_dir: str | os.PathLike[str],
        id_col: str | None = None,
        label_col: str | None = None,
    ) -> Dataset:
        """List images labelled by a CSV file (one row per image: an id and a label).

        Columns are guessed when that is unambiguous: a column named like ``filename``, ``file``,
        ``path``, ``image`` or ``id`` holds ids; one named like ``label``, ``class``, ``breed``,
        ``category``, ``target`` or ``y`` holds labels; a CSV of exactly two columns is read as
        id, label. Ids are matched to files case-insensitively and with or without extension
        (``Cat1.jpg`` finds ``Cat1.png``), and may be sub-paths (``cats/cat.1.jpg``), because
        real label files rarely match the folder exactly. Whatever does not match is recorded in
        ``load_report`` -- rows without a file, files without a row -- never dropped silently.

        Args:
            csv_path: The CSV file (comma, semicolon or tab separated; a header row is required).
            images_dir: The folder the ids are relative to.
            id_col: The id column's name, when it cannot be guessed.
            label_col: The label column's name, when it cannot be guessed.

        Returns:
            The labelled items, in CSV row order.

        Raises:
            UserError: A path is missing, the CSV is empty or has no recognisable id or label
                column (the message lists the columns found).
        """
        csv_file = Path(csv_path).expanduser()
        if not csv_file.is_file():
            what = "is a folder, not a CSV file" if csv_file.is_dir() else "does not exist"
            raise UserError(f"The labels file '{csv_path}' {what}.")
        images = _existing_folder(images_dir, "images folder")
        header, rows = _read_csv(csv_file)
        id_col, label_col = _pick_columns(csv_path, header, id_col, label_col)
        if not rows:
            raise UserError(
                f"The labels file '{csv_path}' has a header row ({', '.join(header)}) but no "
                "rows: expected one row per image."
            )
        id_pos, label_pos = header.index(id_col), header.index(label_col)

        finder = _FileFinder(images)
        report = LoadReport(csv_name=csv_file.name)
        chosen: dict[Path, tuple[str, str]] = {}  # file -> (id, label), first row wins
        conflicted: set[Path] = set()
        unlabelled: set[Path] = set()
        for row in rows:
            raw_id = row[id_pos].strip() if id_pos < len(row) else ""
            label = row[label_pos].strip() if label_pos < len(row) else ""
            if not raw_id:
                continue  # a blank line's worth of nothing
            found = finder.find(raw_id)
            if not label:
                report.empty_labels.append(raw_id)
                if isinstance(found, Path):
                    unlabelled.add(found)
                continue
            if found is None:
                report.missing_rows.append(raw_id)
            elif isinstance(found, list):
                report.ambiguous_rows.append(raw_id)
            elif found in chosen:
                if chosen[found][1] == label:
                    report.duplicate_rows.append(raw_id)
                else:
                    report.conflicting_rows.append(raw_id)
                    conflicted.add(found)
            else:
                chosen[found] = (raw_id, label)
        items = [Item(path, label) for path, (_, label) in chosen.items() if path not in conflicted]
        unlabelled -= set(chosen)  # an empty-label row does not undo another row's label
        no_row = set(finder.files) - set(chosen) - unlabelled
        report.unlabelled_files = sorted(no_row | unlabelled | conflicted)
        return cls(items, root=images, source=str(csv_path), load_report=report)

    @classmethod
    def from_split_record(cls, record: Mapping[str, Any], root: str | os.PathLike[str]) -> Dataset:
        """Rebuild the dataset a :meth:`split_record` describes, with its train/validation split.

        Files that are no longer there are listed in ``load_report.missing_rows`` rather than
        raising, so a caller can decide whether a slightly changed folder is acceptable.

        Args:
            record: The dict from :meth:`split_record` (e.g. loaded from a bundle's JSON).
            root: The folder its relative paths are relative to (it may have moved).

        Returns:
            A dataset whose items carry their subset, so ``.split()`` returns the same split.

        Raises:
            UserError: ``record`` is not a littlevision split record, or ``root`` is missing.
        """
        folder = _existing_folder(root, "data folder")
        try:
            if record.get("format") != _SPLIT_FORMAT or record.get("version") != _SPLIT_VERSION:
                raise KeyError("format")
            classes = [str(c) for c in record["classes"]]
            subsets = record["subsets"]
            entries = [
                (subset, label, str(rel))
                for subset in SUBSETS
                for label, rels in subsets.get(subset, {}).items()
                for rel in rels
            ]
        except (KeyError, TypeError, AttributeError) as exc:
            raise UserError(
                f"Expected a split record with format={_SPLIT_FORMAT!r}, "
                f"version={_SPLIT_VERSION}, classes and subsets. "
                f"Received keys: {sorted(record) if isinstance(record, Mapping) else record!r}."
            ) from exc
        if unknown := sorted({label for _, label, _ in entries} - set(classes)):
            raise UserError(f"The split record labels images {unknown[:5]} not in its classes.")
        report = LoadReport(csv_name="the split record")
        items = []
        for subset, label, rel in entries:
            path = folder.joinpath(*PurePosixPath(rel).parts)
            if path.is_file():
                items.append(Item(path, label, subset))
            else:
                report.missing_rows.append(rel)
        return cls(items, classes, root=folder, source=str(root), load_report=report)

    # -- the sequence protocol ------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self._items)

    @overload
    def __getitem__(self, key: int | np.integer) -> Item: ...

    @overload
    def __getitem__(self, key: slice | Sequence[int] | Sequence[bool] | np.ndarray) -> Dataset: ...

    def __getitem__(self, key):
        """``ds[i]`` is an :class:`Item`; a slice, index list/array or boolean mask a Dataset.

        Raises:
            IndexError: An index is out of range, or a mask has the wrong length.
            TypeError: The key is none of the above.
        """
        if isinstance(key, int | np.integer) and not isinstance(key, bool | np.bool_):
            return self._items[key]
        if isinstance(key, slice):
            return self._derive(self._items[key])
        if isinstance(key, str | bytes) or not isinstance(key, Sequence | np.ndarray):
            raise TypeError(
                "Expected an int, a slice, a list/array of ints or a boolean mask. "
                f"Received: {type(key).__name__}"
            )
        keys = np.asarray(key)
        if keys.size == 0:
            return self._derive(())
        if keys.ndim != 1:
            raise IndexError(f"Expected a 1-D index. Received an array of shape {keys.shape}")
        if keys.dtype == np.bool_:
            if len(keys) != len(self):
                raise IndexError(
                    f"Expected a boolean mask of length {len(self)}. Received length {len(keys)}"
                )
            return self._derive(item for item, keep in zip(self._items, keys, strict=True) if keep)
        if not np.issubdtype(keys.dtype, np.integer):
            raise TypeError(f"Expected integer indices. Received dtype {keys.dtype}")
        n = len(self)
        if keys.min() < -n or keys.max() >= n:
            raise IndexError(f"Index out of range for a dataset of {n} items")
        return self._derive(self._items[int(i)] for i in keys)

    def __add__(self, other: object) -> Dataset:
        """Concatenate; classes become the sorted union unless both lists are the same."""
        if not isinstance(other, Dataset):
            return NotImplemented
        if self._classes == other._classes:
            classes: Iterable[str] = self._classes
        else:
            classes = sorted(set(self._classes) | set(other._classes))
        same = self.root == other.root
        return Dataset(
            self._items + other._items,
            classes,
            root=self.root if same else None,
            source=self.source if self.source == other.source else None,
            load_report=self.load_report if self.load_report is other.load_report else None,
        )

    def __eq__(self, other: object) -> bool:
        """Same items in the same order, with the same classes (where it came from is ignored)."""
        if not isinstance(other, Dataset):
            return NotImplemented
        return self._classes == other._classes and self._items == other._items

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash((self._classes, self._items))
        return self._hash

    def __repr__(self) -> str:
        n = len(self)
        counts = self.counts()
        shown = ", ".join(f"{name} {count}" for name, count in list(counts.items())[:_REPR_CLASSES])
        if len(counts) > _REPR_CLASSES:
            shown += f" ... and {len(counts) - _REPR_CLASSES} more"
        text = f"{n} image{'s' if n != 1 else ''}, "
        text += f"{len(counts)} class{'es' if len(counts) != 1 else ''}" + (
            f": {shown}" if shown else ""
        )
        unlabelled = sum(1 for item in self._items if item.label is None)
        if unlabelled:
            text += f", {unlabelled} unlabelled"
        subsets = Counter(item.subset for item in self._items if item.subset is not None)
        if subsets:
            text += " (" + ", ".join(f"{s} {subsets[s]}" for s in sorted(subsets)) + ")"
        if self.source:
            text += f" from {self.source!r}"
        return f"Dataset({text})"

    def _repr_html_(self) -> str:
        """Jupyter shows counts per class (and subset) and a strip of thumbnails."""
        from littlevision._display import dataset_html

        return dataset_html(self)

    # -- views ----------------------------------------------------------------------------------

    @property
    def classes(self) -> list[str]:
        """Class names in index order (a fresh list: changing it changes nothing here)."""
        return list(self._classes)

    @property
    def paths(self) -> list[Path]:
        """The files, in order."""
        return [item.path for item in self._items]

    @property
    def labels(self) -> list[str | None]:
        """The labels, in order (``None`` for unlabelled items)."""
        return [item.label for item in self._items]

    @property
    def subsets(self) -> list[str | None]:
        """The subsets, in order (``None`` where neither the folder nor a split set one)."""
        return [item.subset for item in self._items]

    @property
    def y(self) -> np.ndarray:
        """int64 array of shape ``[N]``: each item's index in :attr:`classes`, -1 if unlabelled."""
        return np.fromiter(
            (self._index[i.label] if i.label is not None else -1 for i in self._items),
            dtype=np.int64,
            count=len(self._items),
        )

    def counts(self) -> dict[str, int]:
        """Images per class, in class order, classes with no image included (as 0)."""
        counter = Counter(item.label for item in self._items)
        return {name: counter.get(name, 0) for name in self._classes}

    def relative(self, path: str | os.PathLike[str]) -> Path:
        """``path`` relative to :attr:`root`, for reports; unchanged when it is not under it."""
        path = Path(path)
        if self.root is None:
            return path
        try:
            return path.relative_to(self.root)
        except ValueError:
            return path

    # -- filtering and splitting ------------------------------------------------------------------

    def where(
        self,
        *,
        label: str | Iterable[str] | None = None,
        subset: str | Iterable[str] | None = None,
    ) -> Dataset:
        """The items with one of the given labels and/or subsets (classes are kept as they are).

        Args:
            label: A class name or several.
            subset: ``"train"``, ``"validation"``, or both.

        Returns:
            A Dataset with the same ``classes``.

        Raises:
            UserError: A name is not a class of this dataset, or not a subset: a typo would
                otherwise silently select nothing.
        """
        labels = _as_set(label)
        subsets = _as_set(subset)
        if labels is not None and (unknown := sorted(labels - set(self._classes))):
            raise UserError(
                f"Unknown class {', '.join(map(repr, unknown))}: the classes are "
                f"{', '.join(self._classes) or '(none)'}."
            )
        if subsets is not None and (unknown := sorted(subsets - set(SUBSETS))):
            raise UserError(
                f"Unknown subset {', '.join(map(repr, unknown))}: expected one of {', '.join(SUBSETS)}."
            )
        return self.filter(
            lambda item: (
                (labels is None or item.label in labels)
                and (subsets is None or item.subset in subsets)
            )
        )

    def filter(self, keep: Callable[[Item], bool]) -> Dataset:
        """The items for which ``keep(item)`` is true (classes are kept as they are)."""
        return self._derive(item for item in self._items if keep(item))

    def split(self, val_fraction: float = 0.2, seed: int = 0) -> tuple[Dataset, Dataset]:
        """Split into (train, validation), stratified by class and reproducible from ``seed``.

        When every item already has a subset and both subsets are non-empty (the tutorial
        layout, or a dataset rebuilt from a :meth:`split_record`), that split is used as is and
        ``val_fraction`` and ``seed`` are ignored: the user's own validation set wins. Otherwise
        each class is shuffled with ``seed`` and ``round(n * val_fraction)`` of its images (at
        least 1 when it has 2 or more, never all) go to validation; a class of one image goes to
        train. Items keep their original order within each part.

        Args:
            val_fraction: Share of each class for validation, strictly between 0 and 1.
            seed: Seed of the shuffle.

        Returns:
            ``(train, validation)``, whose items carry ``subset`` ``"train"``/``"validation"`` so
            that ``(train + validation).split_record()`` saves the split.

        Raises:
            ValueError: ``val_fraction`` is not strictly between 0 and 1.
            UserError: Some items have no label (a stratified split needs one).
        """
        if not 0 < val_fraction < 1:
            raise ValueError(
                f"Expected 0 < val_fraction < 1. Received: val_fraction={val_fraction!r}"
            )
        subsets = self.subsets
        if all(s in SUBSETS for s in subsets) and all(s in subsets for s in SUBSETS):
            return self.where(subset="train"), self.where(subset="validation")
        y = self.y
        if (y < 0).any():
            raise UserError(
                f"Cannot split: {int((y < 0).sum())} of {len(self)} images have no label."
            )
        rng = np.random.default_rng(seed)
        is_val = np.zeros(len(self), dtype=bool)
        for k in range(len(self._classes)):
            members = np.flatnonzero(y == k)
            n = len(members)
            n_val = 0 if n < 2 else min(n - 1, max(1, math.floor(n * val_fraction + 0.5)))
            is_val[rng.permutation(members)[:n_val]] = True
        train = [
            _with_subset(item, "train")
            for item, v in zip(self._items, is_val, strict=True)
            if not v
        ]
        val = [
            _with_subset(item, "validation")
            for item, v in zip(self._items, is_val, strict=True)
            if v
        ]
        return self._derive(train), self._derive(val)

    def split_record(self) -> dict[str, Any]:
        """A JSON-able record of which file is in which subset, to save a run's split.

        Paths are relative to :attr:`root` (POSIX style), so the record still works when the
        data folder is moved or mounted elsewhere; :meth:`from_split_record` reads it back.

        Returns:
            ``{"format", "version", "classes", "subsets": {subset: {class: [relative paths]}}}``.

        Raises:
            ValueError: The dataset has no root, an item is outside it, or lacks a label or a
                subset (split first: ``train, val = ds.split(); (train + val).split_record()``).
        """
        if self.root is None:
            raise ValueError("Expected a dataset with a root folder to record paths relative to.")
        subsets: dict[str, dict[str, list[str]]] = {s: {} for s in SUBSETS}
        for item in self._items:
            if item.subset not in SUBSETS or item.label is None:
                raise ValueError(
                    "Expected every item to have a label and a subset (split first). "
                    f"Received: {item!r}"
                )
            try:
                rel = item.path.relative_to(self.root)
            except ValueError:
                raise ValueError(
                    f"Expected paths under {self.root}. Received: {item.path}"
                ) from None
            subsets[item.subset].setdefault(item.label, []).append(rel.as_posix())
        return {
            "format": _SPLIT_FORMAT,
            "version": _SPLIT_VERSION,
            "classes": list(self._classes),
            "subsets": subsets,
        }

    # -- helpers --------------------------------------------------------------------------------

    def _derive(self, items: Iterable[Item]) -> Dataset:
        """A dataset of other items from the same source: same classes, root and report."""
        return Dataset(items, self._classes, self.root, self.source, self.load_report)


# -- module helpers --------------------------------------------------------------------------


def _with_subset(item: Item, subset: str) -> Item:
    return item if item.subset == subset else Item(item.path, item.label, subset)


def _as_set(value: str | Iterable[str] | None) -> set[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return {value}
    return set(value)


def _short(value: object) -> str:
    return value.name if isinstance(value, Path) else str(value)


def _existing_folder(path: str | os.PathLike[str], what: str) -> Path:
    folder = Path(path).expanduser()
    if not folder.exists():
        raise UserError(f"No such {what}: '{path}'.")
    if not folder.is_dir():
        raise UserError(f"'{path}' is a file, not a folder: expected the {what}.")
    return folder.absolute()


def _visible(folder: Path) -> list[Path]:
    """Non-hidden entries of a folder, sorted (dot-files are the OS's, not the user's data)."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _files_under(folder: Path) -> list[Path]:
    """Every non-hidden regular file below ``folder``, in a stable (sorted) order."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        base = Path(dirpath)
        for name in sorted(filenames):
            if not name.startswith(".") and (base / name).is_file():
                found.append(base / name)
    return found


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        text = path.read_text(encoding="latin-1")  # old spreadsheet exports
    sample = text[:8192]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = [row for row in csv.reader(text.splitlines(), dialect) if any(c.strip() for c in row)]
    if not rows:
        raise UserError(f"The labels file '{path}' is empty: expected a header row and rows.")
    return [c.strip() for c in rows[0]], rows[1:]


def _norm(column: str) -> str:
    return column.strip().lower().replace(" ", "_").replace("-", "_")


def _pick_columns(
    csv_path: str | os.PathLike[str], header: list[str], id_col: str | None, label_col: str | None
) -> tuple[str, str]:
    found = ", ".join(header)
    for name, given in (("id_col", id_col), ("label_col", label_col)):
        if given is not None and given not in header:
            raise UserError(f"'{csv_path}' has no column {given!r} ({name}); it has: {found}.")

    def guess(names: tuple[str, ...], exclude: str | None) -> str | None:
        matches = [c for c in header if _norm(c) in names and c != exclude]
        return matches[0] if len(matches) == 1 else None

    if label_col is None:
        label_col = guess(_LABEL_COLUMNS, id_col)
    if id_col is None:
        id_col = guess(_ID_COLUMNS, label_col)
    if len(header) == 2:  # two columns: the one not recognised is the other
        if id_col is None and label_col is not None:
            id_col = next(c for c in header if c != label_col)
        elif label_col is None and id_col is not None:
            label_col = next(c for c in header if c != id_col)
        elif id_col is None and label_col is None:
            id_col, label_col = header
    if label_col is None or label_col == id_col:
        raise UserError(
            f"Cannot tell which column of '{csv_path}' holds the labels (columns: {found}); "
            "name it label, class or category (from Python: "
            "Dataset.from_csv(..., label_col=NAME))."
        )
    if id_col is None:
        raise UserError(
            f"Cannot tell which column of '{csv_path}' holds the image file names "
            f"(columns: {found}); name it filename, path, image or id (from Python: "
            "Dataset.from_csv(..., id_col=NAME))."
        )
    return id_col, label_col


class _FileFinder:
    """Finds the file a CSV id means: exactly, case-insensitively, or ignoring the extension."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.files = _files_under(folder)
        self._exact: dict[str, Path] = {}
        self._folded: dict[str, list[Path]] = {}
        self._stem: dict[str, list[Path]] = {}
        for f in self.files:
            rel = f.relative_to(folder).as_posix()
            self._exact[rel] = f
            self._folded.setdefault(rel.lower(), []).append(f)
            self._stem.setdefault(_drop_suffix(rel).lower(), []).append(f)

    def find(self, raw_id: str) -> Path | list[Path] | None:
        """The file, several candidates when it is ambiguous, or None when there is none."""
        rel = raw_id.replace("\\", "/").removeprefix("./")
        candidates = [rel]
        first, _, rest = rel.partition("/")
        if rest and first.lower() == self.folder.name.lower():
            candidates.append(rest)  # ids written as 'images/cat1.jpg' next to images/
        for key in candidates:
            if key in self._exact:
                return self._exact[key]
        for table, transform in (
            (self._folded, str.lower),
            (self._stem, str.lower),  # 'cat.1' (no extension) names cat.1.jpg
            (self._stem, lambda k: _drop_suffix(k).lower()),  # 'Cat1.jpg' names Cat1.png
        ):
            for key in candidates:
                matches = table.get(transform(key))
                if matches:
                    return matches[0] if len(matches) == 1 else matches
        return None


def _drop_suffix(rel: str) -> str:
    path = PurePosixPath(rel)
    return str(path.with_suffix("")) if path.suffix else rel
