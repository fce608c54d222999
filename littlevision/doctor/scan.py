"""One streaming pass over the files: hash, header, one small decode, every pixel measure.

Each image is decoded once, at ``config.scan_size`` (JPEGs are reduced by the decoder itself, so
this is cheap), every measure of :mod:`.measures` and the perceptual hash are computed on that
array, and the array is dropped: memory holds a few numbers per image, never the images. Files
that cannot be decoded get their :class:`~littlevision.data.decode.DecodeError` recorded, so one
broken file is a finding, not a crash.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from littlevision.data.decode import DecodeError, ImageInfo, load_image, probe
from littlevision.doctor.measures import measure_all
from littlevision.doctor.phash import phash
from littlevision.features import content_hash


@dataclass
class ImageRecord:
    """What the scan learnt about one dataset item.

    Attributes:
        index: Position in the dataset.
        path: The file.
        rel: The file relative to the data folder, POSIX style (what reports show).
        label: Its class, or ``None``.
        subset: ``"train"``, ``"validation"`` or ``None``.
        hash: Content hash (as in the embedding cache); ``""`` when the file cannot be read.
        file_size: Bytes.
        mtime: Last modification time (seconds since the epoch); copies are usually newer.
        info: The header (:func:`~littlevision.data.decode.probe`), when it could be read.
        error: Why it cannot be decoded, or ``None`` when it can.
        measures: :data:`~littlevision.doctor.measures.MEASURES` values of the decoded image.
        phash: 64-bit perceptual hash of the decoded image.
    """

    index: int
    path: Path
    rel: str
    label: str | None
    subset: str | None
    hash: str = ""
    file_size: int = 0
    mtime: float = 0.0
    info: ImageInfo | None = None
    error: DecodeError | None = None
    measures: dict[str, float] = field(default_factory=dict)
    phash: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def relative_name(path: Path, root: Path | None) -> str:
    """``path`` relative to ``root`` in POSIX form; the absolute path when it lies outside."""
    if root is not None:
        try:
            return Path(os.path.abspath(path)).relative_to(os.path.abspath(root)).as_posix()
        except ValueError:
            pass
    return Path(path).as_posix()


def scan_file(
    index: int,
    path: Path,
    label: str | None,
    subset: str | None,
    root: Path | None,
    size: int,
    max_pixels: int,
) -> ImageRecord:
    """Examine one file; never raises for anything a file's content can do."""
    rec = ImageRecord(index, Path(path), relative_name(path, root), label, subset)
    try:
        st = rec.path.stat()
        rec.file_size, rec.mtime = st.st_size, st.st_mtime
        rec.hash = content_hash(rec.path) if rec.file_size else ""
        rec.info = probe(rec.path)
        image = load_image(rec.path, size, max_pixels=max_pixels)
    except DecodeError as e:
        rec.error = e
        return rec
    except OSError as e:  # vanished or unreadable between listing and reading
        rec.error = DecodeError(rec.path, "unreadable", "the file cannot be read", str(e))
        return rec
    except Exception as e:  # noqa: BLE001 - a user's file must never crash the doctor
        rec.error = DecodeError(
            rec.path, "unreadable", f"decoding failed unexpectedly ({type(e).__name__})", str(e)
        )
        return rec
    rec.measures = measure_all(image)
    rec.phash = phash(image)
    return rec


def scan(
    items: Sequence,
    root: Path | None,
    size: int = 128,
    *,
    max_pixels: int,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[ImageRecord]:
    """Scan dataset items in parallel threads (Pillow and numpy release the GIL).

    Args:
        items: :class:`~littlevision.data.dataset.Item` objects (``path``, ``label``, ``subset``).
        root: Folder the records' ``rel`` paths are relative to.
        size: Side of the square decode for pixel measures.
        max_pixels: Larger images are refused (recorded as ``too_large``).
        workers: Threads (default: the cores this process may use).
        progress: Called with 1 after each file, from the calling thread.

    Returns:
        One record per item, in order.
    """
    if workers is None:
        from littlevision._system import available_cores

        workers = available_cores()
    records: list[ImageRecord] = []
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="lv-doctor") as pool:
        jobs = pool.map(
            lambda args: scan_file(*args, root, size, max_pixels),
            ((i, it.path, it.label, it.subset) for i, it in enumerate(items)),
        )
        for rec in jobs:
            records.append(rec)
            if progress is not None:
                progress(1)
    return records
