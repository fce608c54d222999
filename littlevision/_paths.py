"""Output paths checked before the work starts, so a long run never ends in a traceback.

A verb that writes (``predict -o``, ``train -o``, ``doctor --json-file``...) calls one of these
first: a path that is a folder where a file is wanted, a parent that is a file, or a place the
process cannot create files in is a user mistake, said in one sentence, before anything is
computed and without creating anything.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from littlevision.errors import UserError


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path.cwd()


def _check_can_create_in(folder: Path, path: Path, option: str) -> None:
    """Prove files can be created in ``folder`` by creating (and removing) one."""
    if not folder.is_dir():
        raise UserError(f"Cannot write {option} '{path}': '{folder}' is a file, not a folder.")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".littlevision-write-check-")
    except OSError as e:
        raise UserError(
            f"Cannot write {option} '{path}': files cannot be created in '{folder}' "
            f"({e.strerror or e})."
        ) from None
    os.close(fd)
    os.unlink(probe)


def check_output_file(path: str | os.PathLike, option: str = "--output") -> Path:
    """Check that ``path`` can be written as a file (it need not exist yet); create nothing.

    Args:
        path: The file a verb will write.
        option: How the user named it, for the message (``--json``, ``-o``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        UserError: ``path`` is a folder, a parent is a file, or files cannot be created there.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(
            f"Cannot write {option} '{path}': it is a folder; give a file name such as "
            f"'{path / ('output' + _suffix_hint(option))}'."
        )
    existing = _nearest_existing(path.parent if str(path.parent) else Path("."))
    _check_can_create_in(existing, path, option)
    return path


def check_output_dir(path: str | os.PathLike, option: str = "--output") -> Path:
    """Check that ``path`` is, or can be made, a folder to write in; create nothing.

    Raises:
        UserError: ``path`` (or a parent) is a file, or files cannot be created there.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"Cannot write {option} '{path}': it is a file, not a folder.")
    _check_can_create_in(_nearest_existing(path), path, option)
    return path


def _suffix_hint(option: str) -> str:
    return {"--json": ".json", "--html": ".html"}.get(option, ".csv")
