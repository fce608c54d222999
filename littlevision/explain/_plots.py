"""The report's charts, drawn with matplotlib without pyplot (no global state, no display)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from littlevision._plots import BLUE, GREEN, GREY, ORANGE, figure_png, learning_curves_png

__all__ = [
    "BLUE",
    "GREEN",
    "GREY",
    "ORANGE",
    "Calibration",
    "calibration",
    "confusion_png",
    "learning_curves_png",
    "reliability_png",
]


@dataclass
class Calibration:
    """Reliability of the top-class probability, in equal-width confidence bins.

    Attributes:
        edges: Bin edges [B + 1] over 0..1.
        confidence: Mean top probability per bin [B] (NaN for empty bins).
        accuracy: Fraction correct per bin [B] (NaN for empty bins).
        counts: Images per bin [B].
        ece: Expected calibration error: the count-weighted mean |accuracy - confidence|.
    """

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    counts: np.ndarray
    ece: float


def calibration(probabilities: np.ndarray, y_true: np.ndarray, bins: int = 10) -> Calibration:
    """Reliability-diagram statistics for predictions [N, C] and true class indices [N]."""
    probs = np.asarray(probabilities, np.float64)
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == np.asarray(y_true)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, conf, bins) / counts
        acc = np.bincount(which, correct, bins) / counts
    filled = counts > 0
    ece = float(
        np.sum(np.abs(acc[filled] - mean_conf[filled]) * counts[filled]) / max(len(conf), 1)
    )
    return Calibration(edges, mean_conf, acc, counts, ece)


def reliability_png(cal: Calibration) -> bytes:
    """Accuracy against confidence per bin (bars) with the diagonal of perfect calibration."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2, 4.6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    centres = (cal.edges[:-1] + cal.edges[1:]) / 2
    width = np.diff(cal.edges)
    filled = cal.counts > 0
    top.bar(
        centres[filled],
        cal.accuracy[filled],
        width=width[filled] * 0.92,
        color=BLUE,
        label="accuracy in bin",
    )
    top.plot([0, 1], [0, 1], "--", color=GREY, label="perfectly calibrated")
    top.plot(
        cal.confidence[filled],
        cal.accuracy[filled],
        "o",
        color=ORANGE,
        ms=4,
        label="mean confidence",
    )
    top.set_ylabel("fraction correct")
    top.set_ylim(0, 1.02)
    top.set_title(f"Reliability (ECE {cal.ece:.3f})", fontsize=11)
    top.legend(fontsize=8, loc="upper left")
    bottom.bar(centres, cal.counts, width=width * 0.92, color=GREY)
    bottom.set_ylabel("images")
    bottom.set_xlabel("confidence (top probability)")
    bottom.set_xlim(0, 1)
    return figure_png(fig)


def confusion_png(confusion: list[list[int]], classes: list[str]) -> bytes:
    """The confusion matrix as a heat map (rows: true class, normalised per row)."""
    from matplotlib.figure import Figure

    cm = np.asarray(confusion, np.float64)
    rows = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    n = len(classes)
    side = min(2.2 + 0.55 * n, 12)
    fig = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(
                    j,
                    i,
                    f"{int(cm[i, j])}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if rows[i, j] > 0.6 else "black",
                )
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of the true class")
    return figure_png(fig)
