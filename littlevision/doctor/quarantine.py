"""Fixing without losing anything: files are *moved* to a sibling quarantine folder, never
deleted, and every move can be undone byte for byte.

``DATA/cats/cat.7.jpg`` goes to ``DATA.quarantine/cats/cat.7.jpg`` (relative paths mirrored).
Before each move, one line describing it (what, from, to, why, SHA-256 of the content) is
appended to ``DATA.quarantine/journal.jsonl`` and flushed to disk (``fsync``); the move itself is
an atomic rename. So however a fix is interrupted -- Ctrl-C, a crash, a power cut -- every file
is either in place or in quarantine, and the journal names every file that may have moved.
:func:`restore` reads the journal backwards and moves each file that is in quarantine back; it
can itself be interrupted and re-run. A second :func:`fix` never moves a file twice: a file that
is no longer where the report saw it is skipped.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from littlevision._io import atomic_path, file_sha256, fsync_folder
from littlevision.doctor.registry import FIX_LEVELS, get_check
from littlevision.doctor.report import Report
from littlevision.errors import UserError
from littlevision.progress import NULL, Reporter

SUFFIX = ".quarantine"
JOURNAL = "journal.jsonl"
JOURNAL_VERSION = 1


def quarantine_dir(root: str | os.PathLike[str]) -> Path:
    """The quarantine folder of a data folder: its sibling ``<name>.quarantine``.

    A sibling, not a subfolder, so a class-folder dataset never mistakes it for a class.
    """
    root = Path(os.path.abspath(root))
    return root.with_name(root.name + SUFFIX)


def data_dir_of(quarantine: str | os.PathLike[str]) -> Path:
    """The data folder a quarantine folder belongs to (``X.quarantine`` -> ``X``)."""
    q = Path(os.path.abspath(quarantine))
    if not q.name.endswith(SUFFIX):
        raise UserError(
            f"'{quarantine}' is not a quarantine folder: its name should end in '{SUFFIX}'."
        )
    return q.with_name(q.name[: -len(SUFFIX)])


@dataclass(frozen=True)
class PlannedMove:
    """One file a fix would move, and which finding asks for it."""

    file: str
    check: str
    why: str


@dataclass
class FixResult:
    """What :func:`fix` did.

    Attributes:
        quarantine: The quarantine folder.
        moved: ``{"from", "to", "check", "why"}`` for each file moved (relative paths).
        skipped: ``{"file", "why"}`` for planned files that were not moved (already gone...).
    """

    quarantine: Path
    moved: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


@dataclass
class RestoreResult:
    """What :func:`restore` did.

    Attributes:
        data: The data folder files went back to.
        restored: Relative paths moved back.
        already_in_place: Journal entries whose file was already back (or never moved).
        conflicts: ``{"file", "why"}``: left in quarantine because something now occupies
            the original place, or the quarantined copy is missing.
        changed: Files restored whose content differs from the journal's hash (edited while in
            quarantine); restored anyway, they are the user's.
    """

    data: Path
    restored: list[str] = field(default_factory=list)
    already_in_place: list[str] = field(default_factory=list)
    conflicts: list[dict[str, str]] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)


def plan_fix(report: Report, level: str = "errors") -> list[PlannedMove]:
    """The files a fix at ``level`` would move, worst finding first, each file once.

    Args:
        report: What :func:`~littlevision.doctor.examine` found.
        level: ``"errors"`` (broken files, duplicates, leaks, conflicting copies) or ``"all"``
            (also suspected label issues and outliers).

    Raises:
        UserError: ``level`` is not one of those.
    """
    if level not in FIX_LEVELS:
        raise UserError(f"--fix takes nothing or 'all'. Received: '{level}'.")
    levels = set(FIX_LEVELS[: FIX_LEVELS.index(level) + 1])
    plan: list[PlannedMove] = []
    seen: set[str] = set()
    for finding in report.findings:
        try:
            spec = get_check(finding.check)
        except UserError:  # a report from a plugin that is not installed here: not ours to fix
            continue
        if spec.fix not in levels:
            continue
        for rel in finding.quarantine:
            if rel not in seen:
                seen.add(rel)
                plan.append(PlannedMove(rel, finding.check, finding.message))
    return plan


def _inside(root: Path, rel: str) -> Path:
    """``root / rel``, refusing paths that would leave ``root`` (a tampered report)."""
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
        raise UserError(f"Refusing to move '{rel}': not a path inside the data folder.")
    return root.joinpath(*parts)


def _resolves_inside(path: Path, root: Path) -> bool:
    """Whether ``path``, every symlink followed, stays inside ``root``'s real path."""
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))


def _free_name(path: Path) -> Path:
    """``path``, or ``name~1.ext``, ``name~2.ext``... when something is already there."""
    candidate, n = path, 0
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = path.with_name(f"{path.stem}~{n}{path.suffix}")
    return candidate


def _move(src: Path, dst: Path) -> None:
    """Atomic rename; across file systems, a verified copy then removal of the original."""
    try:
        os.rename(src, dst)
        return
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
    with atomic_path(dst, fsync=True) as tmp:
        shutil.copy2(src, tmp)
        if file_sha256(tmp) != file_sha256(src):
            raise OSError(f"Copy of '{src}' to '{dst}' does not match the original; left in place.")
    os.unlink(src)


class _Journal:
    """Append-only JSON lines, each flushed and fsync'ed before the caller acts on it."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._f = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def append(self, record: dict[str, Any]) -> None:
        self._f.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> _Journal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_journal(quarantine: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The journal's records; a line cut short by a crash is ignored (its move never happened:
    the record is written in full before the move starts)."""
    path = Path(quarantine) / JOURNAL
    if not path.is_file():
        raise UserError(
            f"'{quarantine}' has no {JOURNAL}: it is not a littlevision quarantine folder."
        )
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict):
                records.append(rec)
    return records


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def fix(
    report: Report,
    level: str = "errors",
    *,
    root: str | os.PathLike[str] | None = None,
    reporter: Reporter = NULL,
) -> FixResult:
    """Move the files :func:`plan_fix` lists into the quarantine folder, journalling each move.

    Args:
        report: What :func:`~littlevision.doctor.examine` found.
        level: ``"errors"`` or ``"all"`` (see :func:`plan_fix`).
        root: The data folder (default: ``report.root``).
        reporter: Receives progress.

    Returns:
        A :class:`FixResult`. Undo with :func:`restore` on ``result.quarantine``.

    Raises:
        UserError: ``level`` is unknown, or the data folder does not exist.
    """
    root = Path(os.path.abspath(root or report.root))
    if not root.is_dir():
        raise UserError(f"The data folder '{root}' does not exist.")
    plan = plan_fix(report, level)
    q = quarantine_dir(root)
    result = FixResult(quarantine=q)
    if not plan:
        return result
    session = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
    with _Journal(q / JOURNAL) as journal, reporter.stage("quarantine", total=len(plan)) as st:
        journal.append(
            {
                "op": "begin",
                "session": session,
                "data": str(root),
                "level": level,
                "version": JOURNAL_VERSION,
                "time": _now(),
            }
        )
        for n, move in enumerate(plan):
            st.advance(1)
            src = _inside(root, move.file)
            if not _resolves_inside(src, root):
                # a symlinked file or folder leading out of DATA: never moved (docs/doctor.md)
                why = "its real path is outside the data folder (a symlink); left in place"
                result.skipped.append({"file": move.file, "why": why})
                continue
            if src.is_symlink():
                result.skipped.append({"file": move.file, "why": "a symlink; left in place"})
                continue
            if not src.is_file():
                why = "not there any more (already moved?)" if not src.exists() else "not a file"
                result.skipped.append({"file": move.file, "why": why})
                continue
            dst = _free_name(_inside(q, move.file))
            record = {
                "op": "move",
                "id": f"{session}-{n}",
                "from": move.file,
                "to": dst.relative_to(q).as_posix(),
                "check": move.check,
                "why": move.why,
                "sha256": file_sha256(src),
                "size": src.stat().st_size,
                "time": _now(),
            }
            journal.append(record)  # on disk before the file moves
            dst.parent.mkdir(parents=True, exist_ok=True)
            _move(src, dst)
            fsync_folder(dst.parent)
            fsync_folder(src.parent)
            result.moved.append(
                {"from": move.file, "to": record["to"], "check": move.check, "why": move.why}
            )
        journal.append(
            {"op": "end", "session": session, "moved": len(result.moved), "time": _now()}
        )
    return result


UNDOABLE_OPS: tuple[str, ...] = (
    "move",
    "relabel",
    "relabel_csv",
    "label",
    "move_external",
    "keep",
)
"""Journal operations :func:`restore` undoes: the doctor's ``move`` and the review's actions
(see :mod:`littlevision.review.journal`)."""


@dataclass(frozen=True)
class UndoOutcome:
    """What undoing one journal record did.

    Attributes:
        status: ``"restored"``, ``"already"`` (nothing left to undo) or ``"conflict"`` (left as
            it is, see ``why``).
        file: The file concerned (relative to the data folder when it is inside it).
        why: For a conflict, one sentence.
        changed: The file's content differs from the journal's hash (restored anyway).
    """

    status: str
    file: str
    why: str = ""
    changed: bool = False


def move_back(src: Path, dst: Path, rec: dict[str, Any], name: str) -> UndoOutcome:
    """Move ``src`` (where a journalled move put a file) back to ``dst``, never overwriting."""
    if not src.exists():
        if dst.exists():  # moved back already, or the move never happened
            return UndoOutcome("already", name)
        return UndoOutcome("conflict", name, "missing from where it was moved and from its place")
    if dst.exists() or dst.is_symlink():
        return UndoOutcome(
            "conflict", name, f"another file now has its name; left where it is ({src})"
        )
    changed = bool(rec.get("sha256")) and file_sha256(src) != rec["sha256"]
    dst.parent.mkdir(parents=True, exist_ok=True)
    _move(src, dst)
    fsync_folder(dst.parent)
    fsync_folder(src.parent)
    return UndoOutcome("restored", name, changed=changed)


def undo_record(rec: dict[str, Any], data: Path, q: Path) -> UndoOutcome:
    """Undo one journal record (a doctor move or a review action), safely and idempotently."""
    if rec.get("op") == "move":
        dst = _inside(data, rec["from"])
        if not _resolves_inside(dst, data):
            return UndoOutcome(
                "conflict",
                rec["from"],
                "its folder is now a symlink leading outside the data folder; left in the "
                "quarantine",
            )
        return move_back(_inside(q, rec["to"]), dst, rec, rec["from"])
    from littlevision.review.journal import undo_review_record

    return undo_review_record(rec, data, q)


def restore(
    quarantine: str | os.PathLike[str],
    *,
    data: str | os.PathLike[str] | None = None,
    reporter: Reporter = NULL,
) -> RestoreResult:
    """Put every quarantined file back where it was, byte for byte, newest move first.

    Safe to interrupt and to run again: files already back are skipped, and nothing is ever
    overwritten (a file now occupying an original place is reported as a conflict).

    Args:
        quarantine: The ``DATA.quarantine`` folder.
        data: The data folder (default: ``DATA`` beside it, else the one the journal names).
        reporter: Receives progress.

    Raises:
        UserError: ``quarantine`` is not a quarantine folder.
    """
    q = Path(os.path.abspath(quarantine))
    if not q.is_dir():
        raise UserError(f"No such quarantine folder: '{quarantine}'.")
    records = read_journal(q)
    if data is None:
        data = data_dir_of(q)
        if not data.is_dir():
            named = [r["data"] for r in records if r.get("op") == "begin" and r.get("data")]
            if named and Path(named[-1]).is_dir():
                data = Path(named[-1])
    data = Path(os.path.abspath(data))
    data.mkdir(parents=True, exist_ok=True)
    result = RestoreResult(data=data)
    done = {r.get("id") for r in records if r.get("op") == "restored"}
    todo = [r for r in records if r.get("op") in UNDOABLE_OPS and r.get("id") not in done]
    with _Journal(q / JOURNAL) as journal, reporter.stage("restore", total=len(todo)) as st:
        for rec in reversed(todo):
            st.advance(1)
            outcome = undo_record(rec, data, q)
            if outcome.status == "conflict":
                result.conflicts.append({"file": outcome.file, "why": outcome.why})
                continue
            if outcome.changed:
                result.changed.append(outcome.file)
            record = {"op": "restored", "id": rec["id"], "time": _now()}
            if outcome.status == "already":
                record["note"] = "already in place"
                result.already_in_place.append(outcome.file)
            else:
                result.restored.append(outcome.file)
            journal.append(record)
    _prune_empty_dirs(q)
    return result


def _prune_empty_dirs(q: Path) -> None:
    """Remove the now-empty folders a fix created inside the quarantine (never files)."""
    for dirpath, _, _ in sorted(os.walk(q), key=lambda t: -len(t[0])):
        if Path(dirpath) != q:
            try:
                os.rmdir(dirpath)  # fails, harmlessly, when not empty
            except OSError:
                pass
