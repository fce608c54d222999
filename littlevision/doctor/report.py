"""What the doctor found: :class:`Finding` and :class:`Report`, plain data that round-trips JSON.

A report is what every front end shares: the terminal summary, the HTML page, the JSON file and
``--fix`` all read the same :class:`Report`, so what the user sees is exactly what gets fixed.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SEVERITIES: tuple[str, ...] = ("error", "warning", "info")
"""From worst to mildest: errors break or bias training, warnings deserve a look, info is FYI."""

_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def severity_at_least(severity: str, threshold: str) -> bool:
    """Whether ``severity`` is as bad as ``threshold`` or worse (``error`` >= ``warning``)."""
    return _RANK[severity] <= _RANK[threshold]


@dataclass
class Finding:
    """One problem: a file, a group of files (duplicates, leaks) or the dataset as a whole.

    Attributes:
        check: The registered check that found it (``"exact_duplicates"``...).
        severity: ``"error"``, ``"warning"`` or ``"info"``.
        files: The files involved, relative to the data folder (POSIX style); empty for
            dataset-level findings such as class imbalance.
        message: One plain sentence saying what is wrong.
        quarantine: The files ``--fix`` would move for this finding (a subset of ``files``:
            for a duplicate group every copy but one).
        details: Check-specific facts (similarity, predicted label and confidence, counts...).
    """

    check: str
    severity: str
    files: list[str]
    message: str
    quarantine: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in _RANK:
            raise ValueError(f"Expected severity in {SEVERITIES}. Received: {self.severity!r}")


@dataclass
class Report:
    """Everything one :func:`~littlevision.doctor.examine` run found.

    Attributes:
        root: The data folder, absolute; ``files`` of every finding are relative to it.
        n_images: How many images were examined.
        classes: The dataset's class names.
        counts: Images per class.
        findings: What was found, worst first.
        checks: The checks that ran, by name.
        timings: Seconds per stage (``scan``, ``embed``, ``checks``, ``total``).
        reviewed: Findings left out because a person kept them in ``littlevision review``.
    """

    root: str
    n_images: int
    classes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    reviewed: int = 0

    # -- queries --------------------------------------------------------------------------------

    def by_check(self, check: str) -> list[Finding]:
        """The findings of one check."""
        return [f for f in self.findings if f.check == check]

    def at_least(self, severity: str) -> list[Finding]:
        """Findings of ``severity`` or worse."""
        if severity not in _RANK:
            raise ValueError(f"Expected severity in {SEVERITIES}. Received: {severity!r}")
        return [f for f in self.findings if severity_at_least(f.severity, severity)]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def flagged_files(self, check: str | None = None) -> set[str]:
        """Every file named by a finding (of one check, when given)."""
        return {p for f in self.findings if check is None or f.check == check for p in f.files}

    def summary(self) -> dict[str, Any]:
        """Counts by severity and by check, for the JSON file and quick assertions."""
        by_severity = Counter(f.severity for f in self.findings)
        by_check: dict[str, dict[str, Any]] = {}
        for f in self.findings:
            entry = by_check.setdefault(
                f.check, {"severity": f.severity, "findings": 0, "files": 0}
            )
            entry["findings"] += 1
            entry["files"] += len(f.files)
        return {
            "n_images": self.n_images,
            "n_findings": len(self.findings),
            "by_severity": {s: by_severity.get(s, 0) for s in SEVERITIES},
            "by_check": by_check,
            "classes": self.classes,
            "counts": self.counts,
            "checks_run": self.checks,
            "timings": self.timings,
            "reviewed": self.reviewed,
        }

    # -- serialisation --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """``{"root", "findings": [...], "summary": {...}}``, ready for ``json.dump``."""
        return {
            "root": self.root,
            "findings": [asdict(f) for f in self.findings],
            "summary": self.summary(),
        }

    def to_json(self, path: str | os.PathLike[str] | None = None, indent: int | None = 2) -> str:
        """The report as JSON text; also written (atomically) to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, default=_jsonable)
        if path is not None:
            from littlevision._io import write_json

            write_json(Path(path), json.loads(text))
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """Rebuild a report from :meth:`to_dict`'s output (e.g. a saved JSON file)."""
        summary = data.get("summary", {})
        return cls(
            root=data["root"],
            n_images=int(summary.get("n_images", 0)),
            classes=list(summary.get("classes", [])),
            counts=dict(summary.get("counts", {})),
            findings=[Finding(**f) for f in data.get("findings", [])],
            checks=list(summary.get("checks_run", [])),
            timings=dict(summary.get("timings", {})),
            reviewed=int(summary.get("reviewed", 0)),
        )

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> Report:
        """Read a report written by :meth:`to_json`."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    # -- notebooks ------------------------------------------------------------------------------

    def to_html(self, path: str | os.PathLike[str] | None = None, **options: Any) -> str:
        """The self-contained HTML report (see :func:`littlevision.doctor.html.render_html`)."""
        from littlevision.doctor.html import render_html, write_html

        if path is not None:
            return write_html(self, path, **options)
        return render_html(self, **options)

    def _repr_html_(self) -> str:
        """Jupyter shows the summary table (thumbnails only in :meth:`to_html`, they are slow)."""
        from littlevision.doctor.html import summary_html

        return summary_html(self)

    def __repr__(self) -> str:
        s = self.summary()["by_severity"]
        return (
            f"Report({self.n_images} images: {s['error']} errors, {s['warning']} warnings, "
            f"{s['info']} info from {len(self.checks)} checks on '{self.root}')"
        )


def _jsonable(value: Any) -> Any:
    """numpy scalars and paths in ``details`` become plain JSON values."""
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
