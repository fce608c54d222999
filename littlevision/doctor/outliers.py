"""Outliers: images far from every other image in embedding space -- off-topic pictures, logos,
screenshots, blank or corrupt-looking files that still decode.

Two scores, each a robust z-score (median and MAD) so the threshold adapts to how varied a
dataset naturally is, and to its size (:func:`outlier_threshold`):

- *distance*: ``1 -`` the mean cosine similarity to the ``k`` nearest other images (copies of
  itself excluded, see :mod:`.neighbours`). Strong in large sets, where ordinary images always
  have close neighbours.
- *local outlier factor* (LOF, Breunig et al. 2000, simplified): that distance divided by the
  mean distance of those neighbours. It compares an image with its own neighbourhood, so it
  still works in a few hundred images, where every photo is fairly far from the next; its tail
  is heavier, so it must clear the threshold plus :data:`LOF_MARGIN`.

Measured on cats-vs-dogs with six planted off-topic photos: in 433 images the distance alone
finds 3 of 6 at its threshold, LOF all 6 (z 4.5-5.4 against 3.9 for the most unusual real
photo); in 2800 images the distance finds all (z >= 4.8). Below a few dozen images "unusual"
means little: the check is calibrated for 50 images and more.
"""

from __future__ import annotations

import numpy as np

from littlevision.doctor.context import Context
from littlevision.doctor.neighbours import neighbours
from littlevision.doctor.registry import get_check, register_check
from littlevision.doctor.report import Finding

_MIN_IMAGES = 12  # below this, "unusual" has no meaning
LOF_MARGIN = 0.5
"""Extra z the local outlier factor must reach (its distribution has a heavier tail)."""


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


@register_check(
    "outliers",
    severity="warning",
    fix="all",
    title="Outliers",
    advice="Look at them: off-topic or broken-looking images should go; genuine but "
    "rare views are worth more examples like them.",
    needs=("embeddings",),
)
def outliers(ctx: Context) -> list[Finding]:
    """Images whose nearest neighbours are much farther than usual."""
    nb = neighbours(ctx)
    if nb.knn_similarity is None or len(nb.knn_similarity) < _MIN_IMAGES:
        return []
    spec = get_check("outliers")
    distance = 1.0 - nb.knn_similarity.astype(np.float64)
    lof = local_outlier_factor(distance, nb.knn_rows)
    z_dist = np.nan_to_num(robust_z(distance), nan=-np.inf)
    z_lof = np.nan_to_num(robust_z(lof), nan=-np.inf)
    threshold = outlier_threshold(len(distance), ctx.config.outlier_z)
    # One scale for both scores: how far past its own threshold each one is.
    excess = np.maximum(z_dist - threshold, z_lof - threshold - LOF_MARGIN)
    flagged = np.flatnonzero(excess >= 0)
    out = []
    for row in flagged[np.argsort(-excess[flagged], kind="stable")]:
        rec = ctx.records[int(ctx.feature_rows[row])]
        out.append(
            spec.finding(
                [rec.rel],
                f"{rec.rel} looks unlike the rest of the data (typicality "
                f"{nb.knn_similarity[row]:.2f}; {z_dist[row]:.1f} robust standard deviations out, "
                f"{z_lof[row]:.1f} against its neighbourhood).",
                quarantine=[rec.rel],
                score=round(float(z_dist[row]), 2),
                lof_score=round(float(z_lof[row]), 2),
                threshold=round(threshold, 2),
                typicality=round(float(nb.knn_similarity[row]), 4),
                label=rec.label,
            )
        )
    return out


def local_outlier_factor(distance: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """Each distance over the mean distance of the image's neighbours (``-1``: none).

    Args:
        distance: float ``[M]`` kNN distances.
        neighbours: int ``[M, k]`` neighbour rows, ``-1`` for missing ones.

    Returns:
        float ``[M]``; about 1 for an image as isolated as its neighbours, higher when it sits
        farther out than they do; NaN when it has no neighbour.
    """
    valid = neighbours >= 0
    around = np.where(valid, distance[np.maximum(neighbours, 0)], 0.0).sum(axis=1)
    count = valid.sum(axis=1)
    mean = np.where(count > 0, around / np.maximum(count, 1), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        return distance / mean
