"""Is today's traffic still like the validation set? Figures over the most recent predictions.

Two comparisons with what the served model saw at validation time, each between 0 (the same)
and 1 (nothing in common):

- ``class_mix``: total variation distance between the recent predicted-class shares and the
  validation set's predicted-class shares (column sums of its confusion matrix). It moves when
  the world sends a different mix of classes, or when the model starts answering one class for
  everything.
- ``novelty``: the Kolmogorov-Smirnov distance between recent novelty scores and the validation
  images' scores. It moves when images stop looking like the training images (a new camera, a
  new kind of subject), before any label says so.

``drift`` is the larger of the two. What a person should do when it moves is in
docs/lifecycle.md. The window is reset when a new version starts serving, so figures always
compare a version with its own validation set.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import numpy as np

from littlevision.serving.metrics import Counter, Gauge, Registry, _number

WINDOW = 500  # recent predictions the figures are computed on
MIN_IMAGES = 30  # below it the distances are reported as None (too few to mean anything)


def _validation_mix(metrics: dict, n_classes: int) -> np.ndarray | None:
    cm = np.asarray(metrics.get("confusion") or [], np.float64)
    if cm.shape != (n_classes, n_classes) or cm.sum() <= 0:
        return None
    cols = cm.sum(axis=0)
    return cols / cols.sum()


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Largest gap between the empirical distribution functions of ``a`` and ``b``."""
    a, b = np.sort(np.asarray(a, np.float64)), np.sort(np.asarray(b, np.float64))
    grid = np.concatenate([a, b])
    fa = np.searchsorted(a, grid, side="right") / len(a)
    fb = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.max(np.abs(fa - fb)))


class DriftMonitor:
    """Keeps the last ``window`` predictions of the served version and compares them.

    Args:
        window: How many recent predictions the figures use.
    """

    def __init__(self, window: int = WINDOW) -> None:
        self.window = int(window)
        self._lock = threading.Lock()
        self._version: str | None = None
        self._labels: list[str] = []
        self._classes: deque[int] = deque(maxlen=self.window)
        self._novelty: deque[float] = deque(maxlen=self.window)
        self._ref_mix: np.ndarray | None = None
        self._ref_novelty: np.ndarray | None = None
        self._threshold: float | None = None
        self.unknown_total = Counter(
            "littlevision_unknown_total", "Predictions flagged unknown (novelty over threshold)."
        )

    def record(self, model, probs: np.ndarray, novelty: np.ndarray | None) -> None:
        """Add one answer ([C], scalar) or a stack ([k, C], [k]) given by ``model``."""
        probs = np.atleast_2d(probs)
        with self._lock:
            if model.version != self._version:
                self._reset(model)
            self._classes.extend(int(i) for i in probs.argmax(axis=1))
            if novelty is not None:
                values = np.atleast_1d(novelty).astype(np.float64)
                self._novelty.extend(float(v) for v in values)
                if self._threshold is not None:
                    flagged = int((values > self._threshold).sum())
                    if flagged:
                        self.unknown_total.inc(flagged)

    def _reset(self, model) -> None:
        self._version = model.version
        self._labels = list(model.labels)
        self._classes.clear()
        self._novelty.clear()
        self._ref_mix = _validation_mix(model.bundle.metrics, len(self._labels))
        scorer = model.predictor.novelty if getattr(model, "scoring", None) else None
        self._ref_novelty = scorer.val_scores_ if scorer is not None else None
        self._threshold = scorer.threshold_ if scorer is not None else None

    def figures(self) -> dict[str, Any]:
        """The recent window's figures (None where there are too few images or no reference)."""
        with self._lock:
            classes = np.array(self._classes, np.int64)
            novelty = np.array(self._novelty, np.float64)
            labels, ref_mix, ref_nov = self._labels, self._ref_mix, self._ref_novelty
            threshold = self._threshold
        n = len(classes)
        mix = np.bincount(classes, minlength=len(labels)) / n if n else None
        enough = n >= MIN_IMAGES
        class_mix = (
            float(0.5 * np.abs(mix - ref_mix).sum())
            if enough and ref_mix is not None and mix is not None
            else None
        )
        nov_shift = (
            ks_distance(novelty, ref_nov)
            if len(novelty) >= MIN_IMAGES and ref_nov is not None and len(ref_nov)
            else None
        )
        parts = [x for x in (class_mix, nov_shift) if x is not None]
        return {
            "window": self.window,
            "images": n,
            "version": self._version,
            "unknown_rate": (
                float((novelty > threshold).mean())
                if len(novelty) and threshold is not None
                else None
            ),
            "novelty_mean": float(novelty.mean()) if len(novelty) else None,
            "validation_novelty_mean": (
                float(np.mean(ref_nov)) if ref_nov is not None and len(ref_nov) else None
            ),
            "class_mix": dict(zip(labels, map(float, mix), strict=True))
            if mix is not None
            else None,
            "validation_class_mix": (
                dict(zip(labels, map(float, ref_mix), strict=True)) if ref_mix is not None else None
            ),
            "drift_class_mix": class_mix,
            "drift_novelty": nov_shift,
            "drift": max(parts) if parts else None,
        }

    def register(self, registry: Registry) -> None:
        """Add the drift gauges to a service's metrics (read when scraped; a figure that has no
        value yet, e.g. with fewer than MIN_IMAGES recent images, has no sample)."""

        def source(key: str):
            return lambda: self.figures()[key]

        registry.register(self.unknown_total)
        for key, help_text in (
            ("images", "Recent predictions the drift figures are computed on."),
            ("unknown_rate", "Share of recent predictions flagged unknown."),
            ("novelty_mean", "Mean novelty of recent predictions."),
            ("validation_novelty_mean", "Mean novelty of the validation images (reference)."),
            ("drift_class_mix", "Recent vs validation predicted-class mix (0 same, 1 disjoint)."),
            ("drift_novelty", "Recent vs validation novelty distribution (KS distance, 0..1)."),
            ("drift", "The larger of the two drift figures."),
        ):
            name = "littlevision_recent_images" if key == "images" else f"littlevision_{key}"
            registry.register(_FigureGauge(name, help_text, source=source(key)))


class _FigureGauge(Gauge):
    """A gauge read when scraped that shows no sample while its figure is None."""

    def render(self) -> list[str]:
        value = self._source()
        if value is None:
            return self.header()
        return self.header() + [f"{self.name} {_number(float(value))}"]
