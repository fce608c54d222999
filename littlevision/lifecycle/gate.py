"""The gate: is a candidate at least as good as the version being served?

Both are scored on the same frozen data: the served version's validation split (never trained
on by either) and the held-out part of the feedback (never trained on). The rule
(:class:`GateRule`, defaults):

- on the frozen validation split, the candidate gets at most ``accuracy_slack_images`` (1) fewer
  images right, and its log-loss is at most ``log_loss_slack`` (0.005) higher;
- on the held-out feedback, it gets at least as many images right.

A bottleneck model is a linear head on frozen backbone features, so both models are scored
from the embedding cache with their heads read from model.onnx (no image is decoded twice);
any other model is run whole on the images with ONNX Runtime.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from littlevision.bundle import Bundle
from littlevision.inference import Predictor

EPS = 1e-15


@dataclass(frozen=True)
class GateRule:
    """When a candidate may replace the served version (see the module docstring)."""

    accuracy_slack_images: int = 1
    log_loss_slack: float = 0.005
    feedback_slack_images: int = 0

    def describe(self) -> str:
        return (
            f"on the frozen validation split: at most {self.accuracy_slack_images} image(s) "
            f"fewer right and log-loss at most {self.log_loss_slack:g} higher; on the held-out "
            f"feedback: at most {self.feedback_slack_images} image(s) fewer right"
        )


@dataclass(frozen=True)
class Score:
    """One model on one set of images."""

    n: int
    correct: int
    accuracy: float | None
    log_loss: float | None


def score(probs: np.ndarray, y: np.ndarray) -> Score:
    """Accuracy and log-loss of probabilities [N, C] for labels [N] (indices into C)."""
    n = len(y)
    if n == 0:
        return Score(0, 0, None, None)
    correct = int((probs.argmax(axis=1) == y).sum())
    p = np.clip(probs[np.arange(n), y], EPS, 1.0)
    return Score(n, correct, correct / n, float(-np.log(p).mean()))


def linear_head(onnx_path) -> tuple[np.ndarray, np.ndarray] | None:
    """(kernel [D, C], bias [C]) when model.onnx ends ``features -> Gemm -> Softmax``, else None."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    g = model.graph
    producer = {out: node for node in g.node for out in node.output}
    inits = {t.name: t for t in g.initializer}
    outputs = [o.name for o in g.output]
    if len(outputs) < 2 or outputs[1] != "features":
        return None
    node = producer.get(outputs[0])
    while node is not None and node.op_type == "Identity":
        node = producer.get(node.input[0])
    if node is None or node.op_type != "Softmax":
        return None
    gemm = producer.get(node.input[0])
    feats = producer.get("features")
    if gemm is None or gemm.op_type != "Gemm" or feats is None:
        return None
    if gemm.input[0] != feats.input[0] or any(
        a.name in ("transA", "transB") for a in gemm.attribute
    ):
        return None
    if gemm.input[1] not in inits or len(gemm.input) < 3 or gemm.input[2] not in inits:
        return None
    kernel = numpy_helper.to_array(inits[gemm.input[1]]).astype(np.float32)
    bias = numpy_helper.to_array(inits[gemm.input[2]]).astype(np.float32)
    return kernel, bias


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class Scorer:
    """Probabilities of a bundle on image files, from cached features when it can.

    Args:
        frozen_backbone: The backbone name when the bundle's features are the frozen
            backbone's (then the embedding cache is used), else None.
    """

    def __init__(self, bundle: Bundle, frozen_backbone: str | None) -> None:
        self.bundle = bundle
        self.head = linear_head(bundle.onnx_path) if frozen_backbone else None
        self.embedder = None
        if self.head is not None:
            from littlevision.features import Embedder

            self.embedder = Embedder(frozen_backbone, bundle.image_size)

    def probabilities(self, paths) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities [n_ok, C], indices into ``paths`` of the images that decoded)."""
        paths = list(paths)
        if not paths:
            return np.zeros((0, len(self.bundle.labels)), np.float32), np.zeros(0, np.int64)
        if self.embedder is not None:
            emb = self.embedder.embed_paths(paths)
            kernel, bias = self.head
            return _softmax(emb.features @ kernel + bias), emb.ok_indices
        # The exact models are compared (their int8 copies have their own gate at train time).
        preds = Predictor.from_bundle(self.bundle, precision="fp32").predict_paths(paths)
        index = {str(p): i for i, p in enumerate(paths)}
        return preds.probabilities, np.array([index[str(p)] for p in preds.paths], np.int64)


def evaluate_pair(
    current: Scorer, candidate: Scorer, paths, y: np.ndarray
) -> dict[str, dict[str, Any]]:
    """Both models on the same images; labels ``y`` index the candidate's classes (the
    current model's classes come first in it, so a label it lacks scores as a miss)."""
    out = {}
    for name, scorer in (("current", current), ("candidate", candidate)):
        probs, ok = scorer.probabilities(paths)
        width = len(candidate.bundle.labels)
        if probs.shape[1] < width:  # the current model knows fewer classes
            probs = np.concatenate(
                [probs, np.zeros((len(probs), width - probs.shape[1]), probs.dtype)], axis=1
            )
        out[name] = asdict(score(probs, np.asarray(y)[ok]))
    return out


def decide(
    frozen: dict[str, dict[str, Any]], feedback: dict[str, dict[str, Any]], rule: GateRule
) -> tuple[bool, list[str]]:
    """Apply ``rule``; returns (passed, reasons it failed, each one sentence)."""
    reasons = []
    cur, cand = frozen["current"], frozen["candidate"]
    if cur["n"]:
        if cand["correct"] < cur["correct"] - rule.accuracy_slack_images:
            reasons.append(
                f"it gets {cand['correct']} of {cand['n']} frozen validation images right, "
                f"the served version {cur['correct']}"
            )
        if cand["log_loss"] > cur["log_loss"] + rule.log_loss_slack:
            reasons.append(
                f"its validation log-loss is {cand['log_loss']:.4f}, the served version's "
                f"{cur['log_loss']:.4f}"
            )
    cur, cand = feedback["current"], feedback["candidate"]
    if cur["n"] and cand["correct"] < cur["correct"] - rule.feedback_slack_images:
        reasons.append(
            f"it gets {cand['correct']} of {cand['n']} held-out feedback images right, "
            f"the served version {cur['correct']}"
        )
    return not reasons, reasons
