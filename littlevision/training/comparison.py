"""``compare``: the tutorial's table on the user's own data.

Each recipe (on each backbone of ``--backbones``) is trained on the SAME split (same data, same
seed) into its own run folder, then measured the same way: validation accuracy and log-loss,
training time, inference speed with ONNX Runtime (the way ``predict`` and ``serve`` run it,
decoding excluded) and model size. For cats vs dogs the tutorial's published figures are shown
beside ours. The accuracy / inference-speed frontier (``compare-frontier.png``, in the Markdown
and ``compare.html``) shows what a slower model buys on this data: a run is on the frontier when
no other run is both at least as accurate and at least as fast.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from littlevision._io import atomic_path, write_json
from littlevision._system import machine
from littlevision.bundle import Bundle
from littlevision.errors import UserError
from littlevision.inference import Predictor
from littlevision.progress import Reporter, default_reporter, format_duration

__all__ = [
    "TUTORIAL_FIGURES",
    "CompareRow",
    "Comparison",
    "compare",
    "compare_runs",
    "frontier",
    "inference_speed",
    "plot_frontier",
]

#: Validation accuracy reported by the Keras blog tutorial (2016) on 1000 + 1000 training and
#: 400 + 400 validation images of cats and dogs: small convnet from scratch, VGG16 bottleneck
#: features + small classifier, fine-tuning VGG16's last conv block.
TUTORIAL_FIGURES = {"scratch": 0.80, "bottleneck": 0.90, "finetune": 0.94}
TUTORIAL_MODELS = {
    "scratch": "small convnet, 50 epochs",
    "bottleneck": "VGG16 features",
    "finetune": "VGG16 block 5 fine-tuned",
}


@dataclass
class CompareRow:
    """One recipe's measurements."""

    recipe: str
    accuracy: float
    log_loss: float
    train_s: float
    images_per_s: float
    model_mb: float
    run: str
    image_size: int
    backbone: str | None = None
    tutorial_accuracy: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    on_frontier: bool = False

    @property
    def label(self) -> str:
        return f"{self.recipe} {self.backbone}" if self.backbone else self.recipe


def frontier(points: list[tuple[float, float]]) -> list[bool]:
    """Which (accuracy, speed) points no other point beats on both (ties count as beaten)."""
    out = []
    for i, (acc, speed) in enumerate(points):
        dominated = any(
            a >= acc and s >= speed and (a > acc or s > speed)
            for j, (a, s) in enumerate(points)
            if j != i
        )
        out.append(not dominated)
    return out


def plot_frontier(
    labels: list[str],
    accuracy: list[float],
    speed: list[float],
    path: Path,
    title: str = "",
    ylabel: str = "validation accuracy (%)",
) -> Path:
    """Accuracy (%) against inference img/s, the frontier joined by a line, as a PNG.

    Args:
        labels: One name per point (``bottleneck lite2``).
        accuracy: Accuracy per point, 0..1.
        speed: Images per second per point.
        path: The PNG to write.
        title: Above the plot.
        ylabel: What the accuracy is measured on.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes([0.1, 0.13, 0.86, 0.76])
    acc = [100 * a for a in accuracy]
    front = frontier(list(zip(acc, speed, strict=True)))
    for on, marker, colour, name in (
        (True, "o", "#2b6cb0", "on the frontier"),
        (False, "x", "#a0aec0", "beaten on both"),
    ):
        xs = [s for s, f in zip(speed, front, strict=True) if f == on]
        ys = [a for a, f in zip(acc, front, strict=True) if f == on]
        if xs:
            ax.scatter(xs, ys, marker=marker, color=colour, s=40, label=name, zorder=3)
    pts = sorted((s, a) for s, a, f in zip(speed, acc, front, strict=True) if f)
    if len(pts) > 1:
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color="#2b6cb0", alpha=0.5, zorder=2)
    for name, s, a in zip(labels, speed, acc, strict=True):
        ax.annotate(name, (s, a), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlabel("inference speed (images/s, ONNX Runtime; faster is right)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if speed:
        ax.set_xlim(0, max(speed) * 1.25)
        ax.set_ylim(min(acc) - max(2.0, 0.15 * (max(acc) - min(acc))), min(max(acc) + 2.0, 101))
    ax.legend(loc="lower left", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    return path


@dataclass
class Comparison:
    """All rows, plus what they were measured on."""

    rows: list[CompareRow]
    classes: list[str]
    n_train: int
    n_val: int
    seed: int
    machine: str
    is_cats_vs_dogs: bool = False

    HEAD = (
        "recipe",
        "validation accuracy",
        "log-loss",
        "training time",
        "inference img/s",
        "model size",
    )
    TUTORIAL_HEAD = "tutorial (2016)"

    def head(self) -> list[str]:
        """The table's column names (the tutorial's column for cats vs dogs)."""
        return [*self.HEAD, *([self.TUTORIAL_HEAD] if self.is_cats_vs_dogs else [])]

    def cells(self, sizes: bool = True, tutorial: bool = True) -> list[list[str]]:
        """The table's rows as text: one source for compare.md, the terminal, the notebook
        and compare.png.

        Args:
            sizes: Name each recipe with its backbone and input size (``bottleneck (lite0,
                224 px)``).
            tutorial: Add the tutorial's figure for cats vs dogs.
        """
        rows = []
        for r in self.rows:
            name = r.recipe if sizes else self.name(r)  # sizes name the backbone
            if sizes:
                name += (
                    f" ({r.backbone}, {r.image_size} px)" if r.backbone else f" ({r.image_size} px)"
                )
            row = [
                name,
                f"{100 * r.accuracy:.2f}%",
                f"{r.log_loss:.3f}",
                format_duration(r.train_s),
                f"{r.images_per_s:.0f}",
                f"{r.model_mb:.1f} MB",
            ]
            if tutorial and self.is_cats_vs_dogs:
                t = r.tutorial_accuracy
                row.append(f"~{100 * t:.0f}% ({TUTORIAL_MODELS.get(r.recipe, '')})" if t else "-")
            rows.append(row)
        return rows

    def markdown(self) -> str:
        """The table as GitHub Markdown."""
        head = self.head()
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(cells) + " |" for cells in self.cells()]
        lines.append("")
        lines.append(
            f"{self.n_train} training and {self.n_val} validation images, classes "
            f"{', '.join(self.classes)}; seed {self.seed}; same split for every recipe; "
            f"{self.machine}. Inference: ONNX Runtime, batches of 32, decoding excluded."
        )
        on = [f"{r.label} ({r.image_size} px)" for r in self.rows if r.on_frontier]
        lines.append("")
        lines.append(
            f"Accuracy / speed frontier (no other run is both at least as accurate and at least "
            f"as fast): {', '.join(on)}."
        )
        lines.append("")
        lines.append("![validation accuracy against inference speed](compare-frontier.png)")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def many_backbones(self) -> bool:
        """Whether rows differ by backbone (then they are named ``recipe backbone``)."""
        return len({r.backbone for r in self.rows if r.backbone}) > 1

    def name(self, row: CompareRow) -> str:
        """The row's short name: its recipe, with the backbone when that varies."""
        return row.label if self.many_backbones else row.recipe

    def __repr__(self) -> str:
        shown = ", ".join(f"{r.label} {100 * r.accuracy:.2f}%" for r in self.rows)
        return f"Comparison({shown}; {self.n_train} train / {self.n_val} validation images)"

    def _repr_html_(self) -> str:
        """Jupyter shows the table."""
        from littlevision._display import comparison_html

        return comparison_html(self)


def inference_speed(
    bundle: Bundle, images: np.ndarray, batch_size: int = 32, min_seconds: float = 2.0
) -> float:
    """Images per second through the bundle's ONNX model (decoded images, warm session)."""
    predictor = Predictor.from_bundle(bundle)
    batch = images[:batch_size]
    if len(batch) < batch_size:  # too few validation images: repeat them to a full batch
        batch = np.resize(batch, (batch_size, *batch.shape[1:]))
    predictor.predict_array(batch)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_seconds or n < 2 * batch_size:
        predictor.predict_array(batch)
        n += len(batch)
    return n / (time.perf_counter() - t0)


def _is_cats_vs_dogs(classes: list[str]) -> bool:
    names = sorted(c.lower().rstrip("s") for c in classes)
    return names == ["cat", "dog"]


def compare(
    data,
    output: str | os.PathLike,
    recipes: list[str] | tuple[str, ...] = ("scratch", "bottleneck", "finetune"),
    config=None,
    epochs: int | None = None,
    reporter: Reporter | None = None,
    backbones: list[str] | tuple[str, ...] | str | None = None,
) -> Comparison:
    """Train every recipe (on every backbone) on the same split and measure each the same way.

    Args:
        data: A Dataset, or a folder / CSV path.
        output: Folder for one run folder per recipe and ``compare.md``, ``compare.png``,
            ``compare.json``.
        recipes: Registered recipe names.
        config: A :class:`~littlevision.training.run.TrainConfig` for split, seed, backbone and
            image size (its ``recipe`` is ignored).
        epochs: Epochs for the recipes that train by epochs (their default when None).
        reporter: Receives progress.
        backbones: Backbones for the recipes that take one (every pair is trained; ``scratch``
            and ``auto`` once); ``config.backbone`` when None. Run folders are then named
            ``RECIPE-BACKBONE``.

    Returns:
        The :class:`Comparison` (also written to ``output``: ``compare.md``, ``compare.json``,
        ``compare.png``, ``compare-frontier.png``, ``compare.html``).
    """
    from dataclasses import replace

    from littlevision.training.registry import get_recipe_class, list_recipes
    from littlevision.training.run import TrainConfig, train

    reporter = reporter or default_reporter()
    recipes = [r.strip() for r in recipes if r.strip()]
    known = list_recipes()
    unknown = [r for r in recipes if r not in known]
    if unknown or not recipes:
        raise UserError(
            f"Unknown recipe '{unknown[0] if unknown else ''}'. Known recipes: {', '.join(known)}."
        )
    if len(set(recipes)) != len(recipes):
        raise UserError(f"A recipe is named twice in --recipes: {','.join(recipes)}.")
    config = config or TrainConfig()
    names = _backbone_names(backbones)
    if isinstance(data, (str, os.PathLike)):
        from littlevision.data.source import open_dataset

        data = open_dataset(data)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    _, val = data.split(val_fraction=config.val_split, seed=config.seed)
    rows: list[CompareRow] = []
    probe_images = None

    def varies(name: str) -> bool:
        """Whether ``--backbones`` applies: the recipe takes one backbone (auto searches its own)."""
        params = get_recipe_class(name).param_names()
        return bool(names) and "backbone" in params and "backbones" not in params

    pairs = [(name, bb) for name in recipes for bb in (names if varies(name) else (None,))]
    for name, bb in pairs:
        folder = f"{name}-{bb}" if bb and len(names) > 1 else name
        reporter.log(f"compare: training {folder}")
        params = get_recipe_class(name).settings(epochs=epochs or None)
        t0 = time.perf_counter()
        cfg = replace(config, recipe=name, backbone=bb or config.backbone)
        bundle = train(data, output / folder, cfg, reporter=reporter, **params)
        elapsed = time.perf_counter() - t0
        if probe_images is None or probe_images.shape[1] != bundle.image_size:
            probe_images = _probe_images(val.paths, bundle.image_size)
        with reporter.stage(f"inference speed {name}"):
            speed = inference_speed(bundle, probe_images)
        rows.append(_row(bundle, speed, elapsed, name))
        reporter.log(
            f"compare: {folder}: accuracy {100 * rows[-1].accuracy:.1f}%, "
            f"{format_duration(rows[-1].train_s)}, {rows[-1].images_per_s:.0f} img/s"
        )
    for row, on in zip(rows, frontier([(r.accuracy, r.images_per_s) for r in rows]), strict=True):
        row.on_frontier = on
    result = _comparison(rows, config.seed)
    (output / "compare.md").write_text(result.markdown(), encoding="utf-8")
    write_json(output / "compare.json", result.to_dict())
    plot_comparison(result, output / "compare.png")
    plot_frontier(
        [r.label for r in rows],
        [r.accuracy for r in rows],
        [r.images_per_s for r in rows],
        output / "compare-frontier.png",
        title=f"{result.n_train} train / {result.n_val} validation images: what speed buys",
    )
    _write_html(result, output)
    return result


def _backbone_names(backbones) -> list[str]:
    """Validated ``--backbones`` (a comma-separated string or a sequence); [] when None."""
    from littlevision.models import list_backbones

    if backbones is None:
        return []
    if isinstance(backbones, str):
        backbones = backbones.split(",")
    names = [b.strip() for b in backbones if b.strip()]
    known = list_backbones()
    for name in names:
        if name not in known:
            raise UserError(f"Unknown backbone '{name}'. Known backbones: {', '.join(known)}.")
    if len(set(names)) != len(names):
        raise UserError(f"A backbone is named twice in --backbones: {','.join(names)}.")
    return names


def _write_html(result: Comparison, output: Path) -> Path:
    """``compare.html``: the table and both plots in one self-contained page."""
    import base64
    import html

    def img(name: str, alt: str) -> str:
        data = base64.b64encode((output / name).read_bytes()).decode()
        return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'

    head = ["run", "frontier", "accuracy", "log-loss", "training", "img/s", "size"]
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(c))}</td>"
            for c in (
                f"{r.label} ({r.image_size} px)",
                f"{100 * r.accuracy:.2f}%",
                f"{r.log_loss:.3f}",
                format_duration(r.train_s),
                f"{r.images_per_s:.0f}",
                f"{r.model_mb:.1f} MB",
            )
        )
        + "</tr>"
        for r in result.rows
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>littlevision compare</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}td,th{padding:.2em"
        " .6em;text-align:right}td:first-child{text-align:left}img{max-width:100%}</style>"
        f"</head><body><h1>compare: {html.escape(', '.join(result.classes))}</h1>"
        f"<p>{result.n_train} training / {result.n_val} validation images, same split, seed "
        f"{result.seed}; {html.escape(result.machine)}.</p>"
        "<h2>Accuracy against inference speed</h2><p>On the frontier: no other run is both at "
        "least as accurate and at least as fast. Moving right along it buys speed, up buys "
        "accuracy.</p>"
        + img("compare-frontier.png", "validation accuracy against inference speed")
        + "<h2>Table</h2><table><tr>"
        + "".join(f"<th>{h}</th>" for h in head)
        + f"</tr>{body}</table>"
        + img("compare.png", "validation accuracy per run")
        + "</body></html>"
    )
    path = output / "compare.html"
    path.write_text(page, encoding="utf-8")
    return path


def _row(
    bundle: Bundle, speed: float, elapsed: float | None, name: str | None = None
) -> CompareRow:
    """One bundle's line of the table, from its card and metrics and the measured speed."""
    card = bundle.card
    name = name or str(card.get("recipe", bundle.name))
    tutorial = TUTORIAL_FIGURES.get(name) if _is_cats_vs_dogs(bundle.labels) else None
    timings = card.get("timings", {})
    return CompareRow(
        recipe=name,
        accuracy=float(bundle.metrics["accuracy"]),
        log_loss=float(bundle.metrics["log_loss"]),
        train_s=float(timings.get("total_s", elapsed if elapsed is not None else 0.0)),
        images_per_s=float(speed),
        model_mb=bundle.onnx_path.stat().st_size / 1e6,
        run=str(bundle.path),
        image_size=bundle.image_size,
        backbone=card.get("backbone"),
        tutorial_accuracy=tutorial,
        info={
            k: v
            for k, v in card.get("recipe_info", {}).items()
            if k in ("chosen", "epochs_run", "best_epoch", "seconds_per_epoch", "auto")
        },
    )


def _comparison(rows: list[CompareRow], seed: int) -> Comparison:
    first = Bundle.load(rows[0].run).card["data"]
    return Comparison(
        rows=rows,
        classes=list(first["classes"]),
        n_train=int(first["n_train"]),
        n_val=int(first["n_val"]),
        seed=seed,
        machine=machine(),
        is_cats_vs_dogs=_is_cats_vs_dogs(first["classes"]),
    )


def _validation_files(bundle: Bundle) -> list[str]:
    """The validation files a run's ``split.json`` lists, absolute where its root is known."""
    split = json.loads((bundle.path / "split.json").read_text(encoding="utf-8"))
    root = split.get("root")
    subset = split.get("subsets", {}).get("validation", {})
    files = [rel for label in sorted(subset) for rel in subset[label]]
    return [str(Path(root) / rel) if root else rel for rel in files]


def compare_runs(
    runs: list[str | os.PathLike | Bundle], reporter: Reporter | None = None
) -> Comparison:
    """The comparison table for runs trained already (one by one, as in the tutorial notebook).

    Each run is measured as :func:`compare` measures it: its validation metrics from the
    bundle, its training time from its card, its ONNX Runtime speed now.

    Args:
        runs: Run folders or Bundles, in the table's order.
        reporter: Receives progress.

    Raises:
        UserError: No run, a folder that is not a run, or runs validated on different images
            (their accuracies could not be compared).
    """
    reporter = reporter or default_reporter()
    bundles = [r if isinstance(r, Bundle) else Bundle.load(r) for r in runs]
    if not bundles:
        raise UserError("Give at least one run folder to compare.")
    files = [_validation_files(b) if (b.path / "split.json").is_file() else None for b in bundles]
    if any(f != files[0] for f in files[1:]):
        raise UserError(
            "These runs were validated on different images, so their accuracies cannot be "
            "compared: train them on the same data with the same --val-split and --seed."
        )
    rows, probe = [], None
    for bundle in bundles:
        if probe is None or probe.shape[1] != bundle.image_size:
            probe = _probe_images(files[0] or [], bundle.image_size)
        with reporter.stage(f"inference speed {bundle.name}"):
            rows.append(_row(bundle, inference_speed(bundle, probe), None))
    return _comparison(rows, int(bundles[0].card.get("seed", 0)))


def _probe_images(paths, size: int, n: int = 32) -> np.ndarray:
    """Real validation images decoded at ``size``, for the speed measurement."""
    from littlevision.data.decode import decode_many

    images = decode_many(list(paths)[:n], size).images
    if len(images) == 0:
        rng = np.random.default_rng(0)  # none readable: the speed does not depend on the pixels
        images = rng.integers(0, 256, (n, size, size, 3), np.uint8)
    return images


def plot_comparison(result: Comparison, path: Path) -> Path:
    """Accuracy bars (ours vs the tutorial's when known) above the table, as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = result.rows
    fig = Figure(figsize=(9, 3.2 + 0.35 * len(rows)), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes([0.08, 0.36, 0.88, 0.54])
    x = np.arange(len(rows))
    width = 0.38 if result.is_cats_vs_dogs else 0.6
    ours = [100 * r.accuracy for r in rows]
    bars = ax.bar(
        x - (width / 2 if result.is_cats_vs_dogs else 0),
        ours,
        width,
        label="littlevision (this data)",
        color="#2b6cb0",
    )
    ax.bar_label(bars, fmt="%.2f%%", fontsize=8)
    if result.is_cats_vs_dogs:
        theirs = [100 * (r.tutorial_accuracy or 0) for r in rows]
        bars = ax.bar(x + width / 2, theirs, width, label="Keras tutorial (2016)", color="#a0aec0")
        ax.bar_label(bars, fmt="~%.0f%%", fontsize=8)
    ax.set_xticks(x, [result.name(r) for r in rows], fontsize=8 if len(rows) > 4 else None)
    low = min(
        ours
        + ([100 * (r.tutorial_accuracy or 100) for r in rows] if result.is_cats_vs_dogs else [])
    )
    ax.set_ylim(max(0, low - 10), 101)
    ax.set_ylabel("validation accuracy (%)")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    table = fig.add_axes([0.02, 0.02, 0.96, 0.22])
    table.axis("off")
    cells = result.cells(sizes=False, tutorial=False)
    t = table.table(
        cellText=cells,
        colLabels=["recipe", "accuracy", "log-loss", "training", "img/s (ONNX)", "size"],
        loc="center",
    )
    t.auto_set_font_size(False)
    t.set_fontsize(8)
    fig.suptitle(
        f"{', '.join(result.classes)}: {result.n_train} train / {result.n_val} validation images",
        fontsize=10,
    )
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    return path
