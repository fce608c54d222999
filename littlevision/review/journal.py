"""The review's actions in the doctor's journal (``DATA.quarantine/journal.jsonl``).

The journal is the source of truth: every action is one JSON line, written and fsync'ed *before*
anything on disk changes, and undoing one appends ``{"op": "restored", "id": ...}`` -- the same
record ``doctor --restore`` writes -- so a restore after a review undoes exactly the actions not
undone yet, newest first, byte for byte. What the review adds to the doctor's ``move``:

- ``keep``: ``files`` (each ``{"file", "sha256"}``) were looked at for ``check`` and are fine;
  the doctor stops reporting that finding while the files keep that content.
- ``relabel``: a file moved from one class folder to another (``from``/``to`` inside the data).
- ``relabel_csv``: label cells of a CSV changed; ``edits`` keep each whole raw line before and
  after, so undo writes back the exact bytes.
- ``label``: an unlabelled image moved into the data (``source`` absolute, ``to`` relative);
  for a CSV set, also the exact row appended (``csv``, ``appended``).
- ``move_external``: an unlabelled image moved into the quarantine.

Several tabs, or several processes, act under one lock file (``DATA.quarantine/.review.lock``),
and each action re-reads the journal, so none is lost or done twice.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from littlevision._io import file_sha256
from littlevision.doctor.quarantine import (
    JOURNAL,
    JOURNAL_VERSION,
    UndoOutcome,
    _Journal,
    move_back,
    quarantine_dir,
    read_journal,
)
from littlevision.errors import UserError
from littlevision.review.target import inside

#: Journal operations that are review actions (each can be undone).
ACTIONS: tuple[str, ...] = ("move", "relabel", "relabel_csv", "label", "move_external", "keep")
LOCK = ".review.lock"

_thread_lock = threading.RLock()


class StaleError(UserError):
    """The file is gone or changed since the queue showing it was built: skipped."""


class ConflictError(UserError):
    """The action cannot be done as asked (done already elsewhere, a read-only folder...)."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_session() -> str:
    return "review-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


class Journal:
    """Appends a review session's records to the data folder's journal.

    Args:
        root: The data folder (the journal is in its sibling ``.quarantine`` folder).
        session: The session id (default: a new one); action ids are ``{session}-{n}``.
    """

    def __init__(self, root: str | os.PathLike[str], session: str | None = None):
        self.root = Path(os.path.abspath(root))
        self.quarantine = quarantine_dir(self.root)
        self.session = session or new_session()
        self._began = False
        self._n = 0
        self._cache: tuple[list[dict[str, Any]], int, tuple[int, int] | None] = ([], 0, None)

    @property
    def path(self) -> Path:
        return self.quarantine / JOURNAL

    def records(self) -> list[dict[str, Any]]:
        """Every record of the journal, oldest first (``[]`` when there is none yet).

        The file is append-only, so only the bytes added since the last call are parsed
        (whoever appended them: this session, another tab's request, another process); a file
        that shrank or was replaced is read again from the start.
        """
        try:
            st = self.path.stat()
        except OSError:
            self._cache = ([], 0, None)
            return []
        records, offset, ident = self._cache
        if ident != (st.st_dev, st.st_ino) or st.st_size < offset:
            records, offset = [], 0
        if st.st_size > offset:
            with open(self.path, "rb") as f:
                f.seek(offset)
                chunk = f.read()
            end = chunk.rfind(b"\n") + 1  # a line still being written is read next time
            for line in chunk[:end].splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a crash: its action never happened
                if isinstance(rec, dict):
                    records.append(rec)
            offset += end
        self._cache = (records, offset, (st.st_dev, st.st_ino))
        return list(records)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise actions across threads and processes (the journal and the files)."""
        with _thread_lock:
            try:
                self.quarantine.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.quarantine / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise ConflictError(
                    f"Cannot write the review journal in '{self.quarantine}' "
                    f"({e.strerror or e}): nothing was changed."
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    def next_id(self) -> str:
        self._n += 1
        return f"{self.session}-{self._n}"

    def append(self, record: dict[str, Any]) -> None:
        """Write one record durably (the session's ``begin`` record first)."""
        with _Journal(self.path) as journal:
            if not self._began:
                journal.append(
                    {
                        "op": "begin",
                        "session": self.session,
                        "data": str(self.root),
                        "level": "review",
                        "version": JOURNAL_VERSION,
                        "time": now(),
                    }
                )
                self._began = True
            journal.append(record)


def active_actions(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Review and doctor actions not undone (nor restored), oldest first."""
    done = {r.get("id") for r in records if r.get("op") == "restored"}
    return [r for r in records if r.get("op") in ACTIONS and r.get("id") not in done]


def keep_marks(root: str | os.PathLike[str]) -> dict[tuple[str, str], str]:
    """``{(file, check): sha256}`` of the files a person reviewed as fine for a check.

    A relabel is a person's decision too: the relabelled file is marked for ``label_issues``.
    Read by the doctor, which stops reporting a finding whose files all carry a mark for its
    check and still have that content.
    """
    q = quarantine_dir(root)
    if not (q / JOURNAL).is_file():
        return {}
    marks: dict[tuple[str, str], str] = {}
    for rec in active_actions(read_journal(q)):
        if rec["op"] == "keep":
            for f in rec.get("files", []):
                marks[(f["file"], rec.get("check", "*"))] = f.get("sha256", "")
        elif rec["op"] == "relabel":
            marks[(rec["to"], "label_issues")] = rec.get("sha256", "")
        elif rec["op"] == "relabel_csv":
            marks[(rec["file"], "label_issues")] = rec.get("sha256", "")
    return marks


def drop_reviewed(findings: list, root: str | os.PathLike[str]) -> tuple[list, int]:
    """``findings`` without those a person reviewed as fine, and how many were dropped.

    A finding is dropped when every one of its files carries a keep mark for its check (or for
    every check) and still has the content it had when it was kept.
    """
    marks = keep_marks(root)
    if not marks:
        return findings, 0
    root = Path(os.path.abspath(root))
    hashes: dict[str, str] = {}

    def current(rel: str) -> str:
        if rel not in hashes:
            try:
                hashes[rel] = file_sha256(inside(root, rel))
            except (OSError, UserError):
                hashes[rel] = ""
        return hashes[rel]

    def kept(finding) -> bool:
        if not finding.files:
            return False
        for rel in finding.files:
            mark = marks.get((rel, finding.check), marks.get((rel, "*")))
            if mark is None or (mark and mark != current(rel)):
                return False
        return True

    out = [f for f in findings if not kept(f)]
    return out, len(findings) - len(out)


def undo_review_record(rec: dict[str, Any], data: Path, q: Path) -> UndoOutcome:
    """Undo one review action; called by :func:`littlevision.doctor.restore` and ``undo``."""
    op = rec.get("op")
    if op == "keep":
        files = ", ".join(f["file"] for f in rec.get("files", []))
        return UndoOutcome("restored", files or "(keep)")
    if op == "relabel":
        out = move_back(inside(data, rec["to"]), inside(data, rec["from"]), rec, rec["from"])
        if out.status != "conflict":
            _remove_made_dirs(data, rec.get("made_dirs", []))
        return out
    if op == "move_external":
        return move_back(inside(q, rec["to"]), Path(rec["source"]), rec, rec["source"])
    if op == "relabel_csv":
        return _undo_csv_edits(rec)
    if op == "label":
        out = move_back(inside(data, rec["to"]), Path(rec["source"]), rec, rec["source"])
        if out.status == "conflict":
            return out
        if rec.get("csv"):
            _undo_append(Path(rec["csv"]), rec["appended"])
        _remove_made_dirs(data, rec.get("made_dirs", []))
        return out
    return UndoOutcome("conflict", str(rec.get("id")), f"unknown journal operation {op!r}")


def _remove_made_dirs(data: Path, made: list[str]) -> None:
    """Remove the class folders an action created, when they are empty again (never files)."""
    for rel in reversed(made):
        try:
            os.rmdir(inside(data, rel))
        except OSError:
            pass


def _undo_csv_edits(rec: dict[str, Any]) -> UndoOutcome:
    from littlevision.review.csvlabels import read_table, revert_line, write_atomic

    path = Path(rec["csv"])
    table = read_table(path)
    edits = rec.get("edits", [])
    if all(e["old"] in table.lines and e["new"] not in table.lines for e in edits):
        return UndoOutcome("already", rec["file"])
    for e in edits:
        if not revert_line(table, e["line"], e["old"], e["new"]):
            return UndoOutcome(
                "conflict",
                rec["file"],
                f"its row of {path.name} was edited since the relabel; left as it is",
            )
    write_atomic(path, table.to_bytes())
    return UndoOutcome("restored", rec["file"])


def _undo_append(path: Path, appended: str) -> None:
    """Remove the row a ``label`` action appended to a CSV (exactly those characters)."""
    from littlevision.review.csvlabels import read_table, write_atomic

    table = read_table(path)
    text = "".join(table.lines)
    if text.endswith(appended):
        text = text[: len(text) - len(appended)]
    elif appended.strip() and appended.lstrip("\r\n") in text:
        text = text.replace(appended.lstrip("\r\n"), "", 1)
    else:
        return
    table.lines = text.splitlines(keepends=True)
    write_atomic(path, table.to_bytes())


def fingerprint(path: Path) -> tuple[int, int] | None:
    """``(size, mtime_ns)`` of a file, or ``None`` when it is not there: what tells a queue that
    a file changed since it was built, without reading it."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


def sha256(path: Path) -> str:
    return file_sha256(path)


def dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False)
