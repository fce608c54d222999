"""Files written whole or not at all, and file hashes: the small I/O every layer shares.

A reader (another process, a served bundle, a resumed run) never sees half a file: everything is
written to a temporary name beside its target and moved into place with ``os.replace``, which
is atomic on POSIX and Windows within one file system.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path``, moved onto ``path`` when the block ends without error.

    On an error (Ctrl-C included) the temporary file is removed and ``path`` is left as it was.
    The temporary name keeps ``path``'s extension, so writers that infer a format from it
    (matplotlib, PIL, ``np.save``) still do. A file that is replaced keeps its permissions.

    Args:
        path: The file to write.
        fsync: Flush the file, then the rename, to disk (for files a crash must not lose: a
            user's labels, a journal's companions, converted weights).

    Yields:
        The temporary path to write to.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        yield tmp
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        if fsync:
            _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        fsync_folder(path.parent)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: str | os.PathLike) -> None:
    """Make a rename in ``folder`` durable (POSIX keeps the entry in the folder); best effort."""
    with contextlib.suppress(OSError):
        _fsync(Path(folder))


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", *, fsync: bool = False, **kwargs):
    """``open(path, mode)`` whose content appears at ``path`` only once it is complete.

    ``mode`` is ``"w"`` or ``"wb"``; ``kwargs`` go to :func:`open` (``encoding``, ``newline``).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"Expected mode 'w' or 'wb'. Received: mode={mode!r}")
    if mode == "w":
        kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path, fsync=fsync) as tmp, open(tmp, mode, **kwargs) as f:
        yield f


def write_bytes(path: str | os.PathLike, data: bytes, *, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_open(path, "wb", fsync=fsync) as f:
        f.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; returns ``path``."""
    with atomic_open(path, "w") as f:
        f.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented UTF-8 JSON, atomically (values JSON lacks become strings)."""
    with atomic_open(path, "w") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False, default=str)
        f.write("\n")


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, as 64 hex digits, read in ``chunk``-byte blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
