"""littlevision.metrics: one log-loss, the one metrics.json reports."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss as sklearn_log_loss

from littlevision.metrics import PROBABILITY_FLOOR, classification_metrics, log_loss


def test_log_loss_is_sklearns_on_clipped_renormalised_probabilities():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=50)
    probs[0] = [1.0, 0.0, 0.0, 0.0]  # a confident mistake below
    y = rng.integers(0, 4, size=50)
    y[0] = 2
    clipped = np.clip(probs, PROBABILITY_FLOOR, 1.0)
    clipped /= clipped.sum(axis=1, keepdims=True)
    expected = sklearn_log_loss(y, clipped, labels=range(4))
    assert log_loss(y, probs) == pytest.approx(expected, rel=1e-12)
    assert classification_metrics(y, probs, list("abcd"))["log_loss"] == log_loss(y, probs)


def test_a_confident_mistake_costs_a_bounded_amount():
    worst = log_loss(np.array([1]), np.array([[1.0, 0.0]]))
    assert worst == pytest.approx(-np.log(PROBABILITY_FLOOR / (1 + PROBABILITY_FLOOR)))
    assert log_loss(np.array([], np.int64), np.zeros((0, 2))) is None
