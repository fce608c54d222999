"""Progress reporting that the library emits and a front end (CLI, notebook) displays.

The library never prints: long steps call ``reporter.stage(...)`` and ``stage.advance(n)``;
the CLI passes a reporter that draws rich progress bars, tests pass none.
"""

from __future__ import annotations

from contextlib import AbstractContextManager


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
