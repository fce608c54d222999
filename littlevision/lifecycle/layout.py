"""A run's versions on disk: ``versions/<N>/`` folders, the ``current`` link, and a lock.

The layout follows TF Serving and Triton (one numbered folder per version under the model)
and keeps every tool that reads a run working unchanged::

    RUN/
      current -> versions/2          the version being served (a relative symbolic link)
      model.onnx -> current/model.onnx   (and labels.json, card.json, ... likewise)
      versions/
        1/  model.onnx model.keras labels.json card.json ... version.json
        2/  ...
        history.jsonl                promotions and rollbacks, one JSON object a line
      feedback/<label>/...           corrections (never moved, never deleted)

Why links: a promotion or rollback must switch several files at once, and a crash must never
leave a mix. Every top-level file points through ``current``, so switching version is one
``rename`` of a new link onto ``current`` (atomic on POSIX); :class:`~littlevision.bundle.Bundle`
resolves ``current`` once and reads every file from that one folder. The version folders are
never modified after they are complete, so a rollback restores the earlier files byte for byte.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from littlevision._io import fsync_folder, write_json
from littlevision.bundle import CURRENT_LINK, VERSIONS_DIR
from littlevision.errors import UserError

VERSION_FILE = "version.json"
HISTORY_FILE = "history.jsonl"
LOCK_FILE = ".lifecycle.lock"
#: The files of a bundle a version folder holds (plus any ``model.*`` variant, e.g. int8).
BUNDLE_FILES = (
    "model.onnx",
    "model.keras",
    "labels.json",
    "card.json",
    "metrics.json",
    "split.json",
    "history.json",
    "novelty.npz",
    "report.html",
    "README.md",
)


def is_bundle_file(name: str) -> bool:
    return name in BUNDLE_FILES or (name.startswith("model.") and not name.endswith(".tmp"))


def versions_dir(run: Path) -> Path:
    return Path(run) / VERSIONS_DIR


def version_dir(run: Path, number: int) -> Path:
    return versions_dir(run) / str(int(number))


def version_numbers(run: Path) -> list[int]:
    """Complete versions on disk, oldest first (temporary folders of a crashed write are not)."""
    folder = versions_dir(run)
    if not folder.is_dir():
        return []
    return sorted(
        int(p.name)
        for p in folder.iterdir()
        if p.is_dir() and p.name.isdigit() and (p / VERSION_FILE).is_file()
    )


def current_version(run: Path) -> int | None:
    """The version ``current`` points to, or None for a run that was never versioned."""
    link = Path(run) / CURRENT_LINK
    if not link.is_symlink():
        return None
    name = Path(os.readlink(link)).name
    return int(name) if name.isdigit() else None


def read_version(run: Path, number: int) -> dict[str, Any]:
    try:
        return json.loads((version_dir(run, number) / VERSION_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"Version {number} of '{run}' is damaged: {e}.") from None


def write_version(folder: Path, record: dict[str, Any]) -> None:
    write_json(folder / VERSION_FILE, record)


def append_history(run: Path, event: dict[str, Any]) -> None:
    """One JSON line per promotion or rollback, written and flushed to disk at once."""
    path = versions_dir(run) / HISTORY_FILE
    line = json.dumps({"at": _now(), **event}, ensure_ascii=False) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def read_history(run: Path) -> list[dict[str, Any]]:
    path = versions_dir(run) / HISTORY_FILE
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):  # a line cut by a crash is skipped
            out.append(json.loads(line))
    return out


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _link(path: Path, target: str) -> None:
    """Make ``path`` a symbolic link to ``target`` atomically (replacing what was there)."""
    tmp = path.with_name(f".{path.name}.link-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, path)


def staging_dir(run: Path, number: int) -> Path:
    """A fresh hidden folder to build version ``number`` in; renamed into place when complete."""
    folder = versions_dir(run) / f".{number}.tmp-{os.getpid()}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def publish(staging: Path, run: Path, number: int) -> Path:
    """Move a complete staging folder to ``versions/<number>`` (one rename)."""
    for f in staging.iterdir():
        if f.is_file():
            with open(f, "rb") as handle:
                os.fsync(handle.fileno())
    fsync_folder(staging)
    target = version_dir(run, number)
    os.replace(staging, target)
    fsync_folder(target.parent)
    return target


def clean_staging(run: Path) -> None:
    """Remove folders left by a write that crashed (they never became a version)."""
    folder = versions_dir(run)
    if folder.is_dir():
        for p in folder.iterdir():
            if p.is_dir() and p.name.startswith(".") and ".tmp-" in p.name:
                shutil.rmtree(p, ignore_errors=True)


def ensure_versioned(run: Path) -> int:
    """Make a plain run folder version 1 of a versioned run (once); returns the current version.

    Every step leaves a run that loads and serves version 1: its files are first copied into
    ``versions/1`` (complete before the rename that publishes it), then ``current`` is made, then
    each top-level file is replaced by a link to the identical copy, one atomic rename each.
    """
    run = Path(run)
    number = current_version(run)
    if number is not None:
        _ensure_links(run, version_dir(run, number))
        return number
    clean_staging(run)
    if not version_dir(run, 1).is_dir():
        names = [p.name for p in run.iterdir() if p.is_file() and is_bundle_file(p.name)]
        if "model.onnx" not in names:
            raise UserError(f"'{run}' is not a littlevision run: it has no model.onnx.")
        staging = staging_dir(run, 1)
        for name in names:
            shutil.copy2(run / name, staging / name)
        card = json.loads((staging / "card.json").read_text(encoding="utf-8"))
        write_version(
            staging,
            {
                "version": 1,
                "created": card.get("created"),
                "origin": "train",
                "status": "promoted",
                "model_version": card.get("model_version"),
                "metrics": card.get("metrics"),
            },
        )
        publish(staging, run, 1)
    _link(run / CURRENT_LINK, f"{VERSIONS_DIR}/1")
    fsync_folder(run)
    _ensure_links(run, version_dir(run, 1))
    append_history(run, {"event": "versioned", "version": 1})
    return 1


def _ensure_links(run: Path, folder: Path) -> None:
    """Every bundle file of ``folder`` is reachable at the top of the run through ``current``."""
    for f in folder.iterdir():
        if not (f.is_file() and is_bundle_file(f.name)):
            continue
        top = run / f.name
        target = f"{CURRENT_LINK}/{f.name}"
        if top.is_symlink() and os.readlink(top) == target:
            continue
        _link(top, target)
    fsync_folder(run)


def switch_to(run: Path, number: int) -> None:
    """Serve version ``number``: one atomic rename of the ``current`` link."""
    run = Path(run)
    folder = version_dir(run, number)
    if not (folder / VERSION_FILE).is_file():
        raise UserError(f"'{run}' has no version {number}.")
    _ensure_links(run, folder)  # new files point through current: dangling until the switch
    _link(run / CURRENT_LINK, f"{VERSIONS_DIR}/{int(number)}")
    fsync_folder(run)


@contextlib.contextmanager
def lifecycle_lock(run: Path) -> Iterator[None]:
    """Hold the run's lifecycle lock: one retrain, promotion, rollback or prune at a time.

    Raises:
        UserError: when another process holds it (the second one refuses; nothing races).
    """
    path = Path(run) / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise UserError(
                f"Another retrain, rollback or prune of '{run}' is running ({holder}); "
                "wait for it to finish and run this again."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()}".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
