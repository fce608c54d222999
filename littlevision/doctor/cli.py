"""``littlevision doctor``: the command-line face of :mod:`littlevision.doctor`.

Parses arguments, calls :func:`~littlevision.doctor.examine` (and :func:`~littlevision.doctor.fix`
or :func:`~littlevision.doctor.restore`), prints the summary, writes the JSON/HTML reports and
returns the exit code: 0 the check ran (whatever it found), 1 ``--fail-on`` and findings of that
severity or worse exist, 2 a user mistake.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from littlevision._console import JsonFlag, reporter
from littlevision.doctor.config import DoctorConfig

_FIX_HELP = (
    "Quarantine error-level problems (broken files, duplicate copies, train/validation "
    "leaks) into DATA.quarantine/; 'DATA --fix all' also suspected label issues and "
    "outliers. Nothing is deleted."
)


def register(app: typer.Typer, friendly) -> None:
    """Add the ``doctor`` verb to the main ``littlevision`` app."""

    @app.command()
    @friendly
    def doctor(
        data: Annotated[
            Path | None,
            typer.Argument(
                help="Class folders (or train/ + validation/), a CSV, or the images folder of "
                "--labels.",
                show_default=False,
            ),
        ] = None,
        labels: Annotated[
            Path | None, typer.Option("--labels", help="CSV of file ids and labels.")
        ] = None,
        as_json: JsonFlag = False,
        json_out: Annotated[
            Path | None,
            typer.Option("--json-file", help="Also write the findings as JSON to this file."),
        ] = None,
        html_out: Annotated[
            Path | None,
            typer.Option("--html", help="Write a self-contained HTML report with thumbnails."),
        ] = None,
        fail_on: Annotated[
            str | None,
            typer.Option(
                "--fail-on",
                help="Exit 1 when findings of this severity or worse exist: error or warning.",
            ),
        ] = None,
        scope: Annotated[
            str | None,
            typer.Argument(
                help="'all' after --fix: also quarantine suspected label issues and outliers.",
                show_default=False,
                metavar="[all]",
            ),
        ] = None,
        fix: Annotated[bool, typer.Option("--fix", help=_FIX_HELP)] = False,
        restore_from: Annotated[
            Path | None,
            typer.Option(
                "--restore",
                help="Undo fixes: put every file in DATA.quarantine back, byte for byte.",
            ),
        ] = None,
        skip: Annotated[
            list[str] | None,
            typer.Option("--skip", help="A check not to run (repeatable), e.g. label_issues."),
        ] = None,
        only: Annotated[
            list[str] | None, typer.Option("--only", help="Run only this check (repeatable).")
        ] = None,
        quick: Annotated[
            bool,
            typer.Option(
                "--quick",
                help="No model: skip embeddings, so no label or outlier checks, and near duplicates by perceptual hash only. Several times faster on a first run.",
            ),
        ] = False,
        precision: Annotated[
            str,
            typer.Option(
                help="Embedding backbone: fp32 (exact), int8 (about 2x faster, calibrated on "
                "the images; cached apart) or auto (int8 where the CPU has int8 instructions)."
            ),
        ] = DoctorConfig.precision,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    ) -> None:
        """Find what is wrong with images and labels; optionally quarantine it (never deletes)."""
        from rich.console import Console

        from littlevision.errors import UserError

        out = Console()
        err = Console(stderr=True)
        if restore_from is not None:
            if data is not None or fix:
                raise UserError(
                    "--restore takes only the quarantine folder: "
                    "littlevision doctor --restore DATA.quarantine"
                )
            _restore(restore_from, quiet, out, err)
            return
        if data is not None and scope is None and str(data) == "all" and fix:
            raise UserError("Give the data first: littlevision doctor DATA --fix all")
        if scope is not None:
            if not fix or scope != "all":
                raise UserError(
                    f"Unexpected '{scope}': only 'all' may follow DATA, with --fix "
                    "(littlevision doctor DATA --fix all)."
                )
        level = ("all" if scope == "all" else "errors") if fix else None
        if data is None:
            raise UserError(
                "Give the data to examine: littlevision doctor DATA (or --restore DATA.quarantine)."
            )
        if fail_on is not None and fail_on not in ("error", "warning"):
            raise UserError(f"--fail-on takes 'error' or 'warning'. Received: '{fail_on}'.")
        from littlevision._paths import check_output_file

        if json_out is not None:
            check_output_file(json_out, "--json-file")
        if html_out is not None:
            check_output_file(html_out, "--html")
        if precision not in ("auto", "fp32", "int8"):
            raise UserError(f"--precision takes auto, fp32 or int8. Received: '{precision}'.")
        report = _examine(data, labels, skip, only, quick, quiet, precision)
        # With --json, stdout holds the report alone; what would be said there goes to stderr.
        said = err if as_json else out
        if not as_json:
            from littlevision.doctor.terminal import print_summary

            print_summary(report, out, str(data))
        if json_out is not None:
            report.to_json(json_out)
            said.print(f"json: {json_out}", highlight=False)
        if html_out is not None:
            report.to_html(html_out)
            said.print(f"html: {html_out}", highlight=False)
        if level is not None:
            _fix(report, level, quiet, said, err)
        if as_json:
            sys.stdout.write(report.to_json() + "\n")
        if fail_on is not None and report.at_least(fail_on):
            raise typer.Exit(1)


def _examine(
    data: Path, labels: Path | None, skip, only, quick: bool, quiet: bool, precision: str = "fp32"
):
    from littlevision.data.source import open_dataset
    from littlevision.doctor.config import DoctorConfig
    from littlevision.doctor.examination import examine
    from littlevision.errors import UserError

    if not data.exists():
        raise UserError(f"No such file or folder: '{data}'.")
    dataset = open_dataset(data, labels)
    # Report paths relative to DATA as the user named it (a CSV set's DATA holds images/).
    root = data if data.is_dir() else data.parent
    with reporter(quiet) as rep:
        return examine(
            dataset,
            root=root,
            checks=only or None,
            skip=skip or (),
            config=DoctorConfig(embeddings=not quick, precision=precision),
            reporter=rep,
        )


def _fix(report, level: str, quiet: bool, out, err) -> None:
    from littlevision.doctor.quarantine import fix

    with reporter(quiet) as rep:
        result = fix(report, level, reporter=rep)
    if not result.moved and not result.skipped:
        out.print("--fix: nothing to move.")
        return
    out.print(
        f"[bold]--fix {level}:[/] moved {len(result.moved)} file(s) to {result.quarantine} "
        f"(journal: {result.quarantine / 'journal.jsonl'})",
        highlight=False,
    )
    for m in result.moved[:5]:
        out.print(f"  {m['from']}  ({m['check']})", highlight=False)
    if len(result.moved) > 5:
        out.print(f"  ... and {len(result.moved) - 5} more", highlight=False)
    if result.skipped:
        out.print(f"  {len(result.skipped)} planned file(s) left in place:")
        for s in result.skipped[:5]:
            out.print(f"    {s['file']}: {s['why']}", highlight=False)
        if len(result.skipped) > 5:
            out.print(f"    ... and {len(result.skipped) - 5} more", highlight=False)
    if result.moved:
        out.print(f"undo: littlevision doctor --restore {result.quarantine}", highlight=False)


def _restore(quarantine: Path, quiet: bool, out, err) -> None:
    from littlevision.doctor.quarantine import restore

    with reporter(quiet) as rep:
        result = restore(quarantine, reporter=rep)
    out.print(
        f"restored {len(result.restored)} file(s) to {result.data}"
        + (f"; {len(result.already_in_place)} already in place" if result.already_in_place else ""),
        highlight=False,
    )
    for c in result.conflicts:
        err.print(f"[yellow]not restored:[/] {c['file']}: {c['why']}", highlight=False)
    for f in result.changed:
        err.print(
            f"[yellow]note:[/] {f} changed while in quarantine (restored as it is now).",
            highlight=False,
        )
