"""The model being served, and its hot reload.

A :class:`LoadedModel` is immutable once warmed up; the :class:`ModelStore` swaps the whole
object in one assignment, so a request sees either the old model or the new one, never a mix.
A reload loads and warms the new model in a worker thread while the old one keeps answering;
if anything fails, the old one stays and the error is kept for ``/v1/model`` and the logs.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from littlevision.bundle import CURRENT_LINK, FAST_MODEL_FILE, REQUIRED_FILES, Bundle
from littlevision.errors import UserError
from littlevision.inference import Predictor
from littlevision.onnx_contract import ONNX_INPUT

log = logging.getLogger("littlevision.serving")

WATCHED_FILES = (*REQUIRED_FILES, FAST_MODEL_FILE, "model.keras", "metrics.json")


@dataclass(eq=False)
class LoadedModel:
    """One bundle, loaded and warmed: what a request is answered with.

    Attributes:
        bundle: The run folder's small files.
        predictor: The ONNX Runtime session (thread-safe for ``run``).
        version: Content hash of model.onnx (or the card's ``model_version``).
        loaded_at: Unix time when it started serving.
    """

    bundle: Bundle
    predictor: Predictor
    version: str
    loaded_at: float

    def __post_init__(self) -> None:
        # A stand-in predictor (a test's) without a novelty score is served without one.
        scores = getattr(self.predictor, "scores_novelty", False)
        self.scoring = _Scoring(self.predictor) if scores else None

    @property
    def threshold(self) -> float | None:
        """Novelty above it is ``unknown``; None for a bundle without a novelty score."""
        return self.predictor.novelty.threshold_ if self.scoring is not None else None

    @property
    def name(self) -> str:
        return self.bundle.name

    @property
    def labels(self) -> list[str]:
        return self.bundle.labels

    @property
    def image_size(self) -> int:
        return self.bundle.image_size

    @property
    def precision(self) -> str:
        """Which model file answers: ``int8`` (model.int8.onnx) or ``fp32`` (model.onnx)."""
        return self.predictor.precision

    def predict_array(self, images: np.ndarray) -> np.ndarray:
        """Probabilities [N, C] for uint8 images [N, S, S, 3] (what the batcher calls)."""
        return self.predictor.predict_array(images)


class _Scoring:
    """The batcher's view of a model that scores novelty: ``predict_array`` answers
    [N, C + 1], the probabilities then the novelty (one object per model, so the batcher still
    groups a model's images together)."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor

    def predict_array(self, images: np.ndarray) -> np.ndarray:
        return self.predictor.score_array(images)


def load_model(
    run_dir: str | os.PathLike, threads: int | None, warm_batch: int, precision: str = "auto"
) -> LoadedModel:
    """Load a bundle and check that it answers sensibly before it may serve.

    Args:
        run_dir: The run folder.
        threads: ONNX Runtime intra-op threads.
        warm_batch: Also run a batch this big, so the first real batch is not the slow one.
        precision: ``auto`` (the bundle's int8 model when it has one), ``fp32`` or ``int8``.

    Raises:
        UserError: when the folder is not a bundle, the model does not load, or its warm-up
            answer does not have one probability per label summing to 1.
    """
    bundle = Bundle.load(run_dir)
    version = bundle.version
    predictor = Predictor.from_bundle(bundle, threads, precision)
    size, n_labels = bundle.image_size, len(bundle.labels)
    if n_labels < 2:
        raise UserError(f"Expected at least 2 labels in labels.json. Received: {bundle.labels}")
    # Warm both sessions (all cores when alone, one core beside another call), every batch size.
    onnx = predictor.model
    sessions = [onnx.session] + (
        [onnx.stream_session] if onnx.stream_session is not onnx.session else []
    )
    for session, n in itertools.product(sessions, sorted({1, max(1, int(warm_batch))})):
        try:
            probs = session.run(None, {ONNX_INPUT: np.zeros((n, size, size, 3), np.uint8)})[0]
        except Exception as e:  # onnxruntime raises its own untyped errors
            raise UserError(f"The model in '{run_dir}' failed its warm-up: {e}") from None
        if probs.shape != (n, n_labels):
            raise UserError(
                f"The model in '{run_dir}' answers {probs.shape[-1]} probabilities but "
                f"labels.json names {n_labels} classes. Expected shape {(n, n_labels)}. "
                f"Received: {tuple(probs.shape)}"
            )
        if not np.all(np.isfinite(probs)) or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-3):
            raise UserError(
                f"The model in '{run_dir}' does not answer probabilities (rows must sum to 1)."
            )
    if predictor.scores_novelty:  # build the novelty session now, not on the first request
        try:
            scored = predictor.score_array(np.zeros((1, size, size, 3), np.uint8))
        except Exception as e:
            raise UserError(f"The novelty score in '{run_dir}' failed its warm-up: {e}") from None
        if scored.shape != (1, n_labels + 1) or not np.isfinite(scored).all():
            raise UserError(f"The novelty score in '{run_dir}' does not answer one number.")
    return LoadedModel(bundle=bundle, predictor=predictor, version=version, loaded_at=time.time())


@dataclass(frozen=True)
class ReloadResult:
    """What a reload did: ``ok`` with the new version, or the error and the version kept."""

    ok: bool
    version: str | None
    previous: str | None
    error: str | None = None
    seconds: float = 0.0


class ModelStore:
    """Holds the serving model; reloads it from the run folder on request or when it changes.

    Args:
        run_dir: The run folder being served.
        threads: ONNX Runtime intra-op threads.
        warm_batch: Batch size of the warm-up call (the service's ``max_batch``).
        precision: Which model file to serve (see :meth:`Bundle.model_file`).
        on_swap: Called with the new model after every successful (re)load.
        on_reload: Called with each :class:`ReloadResult` (for metrics).
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        threads: int | None = None,
        warm_batch: int = 1,
        on_swap: Callable[[LoadedModel], None] | None = None,
        on_reload: Callable[[ReloadResult], None] | None = None,
        precision: str = "auto",
    ) -> None:
        self.run_dir = Path(run_dir)
        self.threads = threads
        self.precision = precision
        self.warm_batch = warm_batch
        self.on_swap = on_swap
        self.on_reload = on_reload
        self._current: LoadedModel | None = None
        self._lock: asyncio.Lock | None = None
        self.last_error: str | None = None
        self.last_reload: ReloadResult | None = None
        self._stamp: tuple | None = None  # fingerprint of the files last loaded (or tried)

    @property
    def current(self) -> LoadedModel | None:
        """The model answering now (None before the first load)."""
        return self._current

    def set_current(self, model: LoadedModel) -> None:
        """Swap in an already loaded model (one assignment: atomic for every reader)."""
        self._current = model
        if self.on_swap is not None:
            self.on_swap(model)

    async def load_initial(self) -> LoadedModel:
        """Load at start-up; a failure here is fatal (raised), unlike a reload's."""
        stamp = fingerprint(self.run_dir)
        model = await asyncio.to_thread(
            load_model, self.run_dir, self.threads, self.warm_batch, self.precision
        )
        self._stamp = stamp
        self.set_current(model)
        return model

    async def reload(self, reason: str = "request") -> ReloadResult:
        """Load the run folder again and swap it in; keep the old model if that fails."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            previous = self._current.version if self._current else None
            start = time.perf_counter()
            stamp = fingerprint(self.run_dir)
            try:
                model = await asyncio.to_thread(
                    load_model, self.run_dir, self.threads, self.warm_batch, self.precision
                )
            except Exception as e:  # any failure keeps the old model serving
                message = str(e) if isinstance(e, UserError) else f"{type(e).__name__}: {e}"
                result = ReloadResult(
                    False, previous, previous, message, time.perf_counter() - start
                )
                self.last_error = message
                log.error("Reload (%s) failed; still serving %s: %s", reason, previous, message)
            else:
                self.set_current(model)
                self.last_error = None
                result = ReloadResult(
                    True, model.version, previous, None, time.perf_counter() - start
                )
                log.info(
                    "Reloaded (%s): %s -> %s in %.2f s",
                    reason,
                    previous,
                    model.version,
                    result.seconds,
                )
            self._stamp = stamp
            await asyncio.to_thread(trim_heap)  # the old sessions' memory back to the system
            self.last_reload = result
            if self.on_reload is not None:
                self.on_reload(result)
            return result

    async def watch(self, interval_s: float) -> None:
        """Reload when the bundle's files change and then stay unchanged for one interval.

        Waiting for the files to settle avoids loading a model.onnx that is still being
        written; a failed load is not retried until the files change again.
        """
        seen = fingerprint(self.run_dir)
        while True:
            await asyncio.sleep(interval_s)
            now = fingerprint(self.run_dir)
            if now != seen:
                seen = now  # still changing: wait for it to settle
                continue
            if self._stamp is not None and now != self._stamp:
                await self.reload(reason="files changed")


def fingerprint(run_dir: Path) -> tuple:
    """Size and modification time of each bundle file, and the version ``current`` points to:
    cheap to compute every few seconds."""
    out = [("current", os.path.realpath(run_dir / CURRENT_LINK))]
    for name in WATCHED_FILES:
        try:
            st = os.stat(run_dir / name)
            out.append((name, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((name, None, None))
    return tuple(out)


def trim_heap() -> None:
    """Give memory freed by native code back to the operating system (glibc only).

    An ONNX Runtime session allocates and frees hundreds of MB in arenas that glibc keeps for
    reuse; after each reload the old sessions' memory stayed in the process, so a service
    reloaded every minute grew by ~15 MB a reload (255 -> 430 MB after 12 reloads, no object
    leaked). ``malloc_trim(0)`` returns it: the same loop stays at 238 MB (docs/benchmarks.md).
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # musl or another libc: nothing to do
        pass
