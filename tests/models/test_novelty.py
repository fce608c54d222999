"""The novelty score: threshold at the asked-for share, persisted, and strange images score high."""

from __future__ import annotations

import numpy as np
import pytest

from littlevision.errors import UserError
from littlevision.models.novelty import NoveltyScorer, auroc, threshold_for_rate


def test_threshold_flags_the_asked_share_of_scores():
    scores = np.arange(100, dtype=np.float64)
    t = threshold_for_rate(scores, 0.05)
    assert (scores > t).sum() == 5
    assert (scores > threshold_for_rate(scores, 0.2)).sum() == 20
    assert (scores[:10] > threshold_for_rate(scores[:10], 0.05)).sum() == 1  # at least one


def test_auroc_is_one_when_outside_always_scores_higher_and_half_for_the_same():
    assert auroc([0.1, 0.2], [0.3, 0.4]) == 1.0
    assert auroc([0.3, 0.4], [0.1, 0.2]) == 0.0
    assert auroc([0.5, 0.5], [0.5, 0.5]) == 0.5


def test_bad_settings_are_one_clear_sentence():
    with pytest.raises(UserError, match="unknown-rate"):
        NoveltyScorer(rate=1.5)
    with pytest.raises(UserError, match="novelty method"):
        NoveltyScorer(method="magic")


@pytest.fixture(scope="module")
def features(small_folder):
    """Real backbone features of 40 photos (through the embedding cache)."""
    from littlevision.data.dataset import Dataset
    from littlevision.features import Embedder

    ds = Dataset.from_folder(small_folder)
    emb = Embedder("lite0").embed_paths(ds.paths)
    return emb.features, ds.y[emb.ok_indices]


@pytest.mark.parametrize("method", ["knn", "mahalanobis"])
def test_fit_sets_a_threshold_that_flags_the_asked_share_of_validation(features, method):
    x, y = features
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    train, val = order[:20], order[20:]
    scorer = NoveltyScorer(method=method, rate=0.25).fit(x[train], y[train], x[val])
    flagged = scorer.unknown(scorer.score(x[val])).mean()
    calib = scorer.val_scores_
    assert abs((calib > scorer.threshold_).mean() - 0.25) <= 1 / len(calib) + 1e-9
    assert 0.05 <= flagged <= 0.45
    assert scorer.card()["target_rate"] == 0.25


def test_a_saved_scorer_scores_the_same(features, tmp_path):
    x, y = features
    scorer = NoveltyScorer(k=3).fit(x[:30], y[:30], x[30:])
    back = NoveltyScorer.load(scorer.save(tmp_path / "novelty.npz"))
    assert back.threshold_ == pytest.approx(scorer.threshold_)
    np.testing.assert_allclose(back.score(x), scorer.score(x), atol=2e-3)  # float16 reference


def test_a_damaged_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "novelty.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(UserError, match="damaged"):
        NoveltyScorer.load(bad)
