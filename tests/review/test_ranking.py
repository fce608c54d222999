"""Label-next order: uncertain first, but not the same picture twice."""

from __future__ import annotations

import numpy as np
import pytest

import littlevision.review as review
from littlevision.review.ranking import STRATEGIES, margin_uncertainty, rank_label_next


def test_every_public_name_resolves():
    for name in review.__all__:
        assert getattr(review, name) is not None, name


def _pool(seed=0):
    """Ten near-copies of one confusing image, and twenty distinct, fairly uncertain ones."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=64)
    copies = base + 0.01 * rng.normal(size=(10, 64))
    distinct = rng.normal(size=(20, 64))
    pool = np.vstack([copies, distinct]).astype(np.float32)
    p = np.concatenate([np.full(10, 0.5), rng.uniform(0.55, 0.7, 20)])
    probs = np.stack([p, 1 - p], axis=1)
    labelled = rng.normal(size=(6, 64)).astype(np.float32)
    return probs, pool, labelled


def test_uncertainty_alone_picks_the_copies_combined_does_not():
    probs, pool, labelled = _pool()
    by_u = rank_label_next(probs, pool, labelled, strategy="uncertainty")
    combined = rank_label_next(probs, pool, labelled)
    assert set(by_u[:10]) == set(range(10))  # all ten copies of the same picture first
    assert len(set(combined[:10]) & set(range(10))) == 1  # one of them is enough
    assert combined[0] < 10  # ...and it is the most uncertain picture
    assert sorted(combined) == list(range(30))  # a permutation: nothing lost, nothing twice


def test_margin_uncertainty():
    u = margin_uncertainty(np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.7, 0.2, 0.1]]))
    np.testing.assert_allclose(u, [1.0, 0.0, 0.5])


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_orders_the_whole_pool(strategy):
    probs, pool, labelled = _pool(1)
    order = rank_label_next(probs, pool, labelled, strategy=strategy, head=5)
    assert sorted(order) == list(range(len(pool)))


def test_wrong_inputs_are_refused():
    probs, pool, labelled = _pool()
    with pytest.raises(ValueError, match="strategy"):
        rank_label_next(probs, pool, labelled, strategy="best")
    with pytest.raises(ValueError, match="one row of probs"):
        rank_label_next(probs[:3], pool, labelled)
    assert len(rank_label_next(np.zeros((0, 2)), np.zeros((0, 4)))) == 0
