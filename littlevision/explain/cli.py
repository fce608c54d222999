"""CLI verbs of the explain feature: explain, feature-maps, filters, layers, report.

Each verb parses its arguments, calls one library function of :mod:`littlevision.explain` and
prints where the result went. TensorFlow is imported inside the verbs only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from littlevision._console import JsonFlag, print_json, reporter
from littlevision.data.source import collect_images
from littlevision.errors import UserError

out = Console()
err = Console(stderr=True)


def _split_list(text: str | None) -> list[str] | None:
    if not text:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def _int_list(text: str | None, what: str) -> list[int] | None:
    items = _split_list(text)
    if items is None:
        return None
    try:
        return [int(t) for t in items]
    except ValueError:
        raise UserError(
            f"{what} must be comma-separated whole numbers. Received: '{text}'."
        ) from None


def _class_arg(value: str | None):
    if value is None:
        return None
    return int(value) if value.lstrip("-").isdigit() else value


def _load(run: Path):
    from littlevision.bundle import Bundle

    bundle = Bundle.load(run)
    if not bundle.keras_path.is_file():
        raise UserError(f"The run '{run}' has no model.keras, which explanations need.")
    return bundle


Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars, only the result.")]


def register(app: typer.Typer, friendly) -> None:
    """Add the explain verbs to the main ``littlevision`` command."""

    @app.command("explain")
    @friendly
    def explain_cmd(
        run: Annotated[Path, typer.Argument(help="A run folder written by train.")],
        images: Annotated[list[Path], typer.Argument(help="Image files and/or folders.")],
        output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the PNGs.")] = Path(
            "explanations"
        ),
        class_: Annotated[
            str | None,
            typer.Option(
                "--class", help="Class name or index to explain (default: the predicted one)."
            ),
        ] = None,
        layer: Annotated[
            str | None,
            typer.Option(help="Feature-map layer (default: the last convolutional one)."),
        ] = None,
        as_json: JsonFlag = False,
        quiet: Quiet = False,
    ) -> None:
        """Grad-CAM: one PNG per image with the photo, where the model looked, and its top 3 classes."""
        from littlevision._paths import check_output_dir
        from littlevision.explain.panel import explain_images

        check_output_dir(output, "--output")
        bundle = _load(run)
        files = collect_images(images)
        with reporter(quiet) as rep:
            with rep.stage("load model"):
                from littlevision.explain._gradcam import get_explainer

                get_explainer(bundle, layer)
            with rep.stage("explain", total=len(files)) as st:
                results = explain_images(
                    bundle, files, output, _class_arg(class_), layer, progress=st.advance
                )
        for r in results:
            if r.output is None:  # a warning: stderr, never mixed with the result
                err.print(f"[yellow]skipped[/] {r.source}: {r.error}", highlight=False)
            elif as_json:
                continue
            else:
                out.print(
                    f"{r.source} -> {r.label} ({100 * r.score:.1f}%), Grad-CAM for "
                    f"{r.explained}: {r.output}",
                    highlight=False,
                )
        if as_json:
            print_json({"output": str(output), "images": results})

    @app.command("feature-maps")
    @friendly
    def feature_maps_cmd(
        run: Annotated[Path, typer.Argument(help="A run folder written by train.")],
        image: Annotated[Path, typer.Argument(help="One image file.")],
        output: Annotated[Path, typer.Option("--output", "-o", help="PNG to write.")] = Path(
            "feature-maps.png"
        ),
        layers: Annotated[
            str | None,
            typer.Option(
                help="Comma-separated layer names or indices (see `littlevision layers`); default: early, middle, late."
            ),
        ] = None,
        channels: Annotated[
            int, typer.Option(help="Channels shown per layer (the most active).")
        ] = 16,
    ) -> None:
        """Feature maps: what chosen layers compute for one image, as a grid."""
        from littlevision._paths import check_output_file
        from littlevision.data.decode import load_image
        from littlevision.explain._feature_maps import feature_maps_png

        check_output_file(output, "--output")
        bundle = _load(run)
        png = feature_maps_png(
            bundle, load_image(image), _split_list(layers), max_channels=channels
        )
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(png)
        out.print(f"feature maps of {image} -> {output}", highlight=False)

    @app.command("filters")
    @friendly
    def filters_cmd(
        run: Annotated[Path, typer.Argument(help="A run folder written by train.")],
        output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the PNGs.")] = Path(
            "filters"
        ),
        layer: Annotated[
            str | None,
            typer.Option(help="Layer whose filters to synthesise (default: a middle one)."),
        ] = None,
        filters: Annotated[
            str, typer.Option(help="Comma-separated filter indices of --layer.")
        ] = "0,1,2,3,4,5,6,7",
        classes: Annotated[bool, typer.Option(help="Also synthesise one image per class.")] = True,
        steps: Annotated[int, typer.Option(help="Gradient-ascent steps.")] = 36,
        quiet: Quiet = False,
    ) -> None:
        """Filters: first-layer kernels, and patterns that excite chosen filters and each class."""
        from littlevision._paths import check_output_dir
        from littlevision.explain import _imaging
        from littlevision.explain import filters as flt

        check_output_dir(output, "--output")
        bundle = _load(run)
        output.mkdir(parents=True, exist_ok=True)
        chosen = _int_list(filters, "--filters") or [0]
        written = []
        with reporter(quiet) as rep:
            with rep.stage("first-layer kernels"):
                model = bundle.load_keras()
                path = output / "first-layer-kernels.png"
                path.write_bytes(_imaging.encode(flt.filters_grid(model)))
                written.append(path)
            with rep.stage("filter patterns"):
                config = flt.AscentConfig(steps=steps)
                images = flt.maximize_activation(model, layer, chosen, config)
                path = output / "filter-patterns.png"
                path.write_bytes(
                    _imaging.encode(_imaging.tile(images, columns=min(4, len(images))))
                )
                written.append(path)
            if classes:
                with rep.stage("class patterns"):
                    images = flt.maximize_class(
                        model, None, flt.AscentConfig(steps=steps, size=160)
                    )
                    for label, img in zip(bundle.labels, images, strict=True):
                        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in label)
                        path = output / f"class-{safe}.png"
                        path.write_bytes(_imaging.encode(img))
                        written.append(path)
        for path in written:
            out.print(str(path), highlight=False)

    @app.command("layers")
    @friendly
    def layers_cmd(
        run: Annotated[Path, typer.Argument(help="A run folder written by train.")],
        all_: Annotated[
            bool, typer.Option("--all", help="Every layer, not only feature maps.")
        ] = False,
    ) -> None:
        """List the model's layers (index, name, type, output shape) for --layers and --layer."""
        from rich.table import Table

        from littlevision.explain import list_layers

        table = Table(show_edge=False)
        for col in ("#", "layer", "type", "output"):
            table.add_column(col, justify="right" if col == "#" else "left")
        for info in list_layers(_load(run)):
            if all_ or info.is_feature_map:
                table.add_row(
                    str(info.index),
                    info.path,
                    info.class_name,
                    " x ".join(str(s) for s in info.output_shape),
                )
        out.print(table)

    @app.command("report")
    @friendly
    def report_cmd(
        run: Annotated[Path, typer.Argument(help="A run folder written by train.")],
        output: Annotated[
            Path | None,
            typer.Option("--output", "-o", help="HTML file (default: RUN/report.html)."),
        ] = None,
        data: Annotated[
            Path | None, typer.Option(help="Where the training data is now, if it moved.")
        ] = None,
        quiet: Quiet = False,
    ) -> None:
        """One self-contained HTML report: data, curves, errors with Grad-CAM, filters, model card."""
        from littlevision._paths import check_output_file
        from littlevision.bundle import Bundle
        from littlevision.explain.report import write_report

        if output is not None:
            check_output_file(output, "--output")
        bundle = Bundle.load(run)
        with reporter(quiet) as rep:
            path = write_report(bundle, output, reporter=rep, data_root=data)
        size = path.stat().st_size / 1e6
        out.print(f"report: {path} ({size:.1f} MB, opens offline in any browser)", highlight=False)
