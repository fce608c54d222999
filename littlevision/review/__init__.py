"""Review: clean data by looking -- the doctor's findings, top losses and unlabelled images,
each answered by keep, relabel or quarantine, journalled and undoable.

From Python::

    from littlevision.review import ReviewConfig, ReviewSession, open_target, relabel, undo
    target, dataset = open_target("photos/")
    relabel(target, "cats/cat.7.jpg", "dogs")      # moves the file, journalled
    undo(target)                                   # and back, byte for byte

``littlevision review DATA`` serves the same session as a local web page.
"""

from __future__ import annotations

from littlevision._lazy import lazy_exports

_EXPORTS = {
    "ActionResult": "littlevision.review.actions",
    "keep": "littlevision.review.actions",
    "label": "littlevision.review.actions",
    "quarantine": "littlevision.review.actions",
    "quarantine_external": "littlevision.review.actions",
    "relabel": "littlevision.review.actions",
    "undo": "littlevision.review.actions",
    "ConflictError": "littlevision.review.journal",
    "Journal": "littlevision.review.journal",
    "StaleError": "littlevision.review.journal",
    "keep_marks": "littlevision.review.journal",
    "DataTarget": "littlevision.review.target",
    "open_target": "littlevision.review.target",
    "QueueItem": "littlevision.review.queues",
    "ReviewConfig": "littlevision.review.session",
    "ReviewSession": "littlevision.review.session",
    "rank_label_next": "littlevision.review.ranking",
    "ThumbnailCache": "littlevision.review.thumbs",
    "create_app": "littlevision.review.app",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
