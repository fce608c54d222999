"""``littlevision compare``: the tutorial's three approaches side by side on the user's data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from littlevision._console import JsonFlag, print_json


def register(app: typer.Typer, friendly) -> None:
    """Add the ``compare`` verb to the main CLI."""

    @app.command()
    @friendly
    def compare(
        data: Annotated[
            Path,
            typer.Argument(
                help="Class folders (or the tutorial's train/ + validation/), or the images folder of --labels."
            ),
        ],
        recipes: Annotated[
            str, typer.Option(help="Comma-separated recipes to train and compare.")
        ] = "scratch,bottleneck,finetune",
        output: Annotated[
            Path, typer.Option("--output", "-o", help="Folder for the runs and the table.")
        ] = Path("runs/compare"),
        labels: Annotated[
            Path | None, typer.Option("--labels", help="CSV of file ids and labels.")
        ] = None,
        epochs: Annotated[
            int | None,
            typer.Option(help="Epochs for the recipes that train by epochs (scratch, finetune)."),
        ] = None,
        val_split: Annotated[
            float, typer.Option(help="Validation fraction when the data has no split.")
        ] = 0.2,
        seed: Annotated[int, typer.Option(help="Seed for the split and the training.")] = 0,
        backbone: Annotated[
            str, typer.Option(help="Pretrained backbone: lite0, lite1, lite2.")
        ] = "lite0",
        backbones: Annotated[
            str | None,
            typer.Option(
                help="Comma-separated backbones: every recipe that takes one is trained on each "
                "(e.g. lite0,lite1,lite2), with an accuracy / speed frontier plot."
            ),
        ] = None,
        as_json: JsonFlag = False,
        quiet: Annotated[
            bool, typer.Option("--quiet", "-q", help="No progress bars, only the table.")
        ] = False,
    ) -> None:
        """Train several recipes on the same split; print and write the comparison table."""
        from rich.table import Table

        from littlevision._console import console, out, reporter
        from littlevision._paths import check_output_dir
        from littlevision.data.source import open_dataset
        from littlevision.training.comparison import compare as compare_fn
        from littlevision.training.run import TrainConfig

        check_output_dir(output, "--output")
        dataset = open_dataset(data, labels)
        if not quiet:
            console.print(f"data: {dataset!r}", highlight=False)
        config = TrainConfig(val_split=val_split, seed=seed, backbone=backbone)
        with reporter(quiet) as rep:
            result = compare_fn(
                dataset,
                output,
                recipes.split(","),
                config=config,
                epochs=epochs,
                reporter=rep,
                backbones=backbones,
            )
        if as_json:
            print_json({"output": str(output), **result.to_dict()})
            return
        table = Table(
            title=f"{result.n_train} train / {result.n_val} validation images, same split",
            show_edge=False,
        )
        rows = result.cells(sizes=False)
        for cells, r in zip(rows, result.rows, strict=True):
            cells[0] += " *" if r.on_frontier and result.many_backbones else ""
        # the names never fold: on a narrow terminal the other columns wrap instead
        table.add_column("recipe", no_wrap=True, min_width=max(len(c[0]) for c in rows))
        for col in ("accuracy", "log-loss", "training", "img/s (ONNX)", "size"):
            table.add_column(col, justify="right")
        if result.is_cats_vs_dogs:
            table.add_column("tutorial (2016)")
        for cells in rows:
            table.add_row(*cells)
        out.print(table)
        out.print(
            ("* on the accuracy / speed frontier. " if result.many_backbones else "")
            + f"written: {output / 'compare.md'}, {output / 'compare.html'}, "
            f"{output / 'compare-frontier.png'}, one run folder per recipe and backbone",
            highlight=False,
        )
