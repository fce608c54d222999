"""Which unlabelled image to label next: uncertain *and* unlike anything labelled so far.

Uncertainty alone keeps picking near-copies of the same confusing picture; diversity alone
(k-centre) picks easy outliers the model already gets right. The order here multiplies the two,
greedily: image ``i``'s score is ``u_i * d_i`` where ``u_i = 1 - (p_top1 - p_top2)`` is the
model's margin uncertainty and ``d_i`` the cosine distance from ``i`` to the nearest image that
is labelled or already ranked above it. Each pick lowers ``d`` around itself, so the next picks
go elsewhere. After ``head`` greedy picks the rest follow by uncertainty alone (cheap, and nobody
labels that far in one sitting). ``benchmarks/bench_review.py`` measures it against random
picks, uncertainty alone and diversity alone.
"""

from __future__ import annotations

import numpy as np

STRATEGIES: tuple[str, ...] = ("combined", "uncertainty", "diversity", "random")


def margin_uncertainty(probs: np.ndarray) -> np.ndarray:
    """``1 - (top1 - top2)`` per row of ``probs [N, K]``: 1 when torn, 0 when sure."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape[1] < 2:
        return np.zeros(len(probs))
    top2 = np.sort(probs, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def rank_label_next(
    probs: np.ndarray,
    pool: np.ndarray,
    labelled: np.ndarray | None = None,
    *,
    strategy: str = "combined",
    head: int = 300,
    seed: int = 0,
) -> np.ndarray:
    """The order in which to label the pool: indices into ``probs``/``pool``, best first.

    Args:
        probs: ``[N, K]`` the current model's probabilities for the pool images.
        pool: ``[N, D]`` their embeddings.
        labelled: ``[M, D]`` embeddings of the labelled images (``None``: none yet).
        strategy: ``"combined"`` (the default, see the module), ``"uncertainty"``,
            ``"diversity"`` (greedy k-centre) or ``"random"``.
        head: How many images are ranked greedily; the rest follow by uncertainty.
        seed: Seed of ``"random"``.

    Raises:
        ValueError: Unknown strategy, or ``probs`` and ``pool`` disagree in length.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"Expected strategy in {STRATEGIES}. Received: {strategy!r}")
    n = len(pool)
    if len(probs) != n:
        raise ValueError(f"Expected one row of probs per pool image. Received: {len(probs)} != {n}")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if strategy == "random":
        return np.random.default_rng(seed).permutation(n)
    u = margin_uncertainty(probs)
    by_uncertainty = np.argsort(-u, kind="stable")
    if strategy == "uncertainty":
        return by_uncertainty
    x = _normalise(pool)
    if labelled is not None and len(labelled):
        lab = _normalise(labelled)
        d = np.full(n, np.inf, dtype=np.float32)
        for start in range(0, len(lab), 1024):  # bounded memory for big labelled sets
            d = np.minimum(d, (1.0 - x @ lab[start : start + 1024].T).min(axis=1))
    else:
        d = np.ones(n, dtype=np.float32)
    d = np.maximum(d, 0.0)
    weight = np.ones(n) if strategy == "diversity" else u
    picked: list[int] = []
    taken = np.zeros(n, dtype=bool)
    for _ in range(min(head, n)):
        score = np.where(taken, -np.inf, weight * d)
        i = int(np.argmax(score))
        picked.append(i)
        taken[i] = True
        d = np.minimum(d, np.maximum(1.0 - x @ x[i], 0.0))
    rest = [int(i) for i in by_uncertainty if not taken[i]]
    return np.array(picked + rest, dtype=np.int64)
