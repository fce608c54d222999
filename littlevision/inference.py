"""Prediction with ONNX Runtime: fast, TensorFlow-free, the same path for CLI and service."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from littlevision.bundle import ONNX_INPUT, Bundle
from littlevision.errors import UserError


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def make_session(onnx_path: str | os.PathLike, threads: int | None = None,
                 allow_spinning: bool = False):
    """An ONNX Runtime session tuned for a small CPU: intra-op threads = cores, one inter-op.

    Idle worker threads sleep instead of spinning by default: on 2 cores spinning cost 20-100%
    more CPU per image and starved decoding running beside the model (measured by the doctor
    and serving benchmarks).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or default_threads()
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own untyped errors for bad files
        raise UserError(f"Could not load the ONNX model '{onnx_path}': {e}") from None


@dataclass
class Predictions:
    """What :meth:`Predictor.predict_paths` returns: rows for the images that decoded."""

    paths: list[Path]
    probabilities: np.ndarray  # [N, C] float32
    labels: list[str]
    failures: list = field(default_factory=list)  # DecodeError for files that could not be read

    @property
    def predicted(self) -> list[str]:
        return [self.labels[i] for i in self.probabilities.argmax(axis=1)]

    @property
    def scores(self) -> np.ndarray:
        return self.probabilities.max(axis=1)


class Predictor:
    """Runs a bundle's ``model.onnx`` on uint8 images resized to ``image_size``.

    Args:
        onnx_path: The exported model (input ``image`` uint8 [N, S, S, 3]).
        labels: Class names in output order.
        image_size: S, the side every image is resized to.
        threads: ONNX Runtime intra-op threads (default: all cores).
    """

    def __init__(self, onnx_path, labels: Sequence[str], image_size: int, threads: int | None = None):
        self.onnx_path = Path(onnx_path)
        self.labels = list(labels)
        self.image_size = int(image_size)
        self.session = make_session(self.onnx_path, threads)

    @classmethod
    def from_bundle(cls, bundle: Bundle | str | os.PathLike, threads: int | None = None) -> Predictor:
        if not isinstance(bundle, Bundle):
            bundle = Bundle.load(bundle)
        return cls(bundle.onnx_path, bundle.labels, bundle.image_size, threads=threads)

    def predict_array(self, images: np.ndarray) -> np.ndarray:
        """Probabilities [N, C] for uint8 images [N, S, S, 3] (or one image [S, S, 3])."""
        images = np.asarray(images)
        single = images.ndim == 3
        if single:
            images = images[None]
        expected = (self.image_size, self.image_size, 3)
        if images.ndim != 4 or images.shape[1:] != expected:
            raise ValueError(f"Expected images of shape [N, {self.image_size}, {self.image_size}, 3]. "
                             f"Received: shape={images.shape}")
        if images.dtype != np.uint8:
            raise ValueError(f"Expected uint8 pixels. Received: dtype={images.dtype}")
        out = self.session.run(None, {ONNX_INPUT: np.ascontiguousarray(images)})[0]
        return out[0] if single else out

    def predict_paths(
        self,
        paths: Sequence[str | os.PathLike],
        batch_size: int = 32,
        progress: Callable[[int], None] | None = None,
    ) -> Predictions:
        """Decode (in parallel, safely) and predict; unreadable files are reported, not fatal."""
        from littlevision.data.decode import iter_decoded

        paths = [Path(p) for p in paths]
        kept: list[Path] = []
        probs: list[np.ndarray] = []
        failures = []
        for batch in iter_decoded(paths, self.image_size, batch_size=batch_size):
            failures.extend(batch.failures)
            if len(batch.ok_indices):
                probs.append(self.predict_array(batch.images))
                kept.extend(paths[i] for i in batch.ok_indices)
            if progress:
                progress(len(batch.ok_indices) + len(batch.failures))
        probabilities = np.concatenate(probs) if probs else np.zeros((0, len(self.labels)), np.float32)
        return Predictions(paths=kept, probabilities=probabilities, labels=self.labels, failures=failures)


class PredictionCsv:
    """The ``littlevision predict`` CSV: ``path,label,score`` then one probability per class.

    One writer for every engine (local and Ray), so their files are identical row for row.
    """

    def __init__(self, path: str | os.PathLike, labels: Sequence[str]) -> None:
        self.labels = list(labels)
        self.file = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.writer = csv.writer(self.file)
        self.writer.writerow(["path", "label", "score", *self.labels])

    def write(self, names: Sequence[str | os.PathLike], probs: np.ndarray) -> None:
        for name, row in zip(names, probs, strict=True):
            self.writer.writerow([str(name), self.labels[int(row.argmax())], f"{row.max():.6f}",
                                  *(f"{p:.6f}" for p in row)])

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> PredictionCsv:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
