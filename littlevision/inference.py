"""Prediction with ONNX Runtime: fast, TensorFlow-free, the same path for CLI and service."""

from __future__ import annotations

import csv
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from littlevision._system import available_cores
from littlevision.bundle import Bundle
from littlevision.errors import UserError
from littlevision.onnx_contract import ONNX_OUTPUT as ONNX_OUTPUT_NAME


def make_session(
    onnx_path: str | os.PathLike, threads: int | None = None, allow_spinning: bool = False
):
    """An ONNX Runtime session tuned for a small CPU: intra-op threads = cores, one inter-op.

    Idle worker threads sleep instead of spinning by default: on 2 cores spinning cost 20-100%
    more CPU per image and starved decoding running beside the model (measured by the doctor
    and serving benchmarks).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or available_cores()
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "1" if allow_spinning else "0")
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(
            str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
    except Exception as e:  # onnxruntime raises its own untyped errors for bad files
        raise UserError(f"Could not load the ONNX model '{onnx_path}': {e}") from None


@dataclass
class Predictions:
    """What :meth:`Predictor.predict_paths` returns: rows for the images that decoded."""

    paths: list[Path]
    probabilities: np.ndarray  # [N, C] float32
    labels: list[str]
    failures: list = field(default_factory=list)  # DecodeError for files that could not be read
    novelty: np.ndarray | None = None  # [N] float32, when the bundle has a novelty score
    threshold: float | None = None  # novelty above it is ``unknown``

    @property
    def unknown(self) -> np.ndarray | None:
        """[N] bool: the image looks like none of the training images (None without a score)."""
        if self.novelty is None or self.threshold is None:
            return None
        return self.novelty > self.threshold

    @property
    def predicted(self) -> list[str]:
        return [self.labels[i] for i in self.probabilities.argmax(axis=1)]

    @property
    def scores(self) -> np.ndarray:
        return self.probabilities.max(axis=1)


FEATURES_OUTPUT = "features"  # model.onnx's second output, when the bundle scores novelty

# Images per ONNX Runtime call when streaming files: with one thread per core, small batches
# stay in cache (lite0 on 2 cores: 173 img/s at 4, 171 at 8, 157 at 32).
STREAM_BATCH = 8


class OnnxModel:
    """An ONNX file run two ways: all cores on one call, or one core per call side by side.

    One call alone (a service's micro-batch when it is quiet, an array a user holds) is fastest
    with every core in one session. Calls that overlap (a busy service's batches, a stream of
    files) go faster each on one core of a shared one-thread session (``run`` is thread-safe):
    no hand-off between a decode pool and the model's threads, no threads fighting for cores.
    :meth:`run` picks by itself; :meth:`map_paths` always streams. Sessions are made on first use.

    Args:
        path: The ONNX file; its first input takes uint8 images ``[N, S, S, 3]``.
        threads: Cores to use (default: all).
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        self.path = Path(path)
        self.threads = threads or available_cores()
        self._session = None
        self._stream_session = None
        self._input = ""
        self._lock = threading.Lock()
        self._running = 0  # calls of run() in progress

    @property
    def session(self):
        """The all-cores session (loading it also checks the file)."""
        if self._session is None:
            self._session = make_session(self.path, self.threads)
            self._input = self._session.get_inputs()[0].name
        return self._session

    @property
    def stream_session(self):
        """The one-thread session (the all-cores one when there is a single core)."""
        if self._stream_session is None:
            self._stream_session = (
                make_session(self.path, threads=1) if self.threads > 1 else self.session
            )
        return self._stream_session

    def run(self, images: np.ndarray) -> np.ndarray:
        """The first output for one batch of uint8 images: on every core when no other call is
        running, else on one core beside it."""
        return self._run(None, images)[0]

    def run_outputs(self, images: np.ndarray, outputs: Sequence[str]) -> list[np.ndarray]:
        """Like :meth:`run`, but the named outputs (e.g. probabilities and features)."""
        return self._run(list(outputs), images)

    def _run(self, outputs: list[str] | None, images: np.ndarray) -> list[np.ndarray]:
        session = self.session
        with self._lock:
            self._running += 1
            if self._running > 1:
                session = self.stream_session
        try:
            return session.run(outputs, {self._input: np.ascontiguousarray(images)})
        finally:
            with self._lock:
                self._running -= 1

    def output_names(self) -> list[str]:
        return [o.name for o in self.session.get_outputs()]

    def map_paths(
        self,
        paths: Sequence[Path],
        size: int,
        batch_size: int = STREAM_BATCH,
        prepare: Callable[[np.ndarray], np.ndarray] | None = None,
        outputs: Sequence[str] | None = None,
        post: Callable[[list[np.ndarray]], np.ndarray] | None = None,
    ):
        """``(DecodeResult, output or None)`` per batch of files, in order, one worker per core.

        ``prepare`` changes each batch of decoded images before the model sees them (a mirror).
        With ``outputs``, those outputs are fetched and ``post`` turns them into the one array
        returned (in the worker, so it runs beside the model too).
        """
        from littlevision.data.decode import map_decoded

        session = self.stream_session
        name = session.get_inputs()[0].name

        def run(images: np.ndarray) -> np.ndarray:
            if prepare is not None:
                images = np.ascontiguousarray(prepare(images))
            if outputs:
                return post(session.run(list(outputs), {name: images}))
            return session.run(None, {name: images})[0]

        return map_decoded(paths, size, run, batch_size, workers=self.threads)


class Predictor:
    """Runs a bundle's ``model.onnx`` on uint8 images resized to ``image_size``.

    Args:
        onnx_path: The exported model (input ``image`` uint8 [N, S, S, 3]).
        labels: Class names in output order.
        image_size: S, the side every image is resized to.
        threads: Cores to use (default: all); see :class:`OnnxModel`.
        precision: What the file is (``fp32`` or ``int8``), reported with every answer.
    """

    def __init__(
        self,
        onnx_path,
        labels: Sequence[str],
        image_size: int,
        threads: int | None = None,
        novelty=None,
        precision: str = "fp32",
    ):
        self.onnx_path = Path(onnx_path)
        self.labels = list(labels)
        self.image_size = int(image_size)
        self.precision = precision
        self.model = OnnxModel(self.onnx_path, threads)  # sessions are made on first use
        self.novelty = novelty  # a fitted NoveltyScorer, or None

    @classmethod
    def from_bundle(
        cls,
        bundle: Bundle | str | os.PathLike,
        threads: int | None = None,
        precision: str = "auto",
    ) -> Predictor:
        """The bundle's fast int8 model when it has one (``precision="auto"``), else model.onnx;
        ``precision="fp32"`` always runs the exact model (see :meth:`Bundle.model_file`)."""
        if not isinstance(bundle, Bundle):
            bundle = Bundle.load(bundle)
        path, chosen = bundle.model_file(precision)
        return cls(
            path,
            bundle.labels,
            bundle.image_size,
            threads=threads,
            novelty=bundle.novelty,
            precision=chosen,
        )

    @property
    def scores_novelty(self) -> bool:
        """Whether predictions carry ``novelty``/``unknown`` (the bundle has a novelty score
        and its ONNX model the ``features`` output)."""
        return self.novelty is not None and FEATURES_OUTPUT in self.model.output_names()

    def _with_novelty(self, outs: list[np.ndarray]) -> np.ndarray:
        """[N, C + 1]: the probabilities, then each row's novelty."""
        probs, feats = outs
        return np.concatenate([probs, self.novelty.score(feats)[:, None]], axis=1)

    def score_array(self, images: np.ndarray) -> np.ndarray:
        """``predict_array`` with each row's novelty appended: [N, C + 1] (what the service's
        batcher calls; the probabilities alone when the bundle has no novelty score)."""
        images = self._check(images)
        if not self.scores_novelty:
            return self.model.run(images)
        return self._with_novelty(
            self.model.run_outputs(images, (ONNX_OUTPUT_NAME, FEATURES_OUTPUT))
        )

    def predict_array(self, images: np.ndarray) -> np.ndarray:
        """Probabilities [N, C] for uint8 images [N, S, S, 3] (or one image [S, S, 3])."""
        images = np.asarray(images)
        single = images.ndim == 3
        out = self.model.run(self._check(images[None] if single else images))
        return out[0] if single else out

    def _check(self, images: np.ndarray) -> np.ndarray:
        expected = (self.image_size, self.image_size, 3)
        if images.ndim != 4 or images.shape[1:] != expected:
            raise ValueError(
                f"Expected images of shape [N, {self.image_size}, {self.image_size}, 3]. "
                f"Received: shape={images.shape}"
            )
        if images.dtype != np.uint8:
            raise ValueError(f"Expected uint8 pixels. Received: dtype={images.dtype}")
        return images

    def predict_paths(
        self,
        paths: Sequence[str | os.PathLike],
        batch_size: int = STREAM_BATCH,
        progress: Callable[[int], None] | None = None,
    ) -> Predictions:
        """Decode (in parallel, safely) and predict; unreadable files are reported, not fatal."""
        paths = [Path(p) for p in paths]
        kept: list[Path] = []
        probs: list[np.ndarray] = []
        failures = []
        scored = self.scores_novelty
        extra = (
            {"outputs": (ONNX_OUTPUT_NAME, FEATURES_OUTPUT), "post": self._with_novelty}
            if scored
            else {}
        )
        for batch, batch_probs in self.model.map_paths(paths, self.image_size, batch_size, **extra):
            failures.extend(batch.failures)
            if batch_probs is not None:
                probs.append(batch_probs)
                kept.extend(paths[i] for i in batch.ok_indices)
            if progress:
                progress(len(batch.ok_indices) + len(batch.failures))
        width = len(self.labels) + (1 if scored else 0)
        out = np.concatenate(probs) if probs else np.zeros((0, width), np.float32)
        return Predictions(
            paths=kept,
            probabilities=out[:, : len(self.labels)],
            labels=self.labels,
            failures=failures,
            novelty=out[:, -1] if scored else None,
            threshold=self.novelty.threshold_ if scored else None,
        )


class PredictionCsv:
    """The ``littlevision predict`` CSV: ``path,label,score`` then one probability per class.

    One writer for every engine (local and Ray), so their files are identical row for row.
    """

    def __init__(
        self, path: str | os.PathLike, labels: Sequence[str], threshold: float | None = None
    ) -> None:
        self.labels = list(labels)
        self.threshold = threshold  # given: the last two columns are ``unknown`` and ``novelty``
        self.file = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.writer = csv.writer(self.file)
        extra = ["unknown", "novelty"] if threshold is not None else []
        self.writer.writerow(["path", "label", "score", *self.labels, *extra])

    def write(
        self,
        names: Sequence[str | os.PathLike],
        probs: np.ndarray,
        novelty: np.ndarray | None = None,
    ) -> None:
        if self.threshold is not None and novelty is None:
            raise ValueError("Expected novelty values: this CSV has unknown/novelty columns.")
        for i, (name, row) in enumerate(zip(names, probs, strict=True)):
            extra = []
            if self.threshold is not None:
                extra = [str(bool(novelty[i] > self.threshold)).lower(), f"{novelty[i]:.6f}"]
            self.writer.writerow(
                [
                    str(name),
                    self.labels[int(row.argmax())],
                    f"{row.max():.6f}",
                    *(f"{p:.6f}" for p in row),
                    *extra,
                ]
            )

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> PredictionCsv:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
