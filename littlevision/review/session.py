"""A review session: the queues of one data folder and the actions on them, with the state of
every item read back from the journal (so a second tab or a restart sees the same state).

:class:`ReviewSession` is what the page talks to; everything it does goes through
:mod:`littlevision.review.actions`, so Python users can do the same without a browser.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from littlevision.errors import UserError
from littlevision.progress import NULL, Reporter
from littlevision.review import actions
from littlevision.review.journal import Journal, active_actions
from littlevision.review.queues import QUEUES, FileRef, QueueItem
from littlevision.review.target import DataTarget, open_target

ACTIONS: tuple[str, ...] = ("keep", "relabel", "quarantine")


@dataclass(frozen=True)
class ReviewConfig:
    """What to review.

    Attributes:
        data: The data folder (class folders, train/validation, or a CSV set).
        labels: A labels CSV when ``data`` is its images folder.
        run: A run folder: adds the top-losses queue and its model guesses unlabelled images.
        unlabelled: Folders of unlabelled images (an inbox, or what ``serve --collect`` kept).
        allow_new_classes: A relabel may create a class that does not exist yet.
        quick: Run the doctor without embeddings (no label or outlier findings).
        max_losses: Length of the top-losses queue.
    """

    data: Path
    labels: Path | None = None
    run: Path | None = None
    unlabelled: tuple[Path, ...] = ()
    allow_new_classes: bool = False
    quick: bool = False
    max_losses: int = 200


@dataclass
class ReviewSession:
    """The queues of one review, and the journal its actions go to.

    Attributes:
        target: The data folder.
        queues: Items by queue name (``findings``, ``losses``, ``next``, ``all``).
        allow_new_classes: Whether a relabel may add a class.
        run: The run folder, when one was given (Grad-CAM on demand).
        unlabelled: The folders of unlabelled images.
        journal: Where actions are written.
    """

    target: DataTarget
    queues: dict[str, list[QueueItem]]
    allow_new_classes: bool = False
    run: Path | None = None
    unlabelled: tuple[Path, ...] = ()
    journal: Journal = None  # type: ignore[assignment]
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.journal is None:
            self.journal = Journal(self.target.root)
        self._items = {it.key: it for items in self.queues.values() for it in items}
        self._showing: dict[tuple[str, str], set[str]] = {}
        for it in self._items.values():
            for f in it.files:
                self._showing.setdefault((f.where, f.path), set()).add(it.key)

    # -- building ------------------------------------------------------------------------------

    @classmethod
    def build(cls, config: ReviewConfig, reporter: Reporter = NULL) -> ReviewSession:
        """Open the data, run the doctor when its report is not fresh, and build the queues.

        Raises:
            UserError: The data, run or unlabelled folder cannot be used.
        """
        from littlevision.review import queues as q

        target, dataset = open_target(config.data, config.labels)
        notes: list[str] = []
        for folder in config.unlabelled:
            if not Path(folder).is_dir():
                raise UserError(f"No such folder of unlabelled images: '{folder}'.")
            inside_data = Path(os.path.abspath(folder))
            if inside_data == target.root or target.root in inside_data.parents:
                raise UserError(
                    f"The unlabelled folder '{folder}' is inside the data folder; give a folder "
                    "beside it (an inbox)."
                )
        if config.run is not None:
            from littlevision.bundle import Bundle

            Bundle.load(config.run)  # a wrong folder fails now, clearly
        report = q.doctor_report(target, dataset, quick=config.quick, reporter=reporter)
        if report.reviewed:
            notes.append(f"{report.reviewed} finding(s) kept earlier are not shown.")
        neighbours = None
        labelled = None
        embedder = None
        if (
            not config.quick
            and any(f.check == "label_issues" for f in report.findings)
            or (config.unlabelled)
        ):
            from littlevision.features import Embedder

            embedder = Embedder()
            labelled = q.labelled_embeddings(dataset, embedder, reporter)
            feats, _, emb_rows = labelled
            rels = [target.rel(dataset.paths[i]) for i in emb_rows]
            labels = [dataset.labels[i] for i in emb_rows]
            neighbours = q.Neighbours(target, rels, labels, feats)
        queues = {"findings": q.findings_queue(report, target, dataset, neighbours)}
        if config.run is not None:
            queues["losses"] = q.losses_queue(
                config.run, target, dataset, limit=config.max_losses, reporter=reporter
            )
        if config.unlabelled:
            files = [f for folder in config.unlabelled for f in q.unlabelled_files(folder)]
            queues["next"] = q.next_queue(
                files,
                target,
                dataset,
                run=config.run,
                embedder=embedder,
                labelled=labelled,
                reporter=reporter,
            )
        queues["all"] = q.all_queue(target, dataset)
        return cls(
            target=target,
            queues=queues,
            allow_new_classes=config.allow_new_classes,
            run=config.run,
            unlabelled=tuple(config.unlabelled),
            notes=notes,
        )

    # -- state ---------------------------------------------------------------------------------

    def item(self, key: str) -> QueueItem:
        try:
            return self._items[key]
        except KeyError:
            raise UserError(f"No item '{key}' in this review (reload the page).") from None

    def _active(self) -> list[dict[str, Any]]:
        return active_actions(self.journal.records())

    def classes(self, active: list[dict[str, Any]] | None = None) -> list[str]:
        """The data's classes, and any a relabel added in this review."""
        out = list(self.target.classes)
        for rec in active if active is not None else self._active():
            new = rec.get("new")
            if rec["op"] in ("relabel", "relabel_csv", "label") and new and new not in out:
                out.append(new)
        return out

    def _status(self, active: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """The latest action not undone, per item key."""
        status: dict[str, dict[str, Any]] = {}
        for rec in active:
            key = rec.get("item")
            if key:
                status[key] = {
                    "id": rec["id"],
                    "op": rec["op"],
                    "label": rec.get("new"),
                    "time": rec.get("time"),
                }
        return status

    def _locations(self, active: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[str, str]]:
        """Where moved files are now: ``(where, path) -> (where, path)``, ``where`` being
        ``data``, ``inbox`` or ``quarantine``."""
        moved: dict[tuple[str, str], tuple[str, str]] = {}
        for rec in active:
            op = rec["op"]
            if op == "relabel":
                moved[("data", rec["from"])] = ("data", rec["to"])
            elif op == "move":
                moved[("data", rec["from"])] = ("quarantine", rec["to"])
            elif op == "label":
                moved[("inbox", rec["source"])] = ("data", rec["to"])
            elif op == "move_external":
                moved[("inbox", rec["source"])] = ("quarantine", rec["to"])
        return moved

    @staticmethod
    def _now(ref: FileRef, moved) -> tuple[str, str]:
        where, path = ref.where, ref.path
        for _ in range(16):  # follow chains (relabelled, then quarantined)
            nxt = moved.get((where, path))
            if nxt is None:
                break
            where, path = nxt
        return where, path

    def _ref_state(self, ref: FileRef, moved) -> dict[str, Any]:
        where, path = self._now(ref, moved)
        return {
            "where": ref.where,
            "path": ref.path,
            "label": ref.label,
            "role": ref.role,
            "now_where": where,
            "now": path,
        }

    def item_state(self, item: QueueItem, status, moved) -> dict[str, Any]:
        """One item as the page sees it: where its files are now, and its answer."""
        return {
            "key": item.key,
            "queue": item.queue,
            "title": item.title,
            "files": [self._ref_state(f, moved) for f in item.files],
            "context": [self._ref_state(f, moved) for f in item.context],
            "check": item.check,
            "severity": item.severity,
            "suggested": item.suggested,
            "score": item.score,
            "target": item.target,
            "done": status.get(item.key),
        }

    def progress(self, status) -> dict[str, dict[str, int]]:
        return {
            name: {"total": len(items), "reviewed": sum(1 for it in items if it.key in status)}
            for name, items in self.queues.items()
        }

    def state(self) -> dict[str, Any]:
        """Everything the page shows: classes, queues with each item's state, progress."""
        active = self._active()
        status, moved = self._status(active), self._locations(active)
        return {
            "data": str(self.target.root),
            "kind": self.target.kind,
            "classes": self.classes(active),
            "allow_new_classes": self.allow_new_classes,
            "gradcam": self.run is not None,
            "notes": self.notes,
            "queues": [
                {
                    "name": name,
                    "title": QUEUES[name],
                    "items": [self.item_state(it, status, moved) for it in items],
                }
                for name, items in self.queues.items()
            ],
            "progress": self.progress(status),
        }

    def _answer(self, result: actions.ActionResult, keys: set[str]) -> dict[str, Any]:
        active = self._active()
        status, moved = self._status(active), self._locations(active)
        return {
            "message": result.message,
            "action": {"id": result.id, "op": result.op, "item": result.item},
            "items": [self.item_state(self._items[k], status, moved) for k in keys],
            "classes": self.classes(active),
            "progress": self.progress(status),
        }

    def _related(self, item: QueueItem) -> set[str]:
        """Keys of every item showing one of ``item``'s files (they change together)."""
        paths = {(f.where, f.path) for f in item.files}
        return {
            it.key
            for it in self._items.values()
            if any((f.where, f.path) in paths for f in it.files)
        }

    # -- actions -------------------------------------------------------------------------------

    def act(
        self, key: str, action: str, value: str | None = None, member: int | None = None
    ) -> dict[str, Any]:
        """Answer one item: ``keep``, ``relabel`` (to class ``value``) or ``quarantine``.

        ``member`` picks the file of a group (default: the item's ``target``). The item must not
        be answered already (undo first), and its file must be where and as it was listed.

        Raises:
            UserError: Unknown item or action, answered already, unknown class...
            StaleError / ConflictError: see :mod:`littlevision.review.actions`.
        """
        item = self.item(key)
        if action not in ACTIONS:
            raise UserError(f"Unknown action '{action}': expected one of {', '.join(ACTIONS)}.")
        active = self._active()
        done = self._status(active).get(key)
        if done is not None:
            raise actions.ConflictError(
                f"This item was answered already ({done['op']}); undo it first to change it."
            )
        index = item.target if member is None else member
        if not 0 <= index < len(item.files):
            raise UserError(f"No image {index} in this item (it has {len(item.files)}).")
        ref = item.files[index]
        where, path = self._now(ref, self._locations(active))
        if (where, path) != (ref.where, ref.path):
            raise actions.StaleError(
                f"{Path(ref.path).name} was moved by another answer since it was listed "
                f"(now {where}: {path}); skipped."
            )
        expect = tuple(ref.fp) if ref.fp else None
        t, j = self.target, self.journal
        if action == "keep":
            files = [f.path for f in item.files if f.where == "data"]
            if not files:
                raise UserError("Keep is for labelled images; label this one or quarantine it.")
            fps = {f.path: tuple(f.fp) for f in item.files if f.where == "data" and f.fp}
            result = actions.keep(t, files, item.check or "*", journal=j, item=key, expect=fps)
        elif action == "relabel":
            if not value:
                raise UserError("Relabel needs a class.")
            act = actions.label if ref.where == "inbox" else actions.relabel
            result = act(
                t,
                ref.path,
                value,
                allow_new_classes=self.allow_new_classes,
                journal=j,
                item=key,
                expect=expect,
            )
        else:
            if ref.where == "inbox":
                result = actions.quarantine_external(
                    t, ref.path, journal=j, item=key, expect=expect
                )
            else:
                result = actions.quarantine(
                    t,
                    ref.path,
                    why=item.title,
                    check=item.check or "review",
                    journal=j,
                    item=key,
                    expect=expect,
                )
        return self._answer(result, self._related(item) | {key})

    def undo(self, key: str | None = None) -> dict[str, Any]:
        """Undo the answer to item ``key``, or the latest answer of this data folder.

        Raises:
            UserError: Nothing to undo.
            ConflictError: It cannot be undone without overwriting something.
        """
        if key is not None:
            self.item(key)
        result = actions.undo(self.target, journal=self.journal, item=key, review_only=True)
        keys = {result.item} if result.item in self._items else set()
        for k in list(keys):
            keys |= self._related(self._items[k])
        return self._answer(result, keys)
