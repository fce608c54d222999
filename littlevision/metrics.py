"""Classification metrics in one JSON-able dict, shared by train, evaluate, compare and report."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PROBABILITY_FLOOR = 1e-7
"""Probabilities are clipped to at least this (then renormalised) before log-loss: one confident
mistake then costs at most -log(1e-7) ~ 16.1 instead of infinity, and float32 softmax outputs of
0 (common) do not make the mean meaningless."""


def log_loss(y_true: np.ndarray, probabilities: np.ndarray) -> float | None:
    """Mean negative log-probability of the true class (None without images).

    The one log-loss of littlevision: ``metrics.json``, finetune's keep-or-drop of its start,
    auto's reason and the linear head's choice of regularisation all use it.

    Args:
        y_true: Class indices [N].
        probabilities: Predicted probabilities [N, C]; clipped to :data:`PROBABILITY_FLOOR`
            and renormalised per row.
    """
    y = np.asarray(y_true, dtype=np.int64)
    if len(y) == 0:
        return None
    p = np.clip(np.asarray(probabilities, dtype=np.float64), PROBABILITY_FLOOR, 1.0)
    p /= p.sum(axis=1, keepdims=True)
    return float(-np.log(p[np.arange(len(y)), y]).mean())


def classification_metrics(
    y_true: np.ndarray, probabilities: np.ndarray, classes: Sequence[str]
) -> dict:
    """Accuracy, log-loss, per-class precision/recall/F1 and the confusion matrix.

    Args:
        y_true: Class indices [N].
        probabilities: Predicted probabilities [N, C] in ``classes`` order.
        classes: Class names.

    Returns:
        A dict with ``accuracy``, ``log_loss``, ``n``, ``per_class`` and ``confusion``
        (rows: true class, columns: predicted, both in ``classes`` order).
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    y_true = np.asarray(y_true, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    n, c = len(y_true), len(classes)
    if n == 0:
        return {"n": 0, "accuracy": None, "log_loss": None, "per_class": {}, "confusion": []}
    y_pred = probabilities.argmax(axis=1)
    labels = list(range(c))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "n": int(n),
        "accuracy": float((y_pred == y_true).mean()),
        "log_loss": log_loss(y_true, probabilities),
        "per_class": {
            name: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(s[i]),
            }
            for i, name in enumerate(classes)
        },
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "classes": list(classes),
    }


def top_confusions(metrics: dict, k: int = 5) -> list[tuple[str, str, int]]:
    """The ``k`` most frequent (true, predicted, count) mistakes."""
    classes, cm = metrics.get("classes", []), metrics.get("confusion", [])
    pairs = [
        (classes[i], classes[j], cm[i][j])
        for i in range(len(cm))
        for j in range(len(cm))
        if i != j and cm[i][j]
    ]
    return sorted(pairs, key=lambda t: -t[2])[:k]
