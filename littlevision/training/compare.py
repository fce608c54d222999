"""``compare``: the tutorial's table on the user's own data.

Each recipe is trained on the SAME split (same data, same seed) into its own run folder, then
measured the same way: validation accuracy and log-loss, training time, inference speed with
ONNX Runtime (the way ``predict`` and ``serve`` run it, decoding excluded) and model size. For
cats vs dogs the tutorial's published figures are shown beside ours.
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
    "inference_speed",
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
            name = r.recipe
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
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __repr__(self) -> str:
        shown = ", ".join(f"{r.recipe} {100 * r.accuracy:.2f}%" for r in self.rows)
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
) -> Comparison:
    """Train every recipe on the same split and measure each the same way.

    Args:
        data: A Dataset, or a folder / CSV path.
        output: Folder for one run folder per recipe and ``compare.md``, ``compare.png``,
            ``compare.json``.
        recipes: Registered recipe names.
        config: A :class:`~littlevision.training.run.TrainConfig` for split, seed, backbone and
            image size (its ``recipe`` is ignored).
        epochs: Epochs for the recipes that train by epochs (their default when None).
        reporter: Receives progress.

    Returns:
        The :class:`Comparison` (also written to ``output``).
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
    if isinstance(data, (str, os.PathLike)):
        from littlevision.data.source import open_dataset

        data = open_dataset(data)
    config = config or TrainConfig()
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    _, val = data.split(val_fraction=config.val_split, seed=config.seed)
    rows: list[CompareRow] = []
    probe_images = None
    for name in recipes:
        reporter.log(f"compare: training {name}")
        params = get_recipe_class(name).settings(epochs=epochs or None)
        t0 = time.perf_counter()
        bundle = train(
            data, output / name, replace(config, recipe=name), reporter=reporter, **params
        )
        elapsed = time.perf_counter() - t0
        if probe_images is None or probe_images.shape[1] != bundle.image_size:
            probe_images = _probe_images(val.paths, bundle.image_size)
        with reporter.stage(f"inference speed {name}"):
            speed = inference_speed(bundle, probe_images)
        rows.append(_row(bundle, speed, elapsed, name))
        reporter.log(
            f"compare: {name}: accuracy {100 * rows[-1].accuracy:.1f}%, "
            f"{format_duration(rows[-1].train_s)}"
        )
    result = _comparison(rows, config.seed)
    (output / "compare.md").write_text(result.markdown(), encoding="utf-8")
    write_json(output / "compare.json", result.to_dict())
    plot_comparison(result, output / "compare.png")
    return result


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
    ax.set_xticks(x, [r.recipe for r in rows])
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
