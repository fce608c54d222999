"""Confident learning (Northcutt, Jiang & Chuang, JAIR 2021), implemented from the paper.

Given each example's given label and out-of-fold predicted probabilities, confident learning
estimates the joint distribution of (given label, true label) by counting examples that the
model is *confident* belong to another class than the one they were given, using per-class
thresholds (the mean self-confidence of each class) so that classes the model is generally
unsure about are not over-flagged. It then ranks and flags as many examples per off-diagonal
cell as the estimated noise rate says ("prune by noise rate"), by the margin
``p[true] - p[given]``.

Written here rather than taken from the reference implementation, cleanlab (Apache-2.0 since
2.8): on the same probabilities cleanlab's ``find_label_issues`` flags the same images (see
docs/doctor.md, "Wrong labels: the doctor against cleanlab") in ~600 ms per call to this one's
~1 ms, and would be one more dependency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class LabelIssues:
    """Confident learning's verdict.

    Attributes:
        is_issue: bool ``[N]``: examples whose given label is probably wrong.
        self_confidence: float ``[N]``: predicted probability of the given label (lower = more
            suspicious); the ranking quality of each example.
        suggested: int ``[N]``: the class the model believes in (argmax of the probabilities).
        confident_joint: int ``[K, K]``: counts of (given label, confidently predicted label).
        thresholds: float ``[K]``: per-class confidence thresholds.
    """

    is_issue: np.ndarray
    self_confidence: np.ndarray
    suggested: np.ndarray
    confident_joint: np.ndarray
    thresholds: np.ndarray


def confident_joint(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The confident joint ``C[given, true]`` and the per-class thresholds ``t``.

    Example ``x`` with given label ``i`` is counted in ``C[i, j]`` when ``p_j(x) >= t_j``; when
    several classes pass, the most probable of them wins; when none does, it is not counted.

    Args:
        labels: int ``[N]`` given labels in ``0..K-1``.
        probs: float ``[N, K]`` out-of-fold predicted probabilities.
    """
    n, k = probs.shape
    thresholds = np.array(
        [probs[labels == c, c].mean() if np.any(labels == c) else 1.0 for c in range(k)]
    )
    above = probs >= thresholds[None, :] - 1e-12
    masked = np.where(above, probs, -np.inf)
    true = masked.argmax(axis=1)
    counted = above.any(axis=1)
    joint = np.zeros((k, k), dtype=np.int64)
    np.add.at(joint, (labels[counted], true[counted]), 1)
    return joint, thresholds


def find_label_issues(labels: np.ndarray, probs: np.ndarray) -> LabelIssues:
    """Flag probably-mislabelled examples by confident learning with prune-by-noise-rate.

    Args:
        labels: int ``[N]`` given labels in ``0..K-1``.
        probs: float ``[N, K]`` out-of-fold predicted probabilities (rows sum to 1).

    Returns:
        A :class:`LabelIssues`.

    Raises:
        ValueError: Shapes disagree or a label is out of range.
    """
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or len(labels) != len(probs):
        raise ValueError(
            f"Expected labels [N] and probs [N, K]. Received: {labels.shape} and {probs.shape}"
        )
    n, k = probs.shape
    if n and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"Expected labels in 0..{k - 1}. Received: {labels.min()}..{labels.max()}")
    joint, thresholds = confident_joint(labels, probs)
    # Calibrate: each row of the joint must sum to the number of examples given that label.
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    row = joint.sum(axis=1, keepdims=True).astype(np.float64)
    calibrated = np.divide(joint * counts[:, None], row, out=np.zeros((k, k)), where=row > 0)
    total = calibrated.sum()
    q = calibrated / total if total > 0 else calibrated
    is_issue = np.zeros(n, dtype=bool)
    for given in range(k):
        members = np.flatnonzero(labels == given)
        if len(members) == 0:
            continue
        for true in range(k):
            if true == given:
                continue
            n_prune = int(round(q[given, true] * n))
            if n_prune <= 0:
                continue
            margin = probs[members, true] - probs[members, given]
            is_issue[members[np.argsort(-margin, kind="stable")[:n_prune]]] = True
    # An example the model itself predicts as its given label is never flagged (as in the paper,
    # pruning keeps at least the examples whose argmax agrees with the label).
    suggested = probs.argmax(axis=1) if n else np.zeros(0, np.int64)
    is_issue &= suggested != labels
    return LabelIssues(
        is_issue=is_issue,
        self_confidence=probs[np.arange(n), labels],
        suggested=suggested,
        confident_joint=joint,
        thresholds=thresholds,
    )
