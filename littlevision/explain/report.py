"""One self-contained HTML report of a run: data, learning, errors, and what the convnet sees.

The file is meant to be sent to people (an ML club, a colleague), so it has to open anywhere,
offline: every image is embedded as a base64 ``data:`` URI, the style sheet is inline, and there
is no script and no external reference at all.

What needs the validation images (calibration, top losses, Grad-CAM, examples) is recomputed
from them with the bundle's ONNX model; when they are gone (the data folder moved), the report
says so and shows the rest from the bundle's own files.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from littlevision._io import write_text
from littlevision.bundle import Bundle
from littlevision.errors import UserError
from littlevision.explain import _imaging, _plots
from littlevision.explain.filters import AscentConfig
from littlevision.progress import NULL, Reporter

__all__ = ["ReportConfig", "SECTIONS", "build_context", "render_report", "write_report"]

# Section ids, in page order; every report has all of them (a section may say why it is empty).
SECTIONS = (
    ("data", "Data"),
    ("curves", "Learning curves"),
    ("confusion", "Confusion matrix"),
    ("per-class", "Per-class scores"),
    ("calibration", "Calibration"),
    ("top-losses", "Top losses"),
    ("correct", "Correct predictions"),
    ("feature-maps", "Feature maps"),
    ("filters", "Filters"),
    ("card", "Model card"),
)


@dataclass(frozen=True)
class ReportConfig:
    """What the report shows and how much work it may do.

    Attributes:
        n_top_losses: Most confidently wrong validation images to show.
        n_correct: Correctly predicted validation images to show (a seeded random sample).
        n_filters: Filters of a middle layer synthesised by activation maximisation.
        max_class_images: Classes synthesised by activation maximisation (the first ones).
        filter_ascent: Activation-maximisation settings for the filters.
        class_ascent: Activation-maximisation settings for the classes.
        thumb: Longest side of the photos in the report, in pixels.
        batch_size: Images per ONNX Runtime call when predicting the validation set.
        seed: For the sample of correct predictions.
        strict: Raise instead of noting a failed section in the report (for tests).
    """

    n_top_losses: int = 8
    n_correct: int = 8
    n_filters: int = 8
    max_class_images: int = 6
    filter_ascent: AscentConfig = AscentConfig(steps=24, size=96, octaves=(0.5, 1.0))
    class_ascent: AscentConfig = AscentConfig(steps=24, size=128, octaves=(0.5, 1.0))
    thumb: int = 240
    batch_size: int = 32
    seed: int = 0
    strict: bool = False


@dataclass
class _Validation:
    """The validation images that could be predicted again, with what happened to the others."""

    paths: list[Path] = field(default_factory=list)
    y: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    probabilities: np.ndarray | None = None
    n_listed: int = 0
    n_missing: int = 0
    failures: list = field(default_factory=list)
    root: Path | None = None
    note: str | None = None


def _read_json(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _validation_entries(split: dict) -> list[tuple[str, str | None]]:
    """(path relative to the data root, label) of each validation file in split.json.

    Reads the Dataset split record (``subsets: {subset: {class: [paths]}}``) and the older flat
    form (``validation: [paths]``, ``validation_labels: [labels]``).
    """
    subsets = split.get("subsets")
    if isinstance(subsets, dict):
        val = subsets.get("validation") or {}
        return [(str(r), str(label)) for label, rels in val.items() for r in rels]
    flat = split.get("validation") or []
    labels = split.get("validation_labels") or [None] * len(flat)
    return [(str(r), label) for r, label in zip(flat, labels, strict=False)]


def _validation_files(bundle: Bundle, data_root: str | os.PathLike | None) -> _Validation:
    split = _read_json(bundle.path / "split.json")
    entries = _validation_entries(split) if isinstance(split, dict) else []
    if not entries:
        return _Validation(note="This run has no split.json listing its validation images.")
    rel = [r for r, _ in entries]
    labels = [label for _, label in entries]
    candidates = [data_root, split.get("root"), bundle.card.get("data", {}).get("source")]
    root = next((Path(c) for c in candidates if c and Path(c).is_dir()), None)
    index = {name: i for i, name in enumerate(bundle.labels)}
    paths, y, missing = [], [], 0
    for r, label in zip(rel, labels, strict=False):
        p = Path(r) if Path(r).is_absolute() or root is None else root / r
        if label not in index:
            continue
        if not p.is_file():
            missing += 1
            continue
        paths.append(p)
        y.append(index[label])
    out = _Validation(
        paths=paths, y=np.asarray(y, np.int64), n_listed=len(rel), n_missing=missing, root=root
    )
    shown_root = next((str(c) for c in candidates if c), "?")
    if not paths:
        out.note = (
            f"The validation images are gone (looked in '{shown_root}'): calibration, top "
            "losses and Grad-CAM examples need them. Run `littlevision report RUN "
            "--data FOLDER` with the data's new location to include them."
        )
    elif missing:
        out.note = f"{missing} of {len(rel)} validation images are gone; the rest are shown."
    return out


def _predict(bundle: Bundle, val: _Validation, config: ReportConfig, reporter: Reporter) -> None:
    """Probabilities for the validation images with the bundle's ONNX model (as served)."""
    from littlevision.data.decode import iter_decoded
    from littlevision.inference import Predictor

    predictor = Predictor.from_bundle(bundle)
    probs = np.zeros((len(val.paths), len(bundle.labels)), np.float32)
    ok = np.zeros(len(val.paths), bool)
    with reporter.stage("report: predict validation", total=len(val.paths)) as st:
        for batch in iter_decoded(val.paths, bundle.image_size, batch_size=config.batch_size):
            val.failures.extend(batch.failures)
            if len(batch.ok_indices):
                probs[batch.ok_indices] = predictor.predict_array(batch.images)
                ok[batch.ok_indices] = True
            st.advance(len(batch.ok_indices) + len(batch.failures))
    val.paths = [p for p, keep in zip(val.paths, ok, strict=True) if keep]
    val.y = val.y[ok]
    val.probabilities = probs[ok]


def _relative(path: Path, root: Path | None) -> str:
    try:
        return str(path.relative_to(root)) if root else str(path)
    except ValueError:
        return str(path)


def _jpeg_uri(image: np.ndarray, thumb: int) -> str:
    return _imaging.data_uri(
        _imaging.encode(_imaging.fit_within(image, thumb), "JPEG", 85), "image/jpeg"
    )


def _png_uri(data: bytes) -> str:
    return _imaging.data_uri(data, "image/png")


def _pick_examples(val: _Validation, config: ReportConfig) -> tuple[list[int], list[int]]:
    probs = val.probabilities
    pred = probs.argmax(axis=1)
    p_true = probs[np.arange(len(probs)), val.y]
    wrong = np.flatnonzero(pred != val.y)
    wrong = wrong[np.argsort(p_true[wrong], kind="stable")][: config.n_top_losses]
    right = np.flatnonzero(pred == val.y)
    rng = np.random.default_rng(config.seed)
    right = np.sort(rng.choice(right, size=min(config.n_correct, len(right)), replace=False))
    return wrong.tolist(), right.tolist()


def _explained_examples(
    explainer,
    val: _Validation,
    labels: list[str],
    wrong: list[int],
    right: list[int],
    config: ReportConfig,
    reporter: Reporter,
) -> tuple[list[dict], list[dict], np.ndarray | None]:
    """Grad-CAM for the chosen images: predicted class for all, true class too for mistakes."""
    from littlevision.data.decode import load_image

    chosen = wrong + right
    originals, kept = [], []
    for i in chosen:
        try:
            originals.append(_imaging.fit_within(load_image(val.paths[i]), 2 * config.thumb))
            kept.append(i)
        except Exception:  # decoded a moment ago; a file changed meanwhile is just left out
            continue
    if not kept:
        return [], [], None
    size = explainer.image_size if explainer is not None else None
    with reporter.stage("report: Grad-CAM", total=len(kept)) as st:
        pred_maps = true_maps = None
        if explainer is not None:
            pred_cls = [int(val.probabilities[i].argmax()) for i in kept]
            true_cls = [int(val.y[i]) for i in kept]
            pred_maps = explainer.gradcam(originals, pred_cls).heatmaps
            is_wrong = [i in set(wrong) for i in kept]
            wrong_imgs = [o for o, w in zip(originals, is_wrong, strict=True) if w]
            wrong_true = [c for c, w in zip(true_cls, is_wrong, strict=True) if w]
            true_maps = (
                iter(explainer.gradcam(wrong_imgs, wrong_true).heatmaps) if wrong_imgs else iter(())
            )
        st.advance(len(kept))
    bad, good = [], []
    for k, (i, img) in enumerate(zip(kept, originals, strict=True)):
        p = val.probabilities[i]
        pred, true = int(p.argmax()), int(val.y[i])
        item = {
            "file": _relative(val.paths[i], val.root),
            "true": labels[true],
            "predicted": labels[pred],
            "p_predicted": float(p[pred]),
            "p_true": float(p[true]),
            "image": _jpeg_uri(img, config.thumb),
            "cam_predicted": None,
            "cam_true": None,
            "true_empty": False,
        }
        if pred_maps is not None:
            item["cam_predicted"] = _jpeg_uri(
                explainer.overlay(img, pred_maps[k], max_side=None), config.thumb
            )
            if pred != true:
                true_map = next(true_maps)
                item["true_empty"] = bool(true_map.max() <= 0)
                item["cam_true"] = _jpeg_uri(
                    explainer.overlay(img, true_map, max_side=None), config.thumb
                )
        (bad if pred != true else good).append(item)
    right_set = set(right)
    pick = next(
        (img for i, img in zip(kept, originals, strict=True) if i in right_set), originals[0]
    )
    return bad, good, (_imaging.resize_square(pick, size) if size else None)


class _Notes:
    """Collects per-section problems so one failing explanation does not lose the report."""

    def __init__(self, strict: bool, reporter: Reporter):
        self.strict = strict
        self.reporter = reporter
        self.items: dict[str, list[str]] = {}
        self.seconds: dict[str, float] = {}  # wall time spent in each guarded step
        self.cpu_seconds: dict[str, float] = {}  # CPU time (all threads) in each step

    def add(self, section: str, text: str) -> None:
        self.items.setdefault(section, []).append(text)

    def guard(self, section: str, what: str):
        notes = self

        class _Guard:
            def __enter__(self):
                self.start, self.cpu = time.perf_counter(), time.process_time()
                return self

            def __exit__(self, exc_type, exc, tb):
                notes.seconds[what] = (
                    notes.seconds.get(what, 0.0) + time.perf_counter() - self.start
                )
                notes.cpu_seconds[what] = (
                    notes.cpu_seconds.get(what, 0.0) + time.process_time() - self.cpu
                )
                if exc is None or notes.strict or isinstance(exc, KeyboardInterrupt):
                    return False
                notes.add(section, f"Could not {what}: {type(exc).__name__}: {exc}")
                notes.reporter.log(f"report: could not {what}: {exc}")
                return True

        return _Guard()


def _doctor_findings(run: Path) -> list[dict]:
    """Doctor reports saved in the run folder (``doctor*.json``), reduced to a table each."""
    out = []
    for path in sorted(run.glob("doctor*.json")):
        data = _read_json(path)
        if data is None:
            continue
        rows = (
            data
            if isinstance(data, list)
            else next(
                (
                    v
                    for v in (data.values() if isinstance(data, dict) else [])
                    if isinstance(v, list) and v and all(isinstance(r, dict) for r in v)
                ),
                [],
            )
        )
        rows = [r for r in rows if isinstance(r, dict)]
        preferred = ["severity", "level", "check", "name", "message", "count", "files", "paths"]
        keys = list(dict.fromkeys(k for r in rows for k in r))
        columns = [k for k in preferred if k in keys] or keys[:6]
        summary = (
            {k: v for k, v in data.items() if isinstance(v, (str, int, float, bool))}
            if isinstance(data, dict)
            else {}
        )
        inner = data.get("summary") if isinstance(data, dict) else None
        if isinstance(inner, dict):  # the doctor's own Report.to_json() layout
            summary.update({k: inner[k] for k in ("n_images", "n_findings") if k in inner})
            if isinstance(inner.get("by_severity"), dict):
                summary.update(inner["by_severity"])

        def cell(v):
            if isinstance(v, list):
                text = ", ".join(map(str, v[:5])) + (f" … (+{len(v) - 5})" if len(v) > 5 else "")
            elif isinstance(v, dict):
                text = ", ".join(f"{a}: {b}" for a, b in list(v.items())[:5])
            else:
                text = "" if v is None else str(v)
            return text if len(text) <= 300 else text[:297] + "…"

        out.append(
            {
                "file": path.name,
                "summary": summary,
                "columns": columns,
                "rows": [[cell(r.get(c)) for c in columns] for r in rows[:100]],
                "n_rows": len(rows),
            }
        )
    return out


def _file_sizes(run: Path) -> list[tuple[str, str]]:
    def human(n: int) -> str:
        for unit in ("B", "KB", "MB", "GB"):
            if n < 1024 or unit == "GB":
                return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
            n /= 1024
        return str(n)

    return [
        (p.name, human(p.stat().st_size))
        for p in sorted(run.iterdir())
        if p.is_file() and p.name != "report.html"
    ]


def _auto_search(card: dict[str, Any], notes) -> dict[str, Any] | None:
    """``auto``'s candidates, why the winner won, and their accuracy / speed frontier plot."""
    auto = (card.get("recipe_info") or {}).get("auto") or {}
    if not auto.get("candidates"):
        return None
    out = {**auto, "frontier": None}
    done = [c for c in auto["candidates"] if c.get("status") == "done" and c.get("images_per_s")]
    if len(done) > 1:
        with notes.guard("card", "draw auto's accuracy / speed frontier"):
            import tempfile

            from littlevision.training.comparison import plot_frontier

            with tempfile.TemporaryDirectory() as tmp:
                png = plot_frontier(
                    [f"{c['backbone']} {c['recipe']}" for c in done],
                    [c["cv_accuracy"] for c in done],
                    [c["images_per_s"] for c in done],
                    Path(tmp) / "frontier.png",
                    ylabel="cross-validated accuracy on the training split (%)",
                ).read_bytes()
            out["frontier"] = _png_uri(png)
    return out


def build_context(
    bundle: Bundle,
    reporter: Reporter = NULL,
    config: ReportConfig = ReportConfig(),
    data_root: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Everything the template shows, computed (images encoded) but not yet rendered.

    One step per part of the page; a step that fails leaves a note in its section (or raises,
    with ``config.strict``) and the others still run.
    """
    started = time.perf_counter()
    notes = _Notes(config.strict, reporter)
    ctx: dict[str, Any] = {
        "title": f"littlevision report: {bundle.name}",
        "name": bundle.name,
        "card": bundle.card,
        "labels": bundle.labels,
        "metrics": bundle.metrics or {},
        "sections": SECTIONS,
        "notes": notes.items,
        "data": bundle.card.get("data", {}),
    }
    _data_section(ctx, bundle)
    _cost_section(ctx, bundle, notes)
    _training_section(ctx, bundle, notes)
    val = _validation_section(ctx, bundle, data_root, config, notes, reporter)
    explainer = _load_explainer(bundle, notes, reporter)
    keras_model = explainer.model if explainer is not None else None
    ctx["gradcam_layer"] = explainer.layer_.path if explainer is not None else None
    first_image = _examples_section(ctx, explainer, val, bundle.labels, config, notes, reporter)
    ctx.update(feature_maps=None, filters=None, filter_am=None, class_am=None, n_params=None)
    if keras_model is not None:
        ctx["n_params"] = int(keras_model.count_params())
        _feature_maps_section(ctx, keras_model, first_image, notes, reporter)
        _filters_section(ctx, keras_model, bundle.labels, config, notes, reporter)
    else:
        for section in ("feature-maps", "filters"):
            notes.add(
                section, "These need the Keras model (model.keras), which could not be loaded."
            )
    ctx["files"] = _file_sizes(bundle.path)
    ctx["report_seconds"] = time.perf_counter() - started
    ctx["report_timings"] = {k: round(v, 2) for k, v in notes.seconds.items()}
    ctx["report_cpu_timings"] = {k: round(v, 2) for k, v in notes.cpu_seconds.items()}
    return ctx


def _data_section(ctx: dict[str, Any], bundle: Bundle) -> None:
    """Counts per class, skipped files, the loader's summary and the doctor's findings."""
    data = ctx["data"]
    classes = data.get("classes") or bundle.labels
    ctx["counts"] = [
        (c, data.get("counts_train", {}).get(c, 0), data.get("counts_val", {}).get(c, 0))
        for c in classes
    ]
    ctx["skipped"] = data.get("skipped", [])
    load_report = data.get("load_report")
    ctx["load_report"] = (
        "; ".join(f"{k}: {v}" for k, v in load_report.items() if v)
        if isinstance(load_report, dict)
        else load_report
    )
    ctx["doctor"] = _doctor_findings(bundle.path)


def _cost_section(ctx: dict[str, Any], bundle: Bundle, notes: _Notes) -> None:
    """What the model costs per image, and how ``auto`` chose it (with its frontier plot)."""
    from littlevision.models.cost import describe_cost

    ctx["cost_line"] = describe_cost(bundle.card.get("cost"))
    ctx["auto"] = _auto_search(bundle.card, notes)


def _training_section(ctx: dict[str, Any], bundle: Bundle, notes: _Notes) -> None:
    """The learning curves and the confusion matrix, from the run's files."""
    history = _read_json(bundle.path / "history.json")
    ctx["curves"] = None
    if isinstance(history, dict) and history:
        with notes.guard("curves", "draw the learning curves"):
            png = _plots.learning_curves_png(history)
            ctx["curves"] = _png_uri(png) if png else None
    metrics, labels = ctx["metrics"], bundle.labels
    ctx["confusion"] = None
    if metrics.get("confusion"):
        with notes.guard("confusion", "draw the confusion matrix"):
            cm = metrics["confusion"]
            ctx["confusion"] = {
                "image": _png_uri(_plots.confusion_png(cm, metrics.get("classes", labels))),
                "rows": cm,
                "classes": metrics.get("classes", labels),
            }


def _validation_section(ctx, bundle, data_root, config, notes, reporter):
    """Predict the validation images (when found) and draw the calibration; the files."""
    val = _validation_files(bundle, data_root)
    if val.note:
        for section in ("calibration", "top-losses", "correct"):
            notes.add(section, val.note)
    ctx.update(calibration=None, top_losses=[], correct=[], n_wrong=0, val_n=0)
    if val.paths:
        with notes.guard("calibration", "predict the validation images"):
            _predict(bundle, val, config, reporter)
    if val.probabilities is not None and len(val.paths):
        cal = _plots.calibration(val.probabilities, val.y)
        ctx["calibration"] = {
            "image": _png_uri(_plots.reliability_png(cal)),
            "ece": cal.ece,
            "accuracy": float((val.probabilities.argmax(1) == val.y).mean()),
        }
        ctx["val_n"] = len(val.paths)
        ctx["n_wrong"] = int((val.probabilities.argmax(1) != val.y).sum())
    if val.failures:
        notes.add("calibration", f"{len(val.failures)} validation image(s) could not be decoded.")
    return val


def _load_explainer(bundle: Bundle, notes: _Notes, reporter: Reporter):
    """The Grad-CAM explainer (its Keras model serves the other sections), or None."""
    if not bundle.keras_path.is_file():
        notes.add(
            "top-losses",
            "This run has no model.keras, which Grad-CAM needs (only the "
            "ONNX model was kept); the photos are shown without it.",
        )
        return None
    explainer = None
    with (
        notes.guard("top-losses", "load the Keras model for Grad-CAM"),
        reporter.stage("report: load model"),
    ):
        from littlevision.explain._gradcam import get_explainer

        explainer = get_explainer(bundle)
    return explainer


def _examples_section(ctx, explainer, val, labels, config, notes, reporter):
    """Top losses and confident correct answers, with Grad-CAM; the first image shown."""
    if val.probabilities is None or not len(val.paths):
        return None
    first_image = None
    wrong, right = _pick_examples(val, config)
    with notes.guard("top-losses", "explain the examples"):
        ctx["top_losses"], ctx["correct"], first_image = _explained_examples(
            explainer, val, labels, wrong, right, config, reporter
        )
    if explainer is None:
        notes.add(
            "correct",
            "Grad-CAM needs the Keras model (model.keras), which could not be "
            "loaded; the photos are shown without it.",
        )
    return first_image


def _feature_maps_section(ctx, keras_model, first_image, notes, reporter) -> None:
    """The feature maps of one validation image."""
    from littlevision.explain._feature_maps import feature_maps, feature_maps_figure

    if first_image is None:
        notes.add(
            "feature-maps",
            "Feature maps are drawn for a validation image, and none is available.",
        )
        return
    with (
        notes.guard("feature-maps", "compute feature maps"),
        reporter.stage("report: feature maps"),
    ):
        maps = feature_maps(keras_model, first_image)
        fig = feature_maps_figure(maps, first_image, max_channels=16, tile=48)
        ctx["feature_maps"] = _png_uri(_imaging.figure_png(fig, dpi=80))


def _filters_section(ctx, keras_model, labels, config, notes, reporter) -> None:
    """First-layer filters, and the patterns that excite filters and classes most."""
    from littlevision.explain import filters as flt

    with notes.guard("filters", "draw the first-layer filters"):
        ctx["filters"] = {
            "image": _png_uri(_imaging.encode(flt.filters_grid(keras_model))),
            "layer": flt.first_conv_layer(keras_model).path,
            "n": len(flt.first_layer_filters(keras_model)),
        }
    with (
        notes.guard("filters", "synthesise filter patterns"),
        reporter.stage("report: filter patterns"),
    ):
        layer = flt.default_filter_layer(keras_model)
        n = min(config.n_filters, int(layer.output_shape[-1]))
        images = flt.maximize_activation(
            keras_model, layer.path, list(range(n)), config.filter_ascent
        )
        ctx["filter_am"] = {
            "layer": layer.path,
            "items": [
                {"caption": f"filter {i}", "image": _png_uri(_imaging.encode(img))}
                for i, img in enumerate(images)
            ],
        }
    with (
        notes.guard("filters", "synthesise class patterns"),
        reporter.stage("report: class patterns"),
    ):
        shown = list(range(min(config.max_class_images, len(labels))))
        images = flt.maximize_class(keras_model, shown, config.class_ascent)
        ctx["class_am"] = {
            "n_total": len(labels),
            "items": [
                {"caption": labels[c], "image": _png_uri(_imaging.encode(img))}
                for c, img in zip(shown, images, strict=True)
            ],
        }


def render_report(ctx: dict[str, Any]) -> str:
    """The HTML page for a context from :func:`build_context` (template shipped as package data)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("littlevision.explain", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda x: "–" if x is None else f"{100 * float(x):.1f}%"
    env.filters["num"] = lambda x, d=3: "–" if x is None else f"{float(x):.{d}f}"
    env.filters["fmt"] = lambda x: f"{x:.4g}" if isinstance(x, float) else x
    return env.get_template("report.html.j2").render(**ctx)


def write_report(
    bundle: Bundle | str | os.PathLike,
    path: str | os.PathLike | None = None,
    reporter: Reporter = NULL,
    *,
    config: ReportConfig = ReportConfig(),
    data_root: str | os.PathLike | None = None,
) -> Path:
    """Write the run's report as one self-contained HTML file.

    Args:
        bundle: A Bundle or a run folder.
        path: The HTML file to write; ``RUN/report.html`` by default.
        reporter: Receives progress.
        config: What to show and how much work to do.
        data_root: Where the training data lives now, if it moved since training.

    Returns:
        The path written.

    Raises:
        UserError: when ``bundle`` is not a run folder.
    """
    if not isinstance(bundle, Bundle):
        bundle = Bundle.load(bundle)
    if data_root is not None and not Path(data_root).is_dir():
        raise UserError(f"No such data folder: '{data_root}'.")
    out = Path(path) if path is not None else bundle.path / "report.html"
    ctx = build_context(bundle, reporter, config, data_root)
    html = render_report(ctx)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, html)
    return out
