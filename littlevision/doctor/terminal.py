"""The terminal summary: one table row per check that found something, worst first, with a
few example files and what to do."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from littlevision.doctor.quarantine import plan_fix, quarantine_dir
from littlevision.doctor.registry import get_check
from littlevision.doctor.report import Report
from littlevision.errors import UserError

STYLES = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def _title_advice(check: str) -> tuple[str, str]:
    try:
        spec = get_check(check)
    except UserError:  # a report read back from JSON, from a check not installed here
        return check, ""
    return spec.title, spec.advice


def summary_table(report: Report, examples: int = 2) -> Table:
    """A rich table: severity, check, how many, a few example files."""
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    table.add_column("", no_wrap=True, min_width=7)
    table.add_column("check", min_width=16, ratio=2)
    table.add_column("found", justify="right", no_wrap=True, min_width=5)
    table.add_column("examples", overflow="ellipsis", no_wrap=True, ratio=3)
    for check in dict.fromkeys(f.check for f in report.findings):
        found = report.by_check(check)
        severity = found[0].severity
        n_files = sum(len(f.files) for f in found)
        grouped = len(found) > 1 and any(len(f.files) > 1 for f in found)
        if grouped or (
            len(found) == 1 and len(found[0].files) > 1 and found[0].details.get("members")
        ):
            count = f"{len(found)} groups" if grouped else f"{n_files} files"
        else:
            count = str(n_files or len(found))
        shown = ", ".join([p for f in found for p in f.files][:examples]) or found[0].message
        table.add_row(
            Text(severity, style=STYLES.get(severity, "")),
            Text(_title_advice(check)[0]),
            count,
            Text(shown),
        )
    return table


def print_summary(report: Report, console: Console, data_arg: str | None = None) -> None:
    """Print the table, the totals and the next commands to run."""
    s = report.summary()["by_severity"]
    if report.findings:
        console.print(summary_table(report))
        console.print("[bold]what to do[/]")
        for check in dict.fromkeys(f.check for f in report.findings):
            title, advice = _title_advice(check)
            if advice:
                console.print(f"  {title}: {advice}", highlight=False)
    total = report.timings.get("total")
    took = f" in {total:.1f} s" if total is not None else ""
    console.print(
        f"{report.n_images} images, {len(report.checks)} checks{took}: "
        f"[bold red]{s['error']} errors[/], [yellow]{s['warning']} warnings[/], "
        f"[cyan]{s['info']} info[/]",
        highlight=False,
    )
    data = data_arg or report.root
    n_fix = len(plan_fix(report, "errors"))
    n_all = len(plan_fix(report, "all"))
    q = quarantine_dir(report.root)
    if n_fix:
        console.print(
            f"next: littlevision doctor {data} --fix   (moves {n_fix} file(s) to "
            f"{q}; undo with --restore)",
            highlight=False,
        )
    if n_all > n_fix:
        console.print(
            f"      littlevision doctor {data} --fix all   (also the {n_all - n_fix} "
            "suspected label issues and outliers: look at them first, --html)",
            highlight=False,
        )
    if not report.findings:
        console.print("[green]Nothing wrong found.[/]")
