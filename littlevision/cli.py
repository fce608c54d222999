"""The ``littlevision`` command: a thin shell over the library.

Each verb parses its arguments, calls one library function, shows the result and returns an
exit code: 0 done, 1 a check failed (``doctor --fail-on``), 2 a user mistake (one sentence, no
traceback), 3 a crash of littlevision itself (one line naming a log file with the traceback).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from littlevision._console import JsonFlag, Quiet, console, friendly, out, print_json, reporter
from littlevision._io import atomic_path
from littlevision.data.source import collect_images
from littlevision.errors import UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Image classifiers from very little data: cleaned, trained, explained and "
    "served live, on a CPU.",
)
Precision = Annotated[
    str,
    typer.Option(
        "--precision",
        help="auto: the run's faster int8 model when training kept one (it passed the accuracy "
        "gate), else model.onnx; fp32: always the exact model.onnx; int8: the fast one.",
    ),
]


def _version(value: bool) -> None:
    if value:
        from littlevision import __version__

        out.print(f"littlevision {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Options before any verb. `--json` on a verb that produces a result (train, evaluate,
    predict, info, doctor, compare, explain) prints it as one JSON object on stdout; progress
    bars and warnings (skipped files) go to stderr."""


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _print_metrics_table(metrics: dict, title: str) -> None:
    table = Table(title=title, show_edge=False)
    for col in ("class", "precision", "recall", "f1", "n"):
        table.add_column(col, justify="right" if col != "class" else "left")
    for name, m in metrics.get("per_class", {}).items():
        table.add_row(
            name, _pct(m["precision"]), _pct(m["recall"]), _pct(m["f1"]), str(m["support"])
        )
    out.print(table)


def _print_skipped(skipped: list[dict], limit: int = 5) -> None:
    if not skipped:
        return
    console.print(f"[yellow]{len(skipped)} file(s) skipped[/] (could not be read as images):")
    for s in skipped[:limit]:
        console.print(f"  {s['path']}: {s['message']}", highlight=False)
    if len(skipped) > limit:
        console.print(f"  ... and {len(skipped) - limit} more (see card.json)")


@app.command()
@friendly
def train(
    data: Annotated[
        Path,
        typer.Argument(
            help="Class folders (or the tutorial's train/ + validation/), or the images folder of --labels."
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Run folder to write.")],
    labels: Annotated[
        Path | None, typer.Option("--labels", help="CSV of file ids and labels.")
    ] = None,
    recipe: Annotated[
        str, typer.Option(help="bottleneck (default), scratch, finetune or auto.")
    ] = "bottleneck",
    val_split: Annotated[
        float, typer.Option(help="Validation fraction when the data has no split.")
    ] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed for the split and the training.")] = 0,
    image_size: Annotated[
        int | None, typer.Option(help="Input side in pixels (default: the recipe's).")
    ] = None,
    backbone: Annotated[
        str, typer.Option(help="Pretrained backbone: lite0, lite1, lite2.")
    ] = "lite0",
    unknown_rate: Annotated[
        float,
        typer.Option(help="Share of validation images the unknown-detection threshold flags."),
    ] = 0.05,
    epochs: Annotated[
        int | None, typer.Option(help="Epochs, for recipes that train by epochs.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an interrupted run in --output.")
    ] = False,
    budget: Annotated[
        str | None,
        typer.Option(help="--recipe auto: time for the search, e.g. 90s, 5m (default 2m30s)."),
    ] = None,
    backbones: Annotated[
        str | None,
        typer.Option(help="--recipe auto: backbones to search (default lite0,lite1,lite2)."),
    ] = None,
    report: Annotated[bool, typer.Option(help="Also write report.html.")] = True,
    engine: Annotated[
        str, typer.Option(help="local, or ray: embed the images on a Ray cluster first.")
    ] = "local",
    address: Annotated[
        str | None, typer.Option(help="Ray cluster to join (with --engine ray).")
    ] = None,
    as_json: JsonFlag = False,
    precision: Annotated[
        str,
        typer.Option(
            help="auto: also write model.int8.onnx (about 2x faster) when it agrees with the "
            "exact model on the validation split (card.json says how it did); fp32: only the "
            "exact model."
        ),
    ] = "auto",
    quiet: Quiet = False,
) -> None:
    """Train a classifier and write its bundle (model, ONNX, labels, metrics, card)."""
    from littlevision._paths import check_output_dir
    from littlevision.data.source import open_dataset
    from littlevision.training.run import TrainConfig
    from littlevision.training.run import train as train_fn

    check_output_dir(output, "--output")
    dataset = open_dataset(data, labels)
    if not quiet:
        console.print(f"data: {dataset!r}", highlight=False)
        _print_load_report(dataset)
    config = TrainConfig(
        recipe=recipe,
        val_split=val_split,
        seed=seed,
        image_size=image_size,
        backbone=backbone,
        unknown_rate=unknown_rate,
        precision=precision,
    )
    extra = {}
    if epochs is not None:
        extra["epochs"] = epochs
    if resume:
        extra["resume"] = True
    for name, value in (("budget", budget), ("backbones", backbones)):
        if value is not None and recipe != "auto":
            raise UserError(f"--{name} is for --recipe auto. Received: --recipe {recipe}.")
        if value is not None:
            extra[name] = value
    if budget is not None:
        from littlevision.training.auto import parse_budget

        parse_budget(budget)  # a typo is one sentence now, not after the data is read
    if engine not in ("local", "ray"):
        raise UserError(f"Unknown engine '{engine}'. Use local or ray.")
    with reporter(quiet) as rep:
        if engine == "ray" and recipe in ("bottleneck", "auto"):
            # Fill the embedding cache on the cluster; training then finds every vector cached.
            from littlevision.scale import embed_paths_ray

            for flip in (False, True):
                embed_paths_ray(
                    {"backbone": backbone, "image_size": image_size},
                    dataset.paths,
                    flip=flip,
                    address=address,
                    reporter=rep,
                )
            if recipe == "bottleneck":
                # The cluster filled the exact backbone's cache: embed with it here too (the
                # int8 candidate for model.int8.onnx is still made and gated).
                extra["embed_precision"] = "fp32"
        bundle = train_fn(dataset, output, config, reporter=rep, **extra)
        if report:
            _write_report(bundle, rep)
    m = bundle.metrics
    card = bundle.card
    if as_json:
        _print_skipped(card["data"]["skipped"])
        print_json({"run": str(bundle.path), "card": card, "metrics": m})
        return
    out.print(
        f"[bold green]trained[/] {card['recipe']} on {card['data']['n_train']} images, "
        f"validated on {m['n']}: accuracy [bold]{_pct(m['accuracy'])}[/], "
        f"log-loss {m['log_loss']:.3f} in {card['timings'].get('total_s', 0):.1f} s"
    )
    fast = card.get("fast_model") or {}
    if fast.get("written"):
        out.print(f"fast model: model.int8.onnx written ({fast['reason']})", highlight=False)
    elif fast.get("reason"):
        out.print(f"fast model: not written: {fast['reason']}", highlight=False)
    if not quiet:
        _print_metrics_table(m, "validation")
    _print_skipped(card["data"]["skipped"])
    out.print(
        f"bundle: {bundle.path}  (next: littlevision predict {bundle.path} PHOTOS -o predictions.csv)",
        highlight=False,
    )


def _print_load_report(dataset) -> None:
    report = getattr(dataset, "load_report", None)
    if not report or not hasattr(report, "summary"):
        return
    text = report.summary()
    if isinstance(text, dict):
        text = "; ".join(f"{k}: {v}" for k, v in text.items() if v)
    if text:
        console.print(f"[yellow]note:[/] {text}", highlight=False)


def _write_report(bundle, reporter) -> None:
    try:
        from littlevision.explain.report import write_report
    except ImportError:
        return
    with reporter.stage("write report.html"):
        write_report(bundle)


@app.command()
@friendly
def evaluate(
    run: Annotated[Path, typer.Argument(help="A run folder written by train.")],
    data: Annotated[Path, typer.Argument(help="Labelled images: class folders, or with --labels.")],
    labels: Annotated[
        Path | None, typer.Option("--labels", help="CSV of file ids and labels.")
    ] = None,
    as_json: JsonFlag = False,
    precision: Precision = "auto",
    quiet: Quiet = False,
) -> None:
    """Measure a trained model on labelled images."""
    from littlevision.bundle import Bundle
    from littlevision.data.source import open_dataset
    from littlevision.training.run import evaluate as evaluate_fn

    bundle = Bundle.load(run)
    dataset = open_dataset(data, labels)
    with reporter(quiet or as_json) as rep:
        metrics = evaluate_fn(bundle, dataset, reporter=rep, precision=precision)
    if as_json:
        _print_skipped(metrics["skipped"])
        print_json(metrics)
        return
    out.print(
        f"accuracy [bold]{_pct(metrics['accuracy'])}[/] on {metrics['n']} images, "
        f"log-loss {metrics['log_loss'] if metrics['log_loss'] is None else round(metrics['log_loss'], 4)}"
        f" ({metrics['precision']} model, {metrics['model_file']})",
        highlight=False,
    )
    _print_metrics_table(metrics, f"{bundle.name} on {data}")
    _print_skipped(metrics["skipped"])
    if metrics["n_unknown_label"]:
        out.print(
            f"[yellow]{metrics['n_unknown_label']} image(s) have labels the model does not know:[/] "
            f"{', '.join(metrics['unknown_labels'][:5])}"
        )


@app.command()
@friendly
def predict(
    run: Annotated[Path, typer.Argument(help="A run folder written by train.")],
    paths: Annotated[list[Path], typer.Argument(help="Image files and/or folders.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV to write.")] = Path(
        "predictions.csv"
    ),
    batch_size: Annotated[
        int | None,
        typer.Option(help="Images per ONNX Runtime call (default: 8 locally, 32 on Ray).", min=1),
    ] = None,
    engine: Annotated[
        str, typer.Option(help="local, or ray (pip install 'littlevision[ray]').")
    ] = "local",
    address: Annotated[
        str | None, typer.Option(help="Ray cluster to join (default: a local Ray).")
    ] = None,
    as_json: JsonFlag = False,
    precision: Precision = "auto",
    quiet: Quiet = False,
) -> None:
    """Predict labels for images; writes path,label,score and one column per class."""
    from littlevision._paths import check_output_file
    from littlevision.bundle import Bundle
    from littlevision.inference import STREAM_BATCH, PredictionCsv, Predictor

    check_output_file(output, "--output")
    bundle = Bundle.load(run)
    files = collect_images(paths)
    if engine not in ("local", "ray"):
        raise UserError(f"Unknown engine '{engine}'. Use local or ray.")
    if engine == "ray":
        from littlevision.scale import predict_files

        with reporter(quiet) as rep:
            s = predict_files(
                bundle,
                files,
                output,
                address=address,
                batch_size=batch_size or 32,
                reporter=rep,
                precision=precision,
            )
        _print_failures(s.failures)
        if as_json:
            print_json(
                {
                    "output": str(output),
                    "n_predicted": s.n_predicted,
                    "seconds": s.seconds,
                    "failures": _failures_json(s.failures),
                }
            )
            return
        out.print(
            f"predicted {s.n_predicted} image(s) on Ray in {s.seconds:.1f} s "
            f"({s.images_per_s:.0f} img/s, {s.precision} model) -> {output}",
            highlight=False,
        )
        return
    predictor = Predictor.from_bundle(bundle, precision=precision)
    import time

    t0 = time.perf_counter()
    with reporter(quiet) as rep, rep.stage("predict", total=len(files)) as st:
        preds = predictor.predict_paths(
            files, batch_size=batch_size or STREAM_BATCH, progress=st.advance
        )
    elapsed = time.perf_counter() - t0
    output.parent.mkdir(parents=True, exist_ok=True)
    with (
        atomic_path(output) as tmp,
        PredictionCsv(tmp, bundle.labels, threshold=preds.threshold) as rows,
    ):
        rows.write(preds.paths, preds.probabilities, preds.novelty)
    _print_failures(preds.failures)
    if as_json:
        print_json(
            {
                "output": str(output),
                "n_predicted": len(preds.paths),
                "seconds": elapsed,
                "failures": _failures_json(preds.failures),
                "predictions": [
                    {
                        "path": str(path),
                        "label": bundle.labels[int(row.argmax())],
                        "score": float(row.max()),
                        "probabilities": dict(zip(bundle.labels, row.tolist(), strict=True)),
                        **({} if preds.unknown is None else {"unknown": bool(preds.unknown[i])}),
                    }
                    for i, (path, row) in enumerate(
                        zip(preds.paths, preds.probabilities, strict=True)
                    )
                ],
            }
        )
        return
    rate = len(files) / elapsed if elapsed > 0 else float("inf")
    out.print(
        f"predicted {len(preds.paths)} image(s) in {elapsed:.1f} s ({rate:.0f} img/s, "
        f"{predictor.precision} model) -> {output}",
        highlight=False,
    )
    if preds.unknown is not None and preds.unknown.any():
        out.print(
            f"{int(preds.unknown.sum())} image(s) look like none of: {', '.join(bundle.labels)} "
            "(unknown = true in the CSV)",
            highlight=False,
        )


def _print_failures(failures: list, limit: int = 5) -> None:
    """Files that could not be read: a warning on stderr, never mixed with the result."""
    if not failures:
        return
    console.print(f"[yellow]{len(failures)} file(s) skipped:[/]")
    for f in failures[:limit]:
        console.print(f"  {f}", highlight=False)
    if len(failures) > limit:
        console.print(f"  ... and {len(failures) - limit} more")


def _failures_json(failures: list) -> list[dict]:
    return [
        {
            "path": None if getattr(f, "path", None) is None else str(f.path),
            "reason": getattr(f, "reason", "unreadable"),
            "message": str(f),
        }
        for f in failures
    ]


@app.command()
@friendly
def info(
    run: Annotated[Path, typer.Argument(help="A run folder written by train.")],
    as_json: JsonFlag = False,
    summary: Annotated[
        bool,
        typer.Option("--summary", help="Print the Keras architecture (slow: loads TensorFlow)."),
    ] = False,
) -> None:
    """What a run is: recipe, backbone, classes, metrics, data, versions."""
    from littlevision.bundle import Bundle
    from littlevision.models.cost import describe_cost

    bundle = Bundle.load(run)
    card = bundle.card
    if as_json:  # what a run is: its card (card.json)
        print_json(card)
        return
    t = Table(show_header=False, show_edge=False, title=f"run {bundle.path}")
    t.add_column(style="bold")
    t.add_column()
    data = card.get("data", {})
    rows = [
        ("recipe", str(card.get("recipe"))),
        ("backbone", str(card.get("backbone"))),
        ("image size", str(card.get("image_size"))),
        ("cost per image", describe_cost(card.get("cost"))),
        ("classes", ", ".join(bundle.labels)),
        ("train / validation", f"{data.get('n_train', '?')} / {data.get('n_val', '?')}"),
        ("skipped files", str(len(data.get("skipped", [])))),
        ("validation accuracy", _pct(bundle.metrics.get("accuracy"))),
        ("validation log-loss", f"{bundle.metrics.get('log_loss', float('nan')):.4f}"),
        ("model version", bundle.version),
        ("created", str(card.get("created"))),
        (
            "files",
            ", ".join(
                sorted(
                    p.name
                    for p in bundle.path.iterdir()
                    if p.is_file() and not p.name.startswith(".")
                )
            ),
        ),
    ]
    auto = card.get("recipe_info", {}).get("auto") or {}
    if auto.get("candidates"):
        rows.insert(2, ("auto", _auto_summary(auto)))
    for k, v in rows:
        t.add_row(k, v)
    out.print(t)
    if summary:
        bundle.load_keras().summary(
            print_fn=lambda s, **_: out.print(s, highlight=False, markup=False)
        )


def _auto_summary(auto: dict) -> str:
    """The search's winner, why, and each candidate's figures, for ``info``."""
    lines = [auto.get("why", "")]
    for c in auto["candidates"]:
        if c["status"] == "done":
            lines.append(
                f"  {c['backbone']} {c['recipe']}: CV {_pct(c['cv_accuracy'])}, "
                f"{c['images_per_s'] or 0:.0f} img/s, {c['cost_s']:.0f} s"
            )
        else:
            lines.append(f"  {c['backbone']} {c['recipe']}: {c['status']} ({c['note']})")
    return "\n".join(lines)


@app.command()
@friendly
def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Run folder to write.")] = Path(
        "runs/demo"
    ),
    data: Annotated[Path, typer.Option(help="Where to write the demo images.")] = Path(
        "demo-data/digits"
    ),
    quiet: Quiet = False,
) -> None:
    """Train, evaluate and predict on an embedded real dataset (scikit-learn's handwritten digits)."""
    from littlevision._paths import check_output_dir
    from littlevision.data.demo import write_digits_folder

    check_output_dir(output, "--output")
    check_output_dir(data, "--data")
    folder = write_digits_folder(data)
    out.print(
        f"demo data: {folder} (1797 scanned handwritten digits from scikit-learn, 10 classes)",
        highlight=False,
    )
    train(folder, output, quiet=quiet)
    # Evaluate the saved bundle (ONNX Runtime) on the held-out files recorded in split.json.
    import json as _json

    from littlevision.bundle import Bundle
    from littlevision.data.dataset import Dataset
    from littlevision.training.run import evaluate as evaluate_fn

    bundle = Bundle.load(output)
    split = _json.loads((output / "split.json").read_text(encoding="utf-8"))
    _, held_out = Dataset.from_split_record(split, folder).split()
    metrics = evaluate_fn(bundle, held_out)
    out.print(
        f"evaluate: the exported model on the {metrics['n']} held-out digits: "
        f"accuracy {_pct(metrics['accuracy'])}"
    )
    samples = sorted((folder / "3").iterdir())[:3] + sorted((folder / "8").iterdir())[:3]
    predict(output, samples, output=output / "demo-predictions.csv", quiet=True)
    with open(output / "demo-predictions.csv", encoding="utf-8") as f:
        for row in list(csv.DictReader(f)):
            out.print(
                f"  {Path(row['path']).parent.name}/{Path(row['path']).name} -> {row['label']} "
                f"({float(row['score']):.2f})",
                highlight=False,
            )
    out.print(
        "\nNow on your own photos (one subfolder per class):\n"
        "  .venv/bin/littlevision doctor ~/photos/my-classes\n"
        "  .venv/bin/littlevision train ~/photos/my-classes -o runs/first\n"
        "  .venv/bin/littlevision predict runs/first new-photos/ -o predictions.csv"
    )


def _register_optional() -> None:
    """Verbs that live with their feature (doctor, explain, serve...) add themselves if present."""
    import importlib

    for module in (
        "littlevision.doctor.cli",
        "littlevision.explain.cli",
        "littlevision.serving.cli",
        "littlevision.training.cli",
        "littlevision.review.cli",
        "littlevision.lifecycle.cli",
    ):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and module.startswith(e.name):
                continue
            raise
        register = getattr(mod, "register", None)
        if register is not None:
            register(app, friendly)


_register_optional()


def main() -> None:
    """The ``littlevision`` command. Exit codes: 0 done, 1 findings (``doctor --fail-on``),
    2 a user mistake (one sentence), 3 a crash (one line naming the log with the traceback),
    130 interrupted."""
    from littlevision import _crash

    try:
        app()
    except Exception as e:  # not a UserError (friendly answers those): a bug of ours
        try:
            log = _crash.write_crash_log(e)
        except Exception:  # noqa: BLE001 - nowhere to write the log: show the traceback
            raise e from None
        console.print(_crash.crash_line(e, log), highlight=False, markup=False, soft_wrap=True)
        sys.exit(_crash.EXIT_CRASH)


if __name__ == "__main__":
    main()
