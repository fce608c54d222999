"""What every CLI verb shares: the consoles, rich progress bars, and user mistakes as one line.

The main CLI (``littlevision.cli``) and the feature CLIs (``doctor/cli.py``, ``explain/cli.py``,
...) import these from here, so no feature CLI reaches back into the main one.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from littlevision.errors import UserError
from littlevision.progress import NULL, Reporter, Stage

console = Console(stderr=True)
out = Console()


class _RichStage(Stage):
    def __init__(self, progress: Progress, description: str, total: int | None):
        self.progress = progress
        self.task = progress.add_task(description, total=total)

    def advance(self, n: int = 1) -> None:
        self.progress.advance(self.task, n)

    def __exit__(self, *exc) -> None:
        task = self.progress.tasks[self.task] if self.task < len(self.progress.tasks) else None
        if task is not None and task.total is None:
            self.progress.update(self.task, total=1, completed=1)


class RichReporter(Reporter):
    """Progress bars on stderr, one line per step, with ETA."""

    def __init__(self) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def stage(self, description: str, total: int | None = None) -> Stage:
        return _RichStage(self.progress, description, total)

    def log(self, message: str) -> None:
        self.progress.console.print(message)


def reporter(quiet: bool):
    """A context manager giving the progress reporter: rich bars, or nothing with ``--quiet``."""
    if quiet:
        return contextlib.nullcontext(NULL)
    return RichReporter()


def friendly(fn):
    """Turn user mistakes into one sentence and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            console.print(f"[bold red]error:[/] {e}", highlight=False)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None

    return wrapper


Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars, only the result.")]

JsonFlag = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print the result as one JSON object on stdout (progress and warnings: stderr).",
    ),
]


def _jsonable(value):
    """What ``json`` cannot write by itself: paths, dataclasses, numpy scalars and arrays."""
    import dataclasses
    import os

    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def print_json(result) -> None:
    """``--json``: the verb's result as one JSON object on stdout, nothing else there."""
    import json
    import sys

    sys.stdout.write(json.dumps(result, default=_jsonable) + "\n")
    sys.stdout.flush()
