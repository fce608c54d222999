"""L2-regularised multinomial logistic regression, fitted fast on backbone features.

Why not scikit-learn's LogisticRegressionCV: on 2 cores it spent 50-110 CPU-seconds choosing the
regularisation for 5 classes x 1,600 images (OpenBLAS threads spinning on skinny products, float64
copies). The same objective minimised here with L-BFGS in float32, one BLAS thread, and warm starts
along the regularisation path takes 2-7 s, with the same chosen C and the same accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from littlevision.metrics import log_loss


@dataclass
class LinearFit:
    """Softmax weights: probabilities are softmax(z @ kernel + bias)."""

    kernel: np.ndarray  # [D, K]
    bias: np.ndarray  # [K]
    iterations: int


def _objective(z: np.ndarray, y: np.ndarray, sample_weight: np.ndarray, k: int, lam: float):
    n, d = z.shape
    onehot = np.eye(k, dtype=np.float32)[y]
    sw = (sample_weight / sample_weight.sum()).astype(np.float32)[:, None]

    def fun(w: np.ndarray):
        kernel = w[: d * k].reshape(d, k).astype(np.float32)
        bias = w[d * k :].astype(np.float32)
        logits = z @ kernel + bias
        logits -= logits.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(logits).sum(axis=1, keepdims=True))
        logp = logits - log_norm
        loss = -(sw[:, 0] * logp[np.arange(n), y]).sum() + 0.5 * lam * float(
            (kernel * kernel).sum()
        )
        grad_logits = (np.exp(logp) - onehot) * sw
        g_kernel = z.T @ grad_logits + lam * kernel
        return float(loss), np.concatenate([g_kernel.ravel(), grad_logits.sum(axis=0)]).astype(
            np.float64
        )

    return fun


def fit_softmax(
    z: np.ndarray,
    y: np.ndarray,
    k: int,
    C: float,
    sample_weight: np.ndarray | None = None,
    init: LinearFit | None = None,
    max_iter: int = 300,
) -> LinearFit:
    """Minimise mean cross-entropy + ||W||^2 / (2 C N): scikit-learn's C, on ``k`` classes."""
    from scipy.optimize import minimize

    z = np.ascontiguousarray(z, dtype=np.float32)
    n, d = z.shape
    sw = np.ones(n, np.float32) if sample_weight is None else np.asarray(sample_weight, np.float32)
    w0 = (
        np.zeros(d * k + k)
        if init is None
        else np.concatenate([init.kernel.ravel(), init.bias]).astype(np.float64)
    )
    res = minimize(
        _objective(z, y, sw, k, 1.0 / (C * n)),
        w0,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "gtol": 1e-5},
    )
    return LinearFit(
        res.x[: d * k].reshape(d, k).astype(np.float32),
        res.x[d * k :].astype(np.float32),
        int(res.nit),
    )


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities [N, K] from logits [N, K], stable for large logits."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def predict_proba(fit: LinearFit, z: np.ndarray) -> np.ndarray:
    """softmax(z @ kernel + bias): probabilities [N, K] for features ``z`` [N, D]."""
    return softmax(z @ fit.kernel + fit.bias)


def choose_c(
    z: np.ndarray,
    y: np.ndarray,
    k: int,
    folds: list[tuple[np.ndarray, np.ndarray]],
    grid: np.ndarray,
    sample_weight: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """The C of ``grid`` with the lowest mean held-out log-loss; warm starts from strong to weak."""
    from threadpoolctl import threadpool_limits

    scores = np.zeros(len(grid))
    sw = np.ones(len(y), np.float32) if sample_weight is None else sample_weight
    with threadpool_limits(1):  # skinny products: one BLAS thread is faster and spins less
        for train_idx, test_idx in folds:
            fit = None
            for j, c in enumerate(sorted(grid)):
                fit = fit_softmax(z[train_idx], y[train_idx], k, c, sw[train_idx], init=fit)
                scores[j] += log_loss(y[test_idx], predict_proba(fit, z[test_idx]))
    best = sorted(grid)[int(scores.argmin())]
    return float(best), scores / len(folds)
