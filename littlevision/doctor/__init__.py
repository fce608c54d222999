"""The data doctor: find, explain and safely fix what is wrong with a user's images and labels.

In a notebook::

    from littlevision.doctor import examine, fix, restore
    report = examine("photos/")          # or a Dataset; nothing on disk changes
    report                               # the summary table
    report.to_html("doctor.html")        # thumbnails per finding
    result = fix(report)                 # quarantine broken files, duplicates, leaks
    restore(result.quarantine)           # undo, byte for byte

Names are imported lazily, so ``littlevision --help`` (which registers the ``doctor`` verb)
does not pay for numpy and Pillow.
"""

from __future__ import annotations

from littlevision._lazy import lazy_exports

_EXPORTS = {
    "SEVERITIES": "littlevision.doctor.report",
    "Finding": "littlevision.doctor.report",
    "Report": "littlevision.doctor.report",
    "DoctorConfig": "littlevision.doctor.config",
    "examine": "littlevision.doctor.examination",
    "select_checks": "littlevision.doctor.examination",
    "CheckSpec": "littlevision.doctor.registry",
    "get_check": "littlevision.doctor.registry",
    "list_checks": "littlevision.doctor.registry",
    "register_check": "littlevision.doctor.registry",
    "FixResult": "littlevision.doctor.quarantine",
    "RestoreResult": "littlevision.doctor.quarantine",
    "fix": "littlevision.doctor.quarantine",
    "plan_fix": "littlevision.doctor.quarantine",
    "quarantine_dir": "littlevision.doctor.quarantine",
    "restore": "littlevision.doctor.quarantine",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
