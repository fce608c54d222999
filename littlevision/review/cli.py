"""``littlevision review DATA [--run RUN] [--unlabelled DIR]``: the review page on loopback.

The main CLI adds the verb through :func:`register`; ``python -m littlevision.review.cli DATA``
does the same without Typer (the tests start real server processes that way).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from littlevision._console import reporter as progress_reporter
from littlevision.errors import UserError

DEFAULT_PORT = 8765


def collected_folder(path: Path) -> Path:
    """The unlabelled images of ``path``: the folder itself, or, for a run folder, the images
    ``serve --collect`` kept inside it (its ``collected/`` folder)."""
    if (path / "card.json").is_file():
        for name in ("collected", "collect", "unsure"):
            if (path / name).is_dir():
                return path / name
        raise UserError(
            f"'{path}' is a run folder without collected images: start the service with "
            "'littlevision serve RUN --collect' to keep the images it is unsure about."
        )
    return path


def review(
    data: str | os.PathLike[str],
    *,
    labels: str | os.PathLike[str] | None = None,
    run: str | os.PathLike[str] | None = None,
    unlabelled: list[str | os.PathLike[str]] | None = None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    allow_new_classes: bool = False,
    quick: bool = False,
    open_browser: bool = False,
    quiet: bool = False,
) -> int:
    """Build the review session, then serve its page on ``host:port`` until Ctrl-C / SIGTERM.

    Raises:
        UserError: ``host`` is not a loopback address, or the inputs cannot be used.
    """

    import uvicorn

    from littlevision._net import is_loopback
    from littlevision.review.app import create_app
    from littlevision.review.session import ReviewConfig, ReviewSession

    if not is_loopback(host):
        raise UserError(
            f"The review page changes your files, so it listens on loopback only. "
            f"Received: --host {host} (use 127.0.0.1)."
        )
    if not 0 <= port <= 65535:
        raise UserError(f"Expected a port between 0 and 65535. Received: {port}.")
    config = ReviewConfig(
        data=Path(data),
        labels=Path(labels) if labels else None,
        run=Path(run) if run else None,
        unlabelled=tuple(collected_folder(Path(u)) for u in unlabelled or ()),
        allow_new_classes=allow_new_classes,
        quick=quick,
    )
    with progress_reporter(quiet) as rep:
        session = ReviewSession.build(config, rep)
    app = create_app(session)
    url = f"http://{host}:{port}/"
    sizes = ", ".join(f"{q}: {len(items)}" for q, items in session.queues.items())
    print(f"review: {url}  ({sizes})", flush=True)
    print(
        f"every answer is journalled in {session.journal.path}; "
        f"undo all: littlevision doctor --restore {session.journal.quarantine}",
        flush=True,
    )
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    )
    server.run()
    if not server.started:
        raise UserError(f"The review page could not listen on {host}:{port} (is it taken?).")
    return 0


def register(app: typer.Typer, friendly) -> None:
    """Add the ``review`` verb to the main ``littlevision`` app."""

    @app.command("review")
    @friendly
    def review_cmd(
        data: Annotated[
            Path,
            typer.Argument(
                help="Class folders (or train/ + validation/), a CSV, or the images folder of "
                "--labels.",
                show_default=False,
            ),
        ],
        labels: Annotated[
            Path | None, typer.Option("--labels", help="CSV of file ids and labels.")
        ] = None,
        run: Annotated[
            Path | None,
            typer.Option("--run", help="A run folder: top losses, Grad-CAM, its model's guesses."),
        ] = None,
        unlabelled: Annotated[
            list[Path] | None,
            typer.Option(
                "--unlabelled",
                help="A folder of unlabelled images, or a run folder whose service kept images "
                "with 'serve --collect' (repeatable).",
            ),
        ] = None,
        host: Annotated[str, typer.Option(help="Loopback address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port.")] = DEFAULT_PORT,
        allow_new_classes: Annotated[
            bool,
            typer.Option("--allow-new-classes", help="Let a relabel create a new class."),
        ] = False,
        quick: Annotated[
            bool, typer.Option("--quick", help="Run the doctor without embeddings (faster).")
        ] = False,
        open_browser: Annotated[
            bool, typer.Option("--open", help="Open the page in the default browser.")
        ] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    ) -> None:
        """Review images by looking: the doctor's findings, top losses and unlabelled images;
        keep, relabel or quarantine each (journalled; undo with u or doctor --restore)."""
        review(
            data,
            labels=labels,
            run=run,
            unlabelled=list(unlabelled or []),
            host=host,
            port=port,
            allow_new_classes=allow_new_classes,
            quick=quick,
            open_browser=open_browser,
            quiet=quiet,
        )


def main(argv: list[str] | None = None) -> int:
    """``python -m littlevision.review.cli DATA [...]``: the verb without Typer."""
    p = argparse.ArgumentParser(prog="littlevision-review")
    p.add_argument("data")
    p.add_argument("--labels")
    p.add_argument("--run")
    p.add_argument("--unlabelled", action="append", default=[])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--allow-new-classes", action="store_true")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    try:
        return review(
            a.data,
            labels=a.labels,
            run=a.run,
            unlabelled=a.unlabelled,
            host=a.host,
            port=a.port,
            allow_new_classes=a.allow_new_classes,
            quick=a.quick,
            quiet=True,
        )
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
