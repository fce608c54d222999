"""Suspected wrong labels: out-of-fold predictions of a cross-validated linear head on the
embeddings, judged by confident learning (:mod:`.confident`).

Every image is predicted by a model that never saw it (k-fold cross-validation), so a wrong label
cannot be memorised away; a logistic regression on frozen embeddings is the same kind of model
``littlevision train`` fits, so what the doctor flags is what would confuse training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from littlevision.doctor.confident import find_label_issues
from littlevision.doctor.context import Context
from littlevision.doctor.registry import get_check, register_check
from littlevision.doctor.report import Finding


@dataclass
class OutOfFold:
    """Out-of-fold probabilities of the labelled images that have embeddings.

    Attributes:
        records: int64 ``[N]`` record indices.
        labels: int64 ``[N]`` class indices (into ``classes``).
        probs: float64 ``[N, K]`` predicted probabilities, each from a model that did not see it.
        classes: The class names, in column order.
    """

    records: np.ndarray
    labels: np.ndarray
    probs: np.ndarray
    classes: list[str]


def out_of_fold_probabilities(
    features: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    folds: int = 5,
    c: float = 1.0,
    seed: int = 0,
    dims: int | None = 128,
) -> np.ndarray:
    """Cross-validated probabilities ``[N, n_classes]`` of a logistic regression.

    Args:
        features: ``[N, D]`` L2-normalised embeddings.
        y: int ``[N]`` class indices; every class present must have at least ``2`` examples.
        n_classes: K; classes absent from ``y`` get probability 0.
        folds: Folds, lowered to the smallest class count when a class is smaller.
        c: Inverse regularisation strength.
        seed: Seed of the fold assignment and the projection.
        dims: Project on this many principal components first (``None``: keep all). PCA sees
            no labels, so fitting it on every image leaks nothing into the folds; on
            cats-vs-dogs and cat-breeds it keeps the accuracy and the flagged set and makes
            the folds ~10x faster.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    if dims is not None and min(features.shape) > dims:
        from sklearn.decomposition import PCA

        features = PCA(dims, random_state=seed).fit_transform(features)

    present, counts = np.unique(y, return_counts=True)
    n_splits = int(max(2, min(folds, counts.min())))
    probs = np.zeros((len(y), n_classes), dtype=np.float64)
    splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    for train_idx, test_idx in splitter.split(features, y):
        model = LogisticRegression(C=c, max_iter=1000)
        model.fit(features[train_idx], y[train_idx])
        probs[np.ix_(test_idx, model.classes_)] = model.predict_proba(features[test_idx])
    return probs


def out_of_fold(ctx: Context) -> OutOfFold | None:
    """The run's shared out-of-fold probabilities; ``None`` when fewer than two classes have
    two or more labelled, decodable images (nothing to cross-validate)."""

    def compute() -> OutOfFold | None:
        if ctx.features is None:
            return None
        classes = list(ctx.dataset.classes)
        index = {name: i for i, name in enumerate(classes)}
        labels = np.array([index.get(ctx.records[i].label, -1) for i in ctx.feature_rows])
        counts = np.bincount(labels[labels >= 0], minlength=len(classes))
        usable = (labels >= 0) & (counts[np.maximum(labels, 0)] >= 2)
        if len(np.unique(labels[usable])) < 2:
            return None
        probs = out_of_fold_probabilities(
            ctx.features[usable],
            labels[usable],
            len(classes),
            folds=ctx.config.label_folds,
            c=ctx.config.label_c,
            seed=ctx.config.seed,
            dims=ctx.config.label_dims,
        )
        return OutOfFold(
            records=ctx.feature_rows[usable], labels=labels[usable], probs=probs, classes=classes
        )

    return ctx.shared("out_of_fold", compute)


@register_check(
    "label_issues",
    severity="warning",
    fix="all",
    title="Suspected wrong labels",
    advice="Look at each image: move it to the right class folder (or fix its CSV "
    "row) when the label is wrong.",
    needs=("embeddings", "labels"),
)
def label_issues(ctx: Context) -> list[Finding]:
    """Images a cross-validated model confidently puts in another class than their label."""
    oof = out_of_fold(ctx)
    if oof is None:
        return []
    spec = get_check("label_issues")
    verdict = find_label_issues(oof.labels, oof.probs)
    flagged = np.flatnonzero(verdict.is_issue)
    flagged = flagged[np.argsort(verdict.self_confidence[flagged], kind="stable")]
    out = []
    for k in flagged:
        rec = ctx.records[int(oof.records[k])]
        predicted = oof.classes[int(verdict.suggested[k])]
        confidence = float(oof.probs[k, verdict.suggested[k]])
        out.append(
            spec.finding(
                [rec.rel],
                f"{rec.rel} is labelled '{rec.label}' but looks like '{predicted}' "
                f"({confidence:.0%} confident).",
                quarantine=[rec.rel],
                label=rec.label,
                predicted=predicted,
                confidence=round(confidence, 4),
                label_probability=round(float(verdict.self_confidence[k]), 4),
            )
        )
    return out
