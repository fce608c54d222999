"""One picture per image that tells its story: the photo, its Grad-CAM, the top classes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from littlevision.explain import _imaging
from littlevision.explain._plots import BLUE, GREY

__all__ = ["ExplainedImage", "explain_images", "explanation_png"]


@dataclass
class ExplainedImage:
    """What :func:`explain_images` did for one input file."""

    source: Path
    output: Path | None  # None when the file could not be read
    label: str | None = None
    score: float | None = None
    explained: str | None = None  # the class the heatmap is for
    error: str | None = None


def explanation_png(
    image: np.ndarray,
    overlay: np.ndarray,
    probabilities: np.ndarray,
    labels: Sequence[str],
    explained: int,
    title: str = "",
    top: int = 3,
) -> bytes:
    """The photo, the overlay and a bar chart of the ``top`` classes, side by side, as PNG."""
    from matplotlib.figure import Figure

    order = np.argsort(-probabilities)[:top][::-1]
    fig = Figure(figsize=(11, 3.6), layout="constrained")
    a, b, c = fig.subplots(1, 3, width_ratios=[1, 1, 0.9])
    a.imshow(image)
    a.set_title(title or "image", fontsize=10)
    b.imshow(overlay)
    b.set_title(f"Grad-CAM for “{labels[explained]}”", fontsize=10)
    for ax in (a, b):
        ax.set_axis_off()
    colours = [BLUE if i == explained else GREY for i in order]
    c.barh([labels[i] for i in order], probabilities[order], color=colours)
    for y, i in enumerate(order):
        c.text(
            min(probabilities[i] + 0.02, 0.82),
            y,
            f"{100 * probabilities[i]:.1f}%",
            va="center",
            fontsize=9,
        )
    c.set_xlim(0, 1)
    c.set_title(f"top {len(order)} classes", fontsize=10)
    c.tick_params(labelsize=9)
    c.spines[["top", "right"]].set_visible(False)
    return _imaging.figure_png(fig, dpi=90)


def explain_images(
    run,
    images: Sequence[str | os.PathLike],
    output_dir: str | os.PathLike,
    class_index: int | str | None = None,
    layer: str | None = None,
    progress=None,
) -> list[ExplainedImage]:
    """Write ``<output_dir>/<image stem>.png`` for each image: photo, Grad-CAM, top-3 classes.

    Args:
        run: A run folder or Bundle (or a keras.Model, labelled by index).
        images: Image files; unreadable ones are reported, not fatal.
        output_dir: Created if needed.
        class_index: Class (index or name) to explain; each image's predicted class by default.
        layer: Feature-map layer for Grad-CAM (default: the last convolutional one).
        progress: Called with 1 after each image.

    Returns:
        One :class:`ExplainedImage` per input, in order.
    """
    from littlevision.data.decode import DecodeError, load_image
    from littlevision.explain._gradcam import get_explainer

    explainer = get_explainer(run, layer)
    labels = explainer.labels or [str(i) for i in range(explainer.n_classes)]
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results, used = [], set()
    for source in map(Path, images):
        try:
            image = load_image(source)
        except DecodeError as e:
            results.append(ExplainedImage(source, None, error=str(e)))
            if progress:
                progress(1)
            continue
        res = explainer.gradcam([image], class_index)
        probs, k = res.probabilities[0], int(res.class_indices[0])
        shown = _imaging.fit_within(image, 512)
        overlay = explainer.overlay(shown, res.heatmaps[0], max_side=None)
        name = source.stem
        while name in used:  # two inputs with the same name from different folders
            name += "_"
        used.add(name)
        target = out_dir / f"{name}.png"
        pred = int(probs.argmax())
        title = f"{source.name}: {labels[pred]} ({100 * probs[pred]:.1f}%)"
        target.write_bytes(explanation_png(shown, overlay, probs, labels, k, title=title))
        results.append(ExplainedImage(source, target, labels[pred], float(probs[pred]), labels[k]))
        if progress:
            progress(1)
    return results
