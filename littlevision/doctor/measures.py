"""Per-image measures: pure functions from a decoded image to one number.

The doctor decodes every image once, at a small square size (see :mod:`.scan`), and computes all
of these on that one array, so adding a measure costs no extra decoding. Each function takes a
uint8 RGB array ``[H, W, 3]`` and returns a float (all but :func:`colourfulness` also accept
the image's luma ``[H, W]``, which :func:`measure_all` computes once); none of them looks at the
file, so they can be tested and reused on any array.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# ITU-R BT.601 luma weights: what "brightness" means for a photo.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def grey(image: np.ndarray) -> np.ndarray:
    """Luma ``[H, W]`` float32 in 0..255 of a uint8 RGB image ``[H, W, 3]``; a 2-D array is
    taken as luma already (so :func:`measure_all` converts once for every measure)."""
    if image.ndim == 2:
        return np.asarray(image, dtype=np.float32)
    return np.asarray(image, dtype=np.float32) @ _LUMA


def brightness(image: np.ndarray) -> float:
    """Mean luma, 0 (black) .. 255 (white)."""
    return float(grey(image).mean())


def dark_level(image: np.ndarray) -> float:
    """The 90th percentile of luma: low only when nearly every pixel is dark."""
    return float(np.percentile(grey(image), 90))


def light_level(image: np.ndarray) -> float:
    """The 10th percentile of luma: high only when nearly every pixel is washed out."""
    return float(np.percentile(grey(image), 10))


def contrast(image: np.ndarray) -> float:
    """Standard deviation of luma: near 0 for a blank (single-colour) image."""
    return float(grey(image).std())


def entropy(image: np.ndarray) -> float:
    """Shannon entropy of the luma histogram in bits (0..8): how much there is to see."""
    hist = np.bincount(np.clip(grey(image), 0, 255).astype(np.uint8).ravel(), minlength=256)
    p = hist[hist > 0] / hist.sum()
    return float(-(p * np.log2(p)).sum())


def sharpness(image: np.ndarray) -> float:
    """Share of the image's variance in fine detail: ``var(Laplacian) / var(luma)``.

    A Laplacian responds to edges; dividing by the overall variance makes the measure
    independent of contrast, so a dim but sharp photo is not called blurry. Very blurry images
    score near 0, ordinary photos at the doctor's scan size score well above 0.05.
    """
    g = grey(image)
    var = float(g.var())
    if var < 1e-6:
        return 0.0
    lap = (g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1]) - 4.0 * g[1:-1, 1:-1]
    return float(lap.var() / var)


def colourfulness(image: np.ndarray) -> float:
    """Largest mean absolute difference between colour channels; 0 for a grey image."""
    img = np.asarray(image, dtype=np.int16)
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    return float(max(np.abs(r - g).mean(), np.abs(g - b).mean(), np.abs(r - b).mean()))


MEASURES: dict[str, Callable[[np.ndarray], float]] = {
    "brightness": brightness,
    "dark_level": dark_level,
    "light_level": light_level,
    "contrast": contrast,
    "entropy": entropy,
    "sharpness": sharpness,
    "colourfulness": colourfulness,
}
"""Every measure the scan records for each image, by name."""


_NEEDS_COLOUR = frozenset({"colourfulness"})


def measure_all(image: np.ndarray) -> dict[str, float]:
    """All of :data:`MEASURES` for one uint8 RGB image (its luma is computed once)."""
    luma = grey(image)
    return {name: fn(image if name in _NEEDS_COLOUR else luma) for name, fn in MEASURES.items()}
