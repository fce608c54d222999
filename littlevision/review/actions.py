"""What a person does to one image -- keep, relabel, quarantine, label, undo -- as plain
functions over a :class:`~littlevision.review.target.DataTarget` and its journal.

Each action checks everything it can first (the file is still there and unchanged, the class
exists, the folders are writable), then writes its journal record (fsync'ed), then changes the
disk with an atomic rename or an atomic CSV rewrite. A killed process therefore leaves every
file either where it was or where the journal says it went, and ``doctor --restore`` (or
:func:`undo`) puts it back byte for byte. Nothing is ever deleted or overwritten.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from littlevision._io import fsync_folder
from littlevision.doctor.quarantine import _free_name, _move, undo_record
from littlevision.errors import UserError
from littlevision.review.journal import (
    ConflictError,
    Journal,
    StaleError,
    active_actions,
    fingerprint,
    now,
    sha256,
)
from littlevision.review.target import DataTarget, check_class_name, inside


@dataclass
class ActionResult:
    """One journalled action.

    Attributes:
        id: Its journal id (give it to :func:`undo`).
        op: The journal operation (``keep``, ``relabel``, ``relabel_csv``, ``move``, ``label``,
            ``move_external``, or ``undo`` for an undo).
        file: The file acted on (relative to the data folder, or absolute outside it).
        now: Where the file is now (relative to the data folder, or absolute), or ``None``.
        message: One sentence for the person.
        item: The queue item the action answered, when given.
        record: The journal record.
    """

    id: str
    op: str
    file: str
    now: str | None
    message: str
    item: str | None = None
    record: dict[str, Any] = field(default_factory=dict)


def _check_file(path: Path, name: str, expect: tuple[int, int] | None) -> None:
    fp = fingerprint(path)
    if fp is None or not path.is_file() or path.is_symlink():
        raise StaleError(f"{name} is not there any more (moved or deleted since it was listed).")
    if expect is not None and tuple(expect) != fp:
        raise StaleError(
            f"{name} changed since it was listed; skipped (reload to see it as it is)."
        )


def _writable(folder: Path, what: str) -> None:
    probe = folder
    while not probe.exists():  # a folder to be created: its first existing parent must be writable
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConflictError(f"Cannot change {what}: '{probe}' is read-only. Nothing was changed.")


def _class_allowed(target: DataTarget, journal: Journal, name: str, allow_new: bool) -> str:
    name = check_class_name(name)
    if name in target.classes or name in _classes_added(journal):
        return name
    if not allow_new:
        raise UserError(
            f"There is no class '{name}': the classes are {', '.join(target.classes)} "
            "(start the review with --allow-new-classes to add one)."
        )
    return name


def _classes_added(journal: Journal) -> set[str]:
    return {
        r.get("new")
        for r in active_actions(journal.records())
        if r["op"] in ("relabel", "relabel_csv", "label")
    }


def keep(
    target: DataTarget,
    files: list[str],
    check: str = "*",
    *,
    journal: Journal | None = None,
    item: str | None = None,
    expect: dict[str, tuple[int, int]] | None = None,
) -> ActionResult:
    """Mark files as reviewed and fine for ``check`` (the doctor then stops reporting it).

    Raises:
        StaleError: A file is gone or changed since it was listed.
    """
    journal = journal or Journal(target.root)
    if not files:
        raise UserError("Nothing to keep: expected at least one file.")
    with journal.locked():
        marks = []
        for rel in files:
            path = target.path(rel)
            _check_file(path, rel, (expect or {}).get(rel))
            marks.append({"file": rel, "sha256": sha256(path)})
        rec = {
            "op": "keep",
            "id": journal.next_id(),
            "files": marks,
            "check": check,
            "item": item,
            "time": now(),
        }
        journal.append(rec)
    return ActionResult(
        rec["id"], "keep", files[0], files[0], f"kept {', '.join(files)}", item, rec
    )


def relabel(
    target: DataTarget,
    file: str,
    new_class: str,
    *,
    allow_new_classes: bool = False,
    journal: Journal | None = None,
    item: str | None = None,
    expect: tuple[int, int] | None = None,
) -> ActionResult:
    """Give ``file`` (relative to the data folder) the class ``new_class``.

    Class folders: the file moves to ``new_class``'s folder (same subset for train/validation);
    a CSV: its row's label cell is rewritten, atomically, keeping every other byte.

    Raises:
        UserError: The class does not exist (and ``allow_new_classes`` is off), or it is the
            file's class already.
        StaleError: The file is gone or changed since it was listed.
        ConflictError: The folder or CSV is read-only (nothing was changed).
    """
    journal = journal or Journal(target.root)
    with journal.locked():
        new_class = _class_allowed(target, journal, new_class, allow_new_classes)
        src = target.path(file)
        _check_file(src, file, expect)
        if target.kind == "csv":
            return _relabel_csv(target, file, src, new_class, journal, item)
        parts = PurePosixPath(file).parts
        ci = target.class_part(parts)
        if ci is None:
            raise UserError(f"{file} is not inside a class folder, so it has no class to change.")
        old = parts[ci]
        if old == new_class:
            raise UserError(f"{file} is already in class '{new_class}'.")
        dst_dir = target.root.joinpath(*parts[:ci], new_class, *parts[ci + 1 : -1])
        _writable(src.parent, f"{file}'s folder")
        _writable(dst_dir, f"class folder '{new_class}'")
        made = _missing_dirs(target.root, dst_dir)
        dst = _free_name(dst_dir / src.name)
        rec = {
            "op": "relabel",
            "id": journal.next_id(),
            "from": file,
            "to": target.rel(dst),
            "old": old,
            "new": new_class,
            "sha256": sha256(src),
            "size": src.stat().st_size,
            "made_dirs": made,
            "item": item,
            "time": now(),
        }
        _journaled_move(journal, rec, src, dst, file)
    return ActionResult(
        rec["id"], "relabel", file, rec["to"], f"{file}: {old} -> {new_class}", item, rec
    )


def _missing_dirs(root: Path, folder: Path) -> list[str]:
    made = []
    while not folder.exists() and folder != root:
        made.append(folder.relative_to(root).as_posix())
        folder = folder.parent
    return list(reversed(made))


def _failed(journal: Journal, rec: dict[str, Any], error: OSError) -> None:
    """Mark a journalled action that could not be done, so restore and undo skip it."""
    try:
        journal.append(
            {"op": "restored", "id": rec["id"], "time": now(), "note": f"not done: {error}"}
        )
    except OSError:
        pass  # restore finds the file still in place and records it as such


def _relabel_csv(
    target: DataTarget, file: str, src: Path, new_class: str, journal: Journal, item
) -> ActionResult:
    from littlevision.review.csvlabels import (
        check_writable,
        current_label,
        read_table,
        rows_for_file,
        set_label,
        write_atomic,
    )

    assert target.csv is not None
    table = read_table(target.csv)
    lines = rows_for_file(table, target.images, src)
    if not lines:
        raise StaleError(f"{file} has no row in {target.csv.name} any more.")
    old = current_label(table, lines[0])
    if all(current_label(table, i) == new_class for i in lines):
        raise UserError(f"{file} is already labelled '{new_class}'.")
    try:
        check_writable(target.csv)
    except UserError as e:
        raise ConflictError(str(e)) from None
    before = table.sha256
    edits = [set_label(table, i, new_class) for i in lines]
    data = table.to_bytes()
    from littlevision.review.csvlabels import _sha

    rec = {
        "op": "relabel_csv",
        "id": journal.next_id(),
        "csv": str(target.csv),
        "file": file,
        "old": old,
        "new": new_class,
        "edits": [{"line": e.line, "old": e.old, "new": e.new} for e in edits],
        "before": before,
        "after": _sha(data),
        "sha256": sha256(src),
        "item": item,
        "time": now(),
    }
    journal.append(rec)
    try:
        write_atomic(target.csv, data)
    except OSError as e:
        _failed(journal, rec, e)
        raise ConflictError(
            f"Could not rewrite {target.csv.name}: {e.strerror or e}. Nothing was changed."
        ) from None
    return ActionResult(
        rec["id"], "relabel_csv", file, file, f"{file}: {old} -> {new_class}", item, rec
    )


def _journaled_move(journal: Journal, rec: dict, src: Path, dst: Path, shown: str) -> None:
    """Journal ``rec``, then move ``src`` to ``dst`` durably; a failed move is journalled too.

    Raises:
        ConflictError: the move failed (``shown`` names the file); nothing was changed.
    """
    journal.append(rec)  # on disk before the file moves
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        _move(src, dst)
    except OSError as e:
        _failed(journal, rec, e)
        raise ConflictError(
            f"Could not move {shown}: {e.strerror or e}. Nothing was changed."
        ) from None
    fsync_folder(dst.parent)
    fsync_folder(src.parent)


def quarantine(
    target: DataTarget,
    file: str,
    *,
    why: str = "quarantined in review",
    check: str = "review",
    journal: Journal | None = None,
    item: str | None = None,
    expect: tuple[int, int] | None = None,
) -> ActionResult:
    """Move ``file`` (relative to the data folder) into the doctor's quarantine.

    Raises:
        StaleError: The file is gone or changed since it was listed.
        ConflictError: A folder is read-only (nothing was changed).
    """
    journal = journal or Journal(target.root)
    with journal.locked():
        src = target.path(file)
        _check_file(src, file, expect)
        q = journal.quarantine
        dst = _free_name(inside(q, file))
        _writable(src.parent, f"{file}'s folder")
        rec = {
            "op": "move",
            "id": journal.next_id(),
            "from": file,
            "to": dst.relative_to(q).as_posix(),
            "check": check,
            "why": why,
            "sha256": sha256(src),
            "size": src.stat().st_size,
            "item": item,
            "time": now(),
        }
        _journaled_move(journal, rec, src, dst, file)
    return ActionResult(
        rec["id"], "move", file, None, f"{file} quarantined ({q.name}/{rec['to']})", item, rec
    )


def label(
    target: DataTarget,
    source: str | os.PathLike[str],
    new_class: str,
    *,
    subset: str = "train",
    allow_new_classes: bool = False,
    journal: Journal | None = None,
    item: str | None = None,
    expect: tuple[int, int] | None = None,
) -> ActionResult:
    """Add an unlabelled image (outside the data folder) to the data with class ``new_class``.

    Class folders: the file moves into ``new_class``'s folder (``train/`` of a train/validation
    layout); a CSV: into the images folder, and a row ``id,label`` is appended to the CSV.

    Raises:
        UserError: Unknown class (without ``allow_new_classes``).
        StaleError: The file is gone or changed since it was listed.
        ConflictError: A folder or the CSV is read-only (nothing was changed).
    """
    journal = journal or Journal(target.root)
    source = Path(os.path.abspath(source))
    name = str(source)
    with journal.locked():
        new_class = _class_allowed(target, journal, new_class, allow_new_classes)
        _check_file(source, source.name, expect)
        if target.kind == "csv":
            dst_dir = target.images
        elif target.tutorial:
            sub = subset if (target.root / subset).is_dir() else "train"
            dst_dir = target.root / sub / new_class
        else:
            dst_dir = target.root / new_class
        _writable(source.parent, f"the folder of {source.name}")
        _writable(dst_dir, f"the folder '{dst_dir}'")
        made = _missing_dirs(target.root, dst_dir)
        dst = _free_name(dst_dir / source.name)
        rec: dict[str, Any] = {
            "op": "label",
            "id": journal.next_id(),
            "source": name,
            "to": target.rel(dst),
            "new": new_class,
            "sha256": sha256(source),
            "size": source.stat().st_size,
            "made_dirs": made,
            "item": item,
            "time": now(),
        }
        table = None
        if target.kind == "csv":
            from littlevision.review.csvlabels import append_row, check_writable, read_table

            assert target.csv is not None
            try:
                check_writable(target.csv)
            except UserError as e:
                raise ConflictError(str(e)) from None
            table = read_table(target.csv)
            file_id = dst.relative_to(target.images).as_posix()
            rec["csv"] = str(target.csv)
            rec["appended"] = append_row(table, file_id, new_class)
        _journaled_move(journal, rec, source, dst, source.name)
        if table is not None:
            from littlevision.review.csvlabels import write_atomic

            try:
                write_atomic(target.csv, table.to_bytes())
            except OSError as e:  # put the image back: the action did not happen
                _move(dst, source)
                _failed(journal, rec, e)
                raise ConflictError(
                    f"Could not add a row to {target.csv.name}: {e.strerror or e}. Nothing was changed."
                ) from None
    return ActionResult(
        rec["id"], "label", name, rec["to"], f"{source.name} -> {new_class}", item, rec
    )


def quarantine_external(
    target: DataTarget,
    source: str | os.PathLike[str],
    *,
    journal: Journal | None = None,
    item: str | None = None,
    expect: tuple[int, int] | None = None,
) -> ActionResult:
    """Move an unlabelled image into ``DATA.quarantine/unlabelled/`` (journalled, undoable)."""
    journal = journal or Journal(target.root)
    source = Path(os.path.abspath(source))
    with journal.locked():
        _check_file(source, source.name, expect)
        _writable(source.parent, f"the folder of {source.name}")
        q = journal.quarantine
        dst = _free_name(q / "unlabelled" / source.name)
        rec = {
            "op": "move_external",
            "id": journal.next_id(),
            "source": str(source),
            "to": dst.relative_to(q).as_posix(),
            "sha256": sha256(source),
            "size": source.stat().st_size,
            "item": item,
            "time": now(),
        }
        _journaled_move(journal, rec, source, dst, source.name)
    return ActionResult(
        rec["id"], "move_external", str(source), None, f"{source.name} quarantined", item, rec
    )


def undo(
    target: DataTarget,
    action_id: str | None = None,
    *,
    journal: Journal | None = None,
    item: str | None = None,
    review_only: bool = False,
) -> ActionResult:
    """Undo one action: ``action_id``, else the latest one not undone (of any session;
    ``review_only``: of review sessions, not the doctor's ``--fix``).

    Raises:
        UserError: There is nothing to undo, or ``action_id`` is unknown or undone already.
        ConflictError: It cannot be undone without overwriting something (left as it is).
    """
    journal = journal or Journal(target.root)
    with journal.locked():
        active = active_actions(journal.records())
        if item is not None:
            active = [r for r in active if r.get("item") == item]
        if review_only:
            active = [r for r in active if str(r.get("id", "")).startswith("review-")]
        if action_id is not None:
            active = [r for r in active if r.get("id") == action_id]
            if not active:
                raise UserError(f"No action {action_id} to undo (undone already, or unknown).")
        if not active:
            raise UserError("Nothing to undo.")
        rec = active[-1]
        outcome = undo_record(rec, target.root, journal.quarantine)
        if outcome.status == "conflict":
            raise ConflictError(f"Cannot undo {outcome.file}: {outcome.why}.")
        journal.append({"op": "restored", "id": rec["id"], "via": "undo", "time": now()})
    where = rec.get("from") or rec.get("file") or rec.get("source") or outcome.file
    return ActionResult(
        rec["id"],
        "undo",
        outcome.file,
        where,
        f"undone: {rec['op']} of {outcome.file}",
        rec.get("item"),
        rec,
    )
