"""Progress reporting that the library emits and a front end (CLI, notebook) displays.

The library never prints: long steps call ``reporter.stage(...)`` and ``stage.advance(n)``;
the CLI passes a reporter that draws rich progress bars, tests pass none. In a Jupyter kernel
the entry points (``train``, ``compare``, ``evaluate``, ``doctor.examine``) default to a
:class:`NotebookReporter`: HTML bars updated in place, never terminal escape sequences, which
a notebook would show as garbage (``\\r``, ``\\x1b[2K``...). Pass ``reporter=NULL`` for silence.
"""

from __future__ import annotations

import sys
import threading
import time
from contextlib import AbstractContextManager
from html import escape


class Stage(AbstractContextManager):
    """One step of long work with an optional known total."""

    def advance(self, n: int = 1) -> None:  # noqa: B027 - no-op by default
        pass

    def __exit__(self, *exc) -> None:
        return None


class Reporter:
    """The do-nothing reporter; subclass to display progress and messages."""

    def stage(self, description: str, total: int | None = None) -> Stage:
        return Stage()

    def log(self, message: str) -> None:  # noqa: B027 - silent by default
        pass


NULL = Reporter()


def in_notebook() -> bool:
    """Whether this code runs in a Jupyter kernel (IPython in a terminal does not count)."""
    ipython = sys.modules.get("IPython")  # never imported here: a script must not pay for it
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def default_reporter() -> Reporter:
    """A :class:`NotebookReporter` in a Jupyter kernel, else :data:`NULL` (libraries are quiet)."""
    return NotebookReporter() if in_notebook() else NULL


class _NotebookStage(Stage):
    """One bar: a display whose content is replaced in place (``update_display_data``)."""

    min_interval_s = 0.25  # at most 4 updates a second: a kernel message per image is too many

    def __init__(self, description: str, total: int | None):
        from IPython.display import display

        self.description, self.total = description, total
        self.done, self.finished = 0, False
        self._lock = threading.Lock()  # embedding and decoding call advance from worker threads
        self._started = self._shown = time.perf_counter()
        self._handle = display(self._bundle(), raw=True, display_id=True)

    def _bundle(self) -> dict[str, str]:
        elapsed = time.perf_counter() - self._started
        total = self.total
        count = f"{self.done}/{total}" if total else (f"{self.done}" if self.done else "")
        state = f"done in {elapsed:.1f} s" if self.finished else f"{elapsed:.0f} s"
        text = " · ".join(p for p in (self.description, count, state) if p)
        if self.finished:
            value = f'value="{total or 1}" max="{total or 1}"'
        elif total:
            value = f'value="{min(self.done, total)}" max="{total}"'
        else:
            value = ""  # no value: the browser draws an indeterminate bar
        html = (
            '<div style="font:12px/1.6 monospace;display:flex;align-items:center;gap:8px">'
            f'<progress {value} style="width:240px"></progress><span>{escape(text)}</span></div>'
        )
        width = 24
        filled = (
            width if self.finished else (width * min(self.done, total) // total if total else 0)
        )
        plain = f"[{'#' * filled}{'.' * (width - filled)}] {text}"
        return {"text/plain": plain, "text/html": html}

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            now = time.perf_counter()
            if now - self._shown < self.min_interval_s and self.done != self.total:
                return
            self._shown = now
            self._handle.update(self._bundle(), raw=True)

    def __exit__(self, *exc) -> None:
        with self._lock:
            self.finished = exc[0] is None
            if not self.finished:
                self.description += " (stopped)"
            self._handle.update(self._bundle(), raw=True)
        return None


class NotebookReporter(Reporter):
    """Progress bars for Jupyter: one HTML ``<progress>`` per stage, updated in place.

    A plain-text version travels with each bar, so front ends without HTML (and ``nbconvert
    --to markdown``) show ``[#####......] embed train · 500/2000 · 4 s`` instead of nothing.
    """

    def stage(self, description: str, total: int | None = None) -> Stage:
        return _NotebookStage(description, total)

    def log(self, message: str) -> None:
        print(message, flush=True)


def format_duration(seconds: float) -> str:
    """``"42 s"`` or ``"3 min 07 s"``: a duration as a person reads it, to the second."""
    s = max(0, int(round(seconds)))
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"
