"""How far an image is from everything the model was trained on: the *novelty* score.

A classifier answers one of its classes whatever it is shown (the cats-vs-dogs model calls a
temple "dogs" at 0.998). The backbone's features say more: a photo of something else lands far
from every training image. Two scores were measured (docs/lifecycle.md) on the backbone's pooled
features:

- ``knn``: cosine distance to the k-th nearest training image (features L2-normalised);
- ``mahalanobis``: the smallest class-conditional Mahalanobis distance with one shrunk, shared
  covariance (the "simple unified framework" of Lee et al., 2018).

The threshold is the ``1 - rate`` quantile of the validation images' scores, so about ``rate``
of the validation images are flagged ``unknown``; the argmax label is never changed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from littlevision._io import atomic_open
from littlevision.errors import NotFittedError, UserError

NOVELTY_FILE = "novelty.npz"
METHODS = ("knn", "mahalanobis")
DEFAULT_METHOD = "knn"
DEFAULT_RATE = 0.05


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@dataclass
class NoveltyScorer:
    """Scores feature vectors by how unlike the training images they are; higher = stranger.

    Args:
        method: ``knn`` or ``mahalanobis``.
        k: Neighbours for ``knn`` (the k-th nearest distance is the score).
        rate: Share of validation images the threshold flags (``--unknown-rate``).
        max_reference: Most training vectors kept for ``knn`` (a seeded sample past it), which
            bounds the bundle's size and the cost per prediction: 0.14 ms of CPU per image at
            2,000 (1.4% of lite0's 9.8 ms), 0.44 ms at 4,000 (docs/lifecycle.md).
    """

    method: str = DEFAULT_METHOD
    k: int = 5
    rate: float = DEFAULT_RATE
    max_reference: int = 2000
    seed: int = 0
    # learned
    threshold_: float | None = None
    reference_: np.ndarray | None = field(default=None, repr=False)  # knn: [M, D] unit vectors
    means_: np.ndarray | None = field(default=None, repr=False)  # mahalanobis: [C, D]
    precision_: np.ndarray | None = field(default=None, repr=False)  # mahalanobis: [D, D]
    val_scores_: np.ndarray | None = field(default=None, repr=False)  # for drift
    n_calibration_: tuple[int, int] = (0, 0)  # (validation, leave-one-out training) scores
    _knn: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise UserError(f"Expected a novelty method in {METHODS}. Received: {self.method!r}")
        if not 0.0 < float(self.rate) < 1.0:
            raise UserError(f"Expected --unknown-rate between 0 and 1. Received: {self.rate}")
        if int(self.k) < 1:
            raise UserError(f"Expected k >= 1. Received: k={self.k}")

    # -- fitting ------------------------------------------------------------------------------

    def fit(
        self, features: np.ndarray, y: np.ndarray, val_features: np.ndarray | None = None
    ) -> NoveltyScorer:
        """Learn the reference from training features [N, D] (labels [N]); set the threshold.

        The threshold comes from ``val_features`` (never trained on) and, for ``knn``, the
        reference images' leave-one-out scores (each against the others: distributed as a new
        image's score is). Validation alone put it on a few hundred scores at best: on
        cat-breeds it flagged 8-10% of held-out images instead of 5%; with the leave-one-out
        scores, 4.7-5.3% (docs/lifecycle.md).
        """
        features = np.asarray(features, np.float32)
        y = np.asarray(y)
        if len(features) < 2:
            raise UserError("Expected at least 2 training images to fit the novelty score.")
        if self.method == "knn":
            ref = _normalise(features)
            if len(ref) > self.max_reference:
                keep = np.random.default_rng(self.seed).choice(
                    len(ref), self.max_reference, replace=False
                )
                ref = ref[np.sort(keep)]
            self.reference_ = ref
            self._knn = None
        else:
            classes = np.unique(y)
            self.means_ = np.stack([features[y == c].mean(axis=0) for c in classes])
            centred = features - self.means_[np.searchsorted(classes, y)]
            from sklearn.covariance import LedoitWolf

            cov = LedoitWolf(assume_centered=True).fit(centred).covariance_
            self.precision_ = np.linalg.pinv(cov).astype(np.float32)
        calib = (
            self.score(val_features)
            if val_features is not None and len(val_features)
            else np.zeros(0, np.float32)
        )
        n_val = len(calib)
        if self.method == "knn":
            calib = np.concatenate([calib, self._leave_one_out()])
        self.n_calibration_ = (n_val, len(calib) - n_val)
        self.val_scores_ = np.sort(calib).astype(np.float32)
        self.threshold_ = threshold_for_rate(self.val_scores_, self.rate)
        return self

    def _leave_one_out(self) -> np.ndarray:
        """knn scores of the reference images, each against the others (itself left out)."""
        sims = self.reference_ @ self.reference_.T
        k = min(self.k + 1, sims.shape[1])
        top = -np.partition(-sims, k - 1, axis=1)[:, :k]
        top.sort(axis=1)
        return (1.0 - top[:, ::-1][:, min(self.k, k - 1)]).astype(np.float32)

    # -- scoring ------------------------------------------------------------------------------

    @property
    def fitted(self) -> bool:
        return self.threshold_ is not None

    def score(self, features: np.ndarray) -> np.ndarray:
        """Novelty [N] for features [N, D]: the k-th nearest cosine distance, or the smallest
        class Mahalanobis distance (square root), depending on ``method``."""
        if self.reference_ is None and self.means_ is None:
            raise NotFittedError("This NoveltyScorer is not fitted yet: call fit first.")
        features = np.asarray(features, np.float32)
        if features.ndim != 2:
            raise ValueError(f"Expected features [N, D]. Received: shape={features.shape}")
        if len(features) == 0:
            return np.zeros(0, np.float32)
        if self.method == "knn":
            if self._knn is None:
                self._knn = _KnnSession(self.reference_, min(self.k, len(self.reference_)))
            return self._knn(_normalise(features))
        best = None
        for mean in self.means_:
            d = features - mean
            m = np.einsum("nd,de,ne->n", d, self.precision_, d)
            best = m if best is None else np.minimum(best, m)
        return np.sqrt(np.maximum(best, 0.0)).astype(np.float32)

    def unknown(self, novelty: np.ndarray) -> np.ndarray:
        """True where the novelty passes the threshold."""
        if self.threshold_ is None:
            raise NotFittedError("This NoveltyScorer is not fitted yet: call fit first.")
        return np.asarray(novelty) > self.threshold_

    # -- persistence --------------------------------------------------------------------------

    def card(self) -> dict[str, Any]:
        """What ``card.json["novelty"]`` says about the score and how its threshold was set."""
        vs = self.val_scores_ if self.val_scores_ is not None else np.zeros(0)
        return {
            "method": self.method,
            "k": self.k if self.method == "knn" else None,
            "threshold": self.threshold_,
            "target_rate": self.rate,
            "set_on": (
                f"{self.n_calibration_[0]} validation images"
                + (
                    f" and {self.n_calibration_[1]} training images scored against the others"
                    if self.n_calibration_[1]
                    else ""
                )
                + f": the threshold flags the top {self.rate:.0%} of them"
            ),
            "flagged_rate": float((vs > self.threshold_).mean()) if len(vs) else None,
            "n_reference": int(
                len(self.reference_) if self.reference_ is not None else len(self.means_)
            ),
            "features_output": "features",
            "file": NOVELTY_FILE,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the learned state to one ``.npz`` (atomically)."""
        path = Path(path)
        arrays: dict[str, np.ndarray] = {
            "method": np.array(self.method),
            "k": np.array(self.k),
            "rate": np.array(self.rate),
            "threshold": np.array(self.threshold_, np.float64),
            "val_scores": np.asarray(self.val_scores_, np.float32),
        }
        if self.method == "knn":
            arrays["reference"] = self.reference_.astype(np.float16)
        else:
            arrays["means"] = self.means_.astype(np.float32)
            arrays["precision"] = self.precision_.astype(np.float32)
        with atomic_open(path, "wb") as f:
            np.savez(f, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> NoveltyScorer:
        """Read a scorer written by :meth:`save`.

        Raises:
            UserError: when the file is damaged.
        """
        try:
            with np.load(path, allow_pickle=False) as z:
                scorer = cls(method=str(z["method"]), k=int(z["k"]), rate=float(z["rate"]))
                scorer.threshold_ = float(z["threshold"])
                scorer.val_scores_ = z["val_scores"].astype(np.float32)
                if scorer.method == "knn":
                    scorer.reference_ = z["reference"].astype(np.float32)
                else:
                    scorer.means_ = z["means"]
                    scorer.precision_ = z["precision"]
        except (OSError, KeyError, ValueError) as e:
            raise UserError(f"The novelty file '{path}' is damaged: {e}.") from None
        return scorer


def threshold_for_rate(scores: np.ndarray, rate: float) -> float:
    """The threshold above which ``round(rate * n)`` (at least 1) of ``scores`` lie: halfway
    between the highest score kept and the lowest one flagged."""
    s = np.sort(np.asarray(scores, np.float64))
    if len(s) == 0:
        raise UserError("Expected held-out images to set the unknown threshold. Received: none.")
    m = int(min(len(s) - 1, max(1, round(rate * len(s)))))
    if m <= 0:  # one score: flag anything stranger than it
        return float(s[-1])
    return float((s[len(s) - m - 1] + s[len(s) - m]) / 2)


class _KnnSession:
    """The k-th largest cosine similarity to the reference, on ONNX Runtime with one thread.

    Why not NumPy: its BLAS starts a thread per core for each small product, which on a busy
    2-core service cost 6x more than the product itself (11 ms instead of 1.8 ms per image,
    measured); limiting it per call is process-wide and not thread-safe. A one-thread session
    is safe to call from every serving lane at once, and costs ~0.3 ms per image for 2,000
    references of 1,280 dimensions.
    """

    def __init__(self, reference: np.ndarray, k: int) -> None:
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper

        ref_t = np.ascontiguousarray(reference.T.astype(np.float32))  # [D, M]
        graph = helper.make_graph(
            [
                helper.make_node("MatMul", ["x", "ref_t"], ["sims"]),
                helper.make_node("TopK", ["sims", "k"], ["top", "top_i"], axis=1, largest=1),
            ],
            "knn",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", ref_t.shape[0]])],
            [helper.make_tensor_value_info("top", TensorProto.FLOAT, ["N", k])],
            initializer=[
                numpy_helper.from_array(ref_t, "ref_t"),
                numpy_helper.from_array(np.array([k], np.int64), "k"),
            ],
        )
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        proto.ir_version = 8
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(
            proto.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"]
        )

    def __call__(self, unit: np.ndarray) -> np.ndarray:
        top = self.session.run(None, {"x": np.ascontiguousarray(unit, np.float32)})[0]
        return (1.0 - top[:, -1]).astype(np.float32)


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """Area under the ROC curve of a score that should be higher ``outside`` than ``inside``
    (the Mann-Whitney U statistic, ties counted half)."""
    inside = np.asarray(inside, np.float64)
    outside = np.asarray(outside, np.float64)
    both = np.concatenate([inside, outside])
    order = both.argsort(kind="mergesort")
    ranks = np.empty(len(both))
    ranks[order] = np.arange(1, len(both) + 1)
    # average ranks of ties
    _, inverse, counts = np.unique(both, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = (sums / counts)[inverse]
    u = ranks[len(inside) :].sum() - len(outside) * (len(outside) + 1) / 2
    return float(u / (len(inside) * len(outside)))
