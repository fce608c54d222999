"""``littlevision retrain``, ``versions`` and ``rollback``: thin shells over the library."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from littlevision._console import out

RunArg = Annotated[Path, typer.Argument(help="A run folder written by train.", show_default=False)]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")]


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _ll(x) -> str:
    return "-" if x is None else f"{x:.4f}"


def register(app: typer.Typer, friendly) -> None:
    """Add the lifecycle verbs to the main ``littlevision`` app."""

    @app.command("retrain")
    @friendly
    def retrain_command(
        run: RunArg,
        data: Annotated[
            Path | None,
            typer.Option(help="Where the run's training data is now (default: as in split.json)."),
        ] = None,
        allow_new_classes: Annotated[
            bool, typer.Option("--allow-new-classes", help="Add classes named by feedback.")
        ] = False,
        force: Annotated[
            bool, typer.Option("--force", help="Promote even when the gate says no (recorded).")
        ] = False,
        as_json: AsJson = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    ) -> None:
        """Train a candidate on the run's data + feedback; promote it if it passes the gate."""
        from littlevision._console import reporter
        from littlevision.lifecycle import retrain

        with reporter(quiet or as_json) as rep:
            result = retrain(
                run, data, allow_new_classes=allow_new_classes, force=force, reporter=rep
            )
        if as_json:
            sys.stdout.write(json.dumps(result.to_json(), default=str) + "\n")
        else:
            frozen = result.gate["frozen_validation"]
            held = result.gate["held_out_feedback"]
            t = Table(show_edge=False, title=f"gate: version {result.version} vs {result.previous}")
            for col in ("images", "set", "served acc", "cand acc", "served log-loss", "cand ll"):
                t.add_column(col)
            for name, figures in (("frozen validation", frozen), ("held-out feedback", held)):
                cur, cand = figures["current"], figures["candidate"]
                t.add_row(
                    str(cur["n"]),
                    name,
                    _pct(cur["accuracy"]),
                    _pct(cand["accuracy"]),
                    _ll(cur["log_loss"]),
                    _ll(cand["log_loss"]),
                )
            out.print(t)
            d = result.data
            out.print(
                f"trained on {d['n_source_train']} images of the run + {d['n_feedback_train']} "
                f"feedback ({d['n_feedback_held_out']} held out for the gate) in "
                f"{result.seconds:.1f} s",
                highlight=False,
            )
            if result.promoted:
                how = (
                    "[bold yellow]promoted (forced)[/]"
                    if result.forced
                    else "[bold green]promoted[/]"
                )
                out.print(f"{how}: version {result.version} is now served", highlight=False)
            else:
                out.print(
                    f"[bold red]rejected[/]: version {result.version} is kept but not served: "
                    + "; ".join(result.reasons),
                    highlight=False,
                )
                out.print(f"rule: {result.rule}. --force promotes anyway.", highlight=False)
        if not result.promoted:
            raise typer.Exit(1)

    @app.command("versions")
    @friendly
    def versions_command(
        run: RunArg,
        prune: Annotated[
            int | None,
            typer.Option(help="Delete all but the KEEP newest versions (the served one stays)."),
        ] = None,
        as_json: AsJson = False,
    ) -> None:
        """Every version of a run: when, data, gate figures, served, promoted or rejected."""
        from littlevision.lifecycle import versions

        found = versions(run, prune=prune)
        if as_json:
            sys.stdout.write(json.dumps([v.to_json() for v in found], default=str) + "\n")
            return
        t = Table(show_edge=False, title=f"versions of {run}")
        for col in ("version", "status", "created", "model", "val acc", "log-loss", "feedback"):
            t.add_column(col)
        for v in found:
            m = v.metrics or {}
            fb = (v.data or {}).get("n_feedback_train")
            status = v.status + (" (forced)" if v.forced else "")
            t.add_row(
                str(v.version),
                status,
                str(v.created or "-"),
                str(v.model_version or "-"),
                _pct(m.get("accuracy")),
                _ll(m.get("log_loss")),
                "-" if fb is None else str(fb),
            )
        out.print(t)
        for v in found:
            if v.status == "rejected" and v.reasons:
                out.print(f"version {v.version} rejected: {'; '.join(v.reasons)}", highlight=False)

    @app.command("rollback")
    @friendly
    def rollback_command(
        run: RunArg,
        to: Annotated[
            int | None, typer.Option(help="The version to serve (default: the one before).")
        ] = None,
        as_json: AsJson = False,
    ) -> None:
        """Serve the previous (or a named) version again, byte for byte."""
        from littlevision.lifecycle import rollback

        result = rollback(run, to)
        if as_json:
            sys.stdout.write(json.dumps(result.to_json(), default=str) + "\n")
            return
        out.print(
            f"[bold green]rolled back[/]: version {result.version} ({result.model_version}) is "
            f"served again instead of {result.previous}",
            highlight=False,
        )
