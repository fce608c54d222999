"""Outliers: images far from every other image in embedding space -- off-topic pictures, logos,
screenshots, blank or corrupt-looking files that still decode.

An image's *typicality* is its mean cosine similarity to its ``k`` nearest other images (copies
of itself excluded, see :mod:`.neighbours`); an outlier is one whose distance ``1 - typicality``
is far above the dataset's usual, measured as a robust z-score (median and MAD), so the
threshold adapts to how varied a dataset naturally is, and to its size
(:func:`outlier_threshold`). Below a few dozen images, "unusual" means little: the check is
calibrated for sets of 50 images and more.
"""

from __future__ import annotations

import numpy as np

from littlevision.doctor.context import Context
from littlevision.doctor.neighbours import neighbours
from littlevision.doctor.registry import get_check, register_check
from littlevision.doctor.report import Finding

_MIN_IMAGES = 12  # below this, "unusual" has no meaning


def outlier_threshold(n: int, fixed: float | None = None) -> float:
    """The z-score above which one of ``n`` images is an outlier (``fixed`` when given).

    Among ``n`` ordinary values, the largest z-score grows like ``sqrt(2 ln n)``; a fixed
    threshold would flag normal images in big sets or miss real outliers in small ones.
    """
    if fixed is not None:
        return float(fixed)
    return max(3.0, float(np.sqrt(2.0 * np.log(max(n, 2)))))


def robust_z(values: np.ndarray) -> np.ndarray:
    """``(x - median) / (1.4826 * MAD)``: a z-score that a few extreme values cannot mask."""
    med = np.nanmedian(values)
    mad = 1.4826 * np.nanmedian(np.abs(values - med))
    return (values - med) / max(float(mad), 1e-6)


@register_check("outliers", severity="warning", fix="all", title="Outliers",
                advice="Look at them: off-topic or broken-looking images should go; genuine but "
                       "rare views are worth more examples like them.",
                needs=("embeddings",))
def outliers(ctx: Context) -> list[Finding]:
    """Images whose nearest neighbours are much farther than usual."""
    nb = neighbours(ctx)
    if nb.knn_similarity is None or len(nb.knn_similarity) < _MIN_IMAGES:
        return []
    spec = get_check("outliers")
    distance = 1.0 - nb.knn_similarity.astype(np.float64)
    z = robust_z(distance)
    threshold = outlier_threshold(len(z), ctx.config.outlier_z)
    flagged = np.flatnonzero(np.nan_to_num(z, nan=-np.inf) >= threshold)
    out = []
    for row in flagged[np.argsort(-z[flagged], kind="stable")]:
        rec = ctx.records[int(ctx.feature_rows[row])]
        out.append(spec.finding(
            [rec.rel],
            f"{rec.rel} looks unlike the rest of the data (typicality "
            f"{nb.knn_similarity[row]:.2f}, {z[row]:.1f} robust standard deviations out).",
            quarantine=[rec.rel], score=round(float(z[row]), 2), threshold=round(threshold, 2),
            typicality=round(float(nb.knn_similarity[row]), 4), label=rec.label))
    return out
