"""Confident learning on hand-made probabilities: the paper's rules, case by case."""

from __future__ import annotations

import numpy as np
import pytest

from littlevision.doctor.confident import confident_joint, find_label_issues


def _probs(rows):
    p = np.asarray(rows, dtype=np.float64)
    return p / p.sum(axis=1, keepdims=True)


def test_thresholds_are_the_mean_self_confidence_per_class():
    labels = np.array([0, 0, 1, 1])
    probs = _probs([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.4, 0.6]])
    joint, t = confident_joint(labels, probs)
    np.testing.assert_allclose(t, [0.8, 0.7])
    # row 1 (0.7 < 0.8, 0.3 < 0.7) and row 3 (0.4 < 0.8, 0.6 < 0.7) pass no threshold
    np.testing.assert_array_equal(joint, [[1, 0], [0, 1]])


def test_a_confidently_other_class_example_is_flagged_and_others_are_not():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 30)
    probs = np.full((90, 3), 0.05)
    probs[np.arange(90), labels] = 0.9
    probs += rng.uniform(0, 0.02, probs.shape)
    probs[5] = [0.03, 0.95, 0.02]  # labelled 0, clearly a 1
    probs[40] = [0.02, 0.03, 0.95]  # labelled 1, clearly a 2
    probs = probs / probs.sum(axis=1, keepdims=True)
    result = find_label_issues(labels, probs)
    assert set(np.flatnonzero(result.is_issue)) == {5, 40}
    assert result.suggested[5] == 1 and result.suggested[40] == 2
    assert result.self_confidence[5] < 0.05


def test_an_example_predicted_as_its_label_is_never_flagged():
    labels = np.array([0] * 10 + [1] * 10)
    probs = _probs([[0.6, 0.4]] * 10 + [[0.45, 0.55]] * 10)
    assert not find_label_issues(labels, probs).is_issue.any()


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="Expected labels"):
        find_label_issues(np.array([0, 3]), _probs([[1, 1], [1, 1]]))
