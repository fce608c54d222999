"""The state of one running service: model, batcher, worker threads, metrics, admission.

One :class:`Runtime` per app, created by :func:`littlevision.serving.create_app` and started in
the app's lifespan, so importing or creating an app costs nothing and tests stay fast.
Endpoints reach it through ``littlevision.serving.dependencies``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np

from littlevision._system import available_cores
from littlevision.data.decode import MAX_PIXELS, DecodeError, load_image
from littlevision.serving.batcher import BatcherClosedError, MicroBatcher, QueueFullError
from littlevision.serving.collect import Collector
from littlevision.serving.drift import DriftMonitor
from littlevision.serving.errors import ApiError, decode_error
from littlevision.serving.metrics import ServingMetrics
from littlevision.serving.model_store import LoadedModel, ModelStore, ReloadResult
from littlevision.serving.settings import ServeSettings

log = logging.getLogger("littlevision.serving")

T = TypeVar("T")


class Runtime:
    """Everything a request needs besides its own input.

    Args:
        run_dir: The run folder being served.
        settings: How to serve it.
    """

    def __init__(self, run_dir: str | os.PathLike, settings: ServeSettings) -> None:
        self.run_dir = Path(run_dir)
        self.settings = settings
        self.batcher = MicroBatcher(
            settings.max_batch,
            settings.batch_wait_ms,
            settings.max_queue,
            on_batch=self._on_batch,
            upcoming=self._upcoming,
            lanes=settings.threads or available_cores(),
        )
        self.metrics = ServingMetrics(queue_depth=lambda: self.batcher.depth)
        self.store = ModelStore(
            self.run_dir,
            settings.threads,
            settings.max_batch,
            on_swap=self._on_swap,
            on_reload=self._on_reload,
            precision=settings.precision,
        )
        self.drift = DriftMonitor()
        self.drift.register(self.metrics.registry)
        self.collector: Collector | None = None
        if settings.collect:
            self.collector = Collector(
                self.run_dir,
                settings.collect_max_images,
                settings.collect_max_bytes,
                settings.collect_below_score,
            )
            self.metrics.registry.register(self.collector.results)
        self.draining = False
        self.startup_error: str | None = None
        self.pending = 0  # images admitted and not yet answered
        self._decode_pool: ThreadPoolExecutor | None = None
        self._explain_pool: ThreadPoolExecutor | None = None
        self._watch_task: asyncio.Task | None = None
        self._parse_slots = asyncio.Semaphore(settings.max_parses)

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Load and warm the model, then start the batcher and the folder watcher.

        Raises:
            UserError: when the bundle cannot be loaded or fails its warm-up.
        """
        workers = self.settings.decode_threads or available_cores()
        self._decode_pool = ThreadPoolExecutor(workers, thread_name_prefix="lv-decode")
        self._explain_pool = ThreadPoolExecutor(1, thread_name_prefix="lv-explain")
        model = await self.store.load_initial()
        if self.settings.explain and self.settings.warm_explain:
            await self.run_in_explain_thread(_warm_explain, model)
        await self.batcher.start()
        if self.settings.watch_interval_s > 0:
            self._watch_task = asyncio.create_task(
                self.store.watch(self.settings.watch_interval_s), name="littlevision-watch"
            )
        log.info(
            "Serving %s version %s (%d labels, %dx%d input)",
            model.name,
            model.version,
            len(model.labels),
            model.image_size,
            model.image_size,
        )

    async def stop(self) -> None:
        """Answer what was accepted, then release threads. Called after the server drained."""
        self.draining = True
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
            self._watch_task = None
        await self.batcher.stop()
        for pool in (self._decode_pool, self._explain_pool):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        self._decode_pool = self._explain_pool = None

    @property
    def ready(self) -> bool:
        """Model loaded and warmed, batcher running, not shutting down."""
        return self.store.current is not None and self.batcher.running and not self.draining

    @property
    def model(self) -> LoadedModel:
        """The model answering now; 503 before start-up finished or while shutting down."""
        model = self.store.current
        if model is None or not self.batcher.running:
            raise ApiError(
                503,
                "not_ready",
                "The model is not loaded yet; retry shortly.",
                {"Retry-After": "1"},
            )
        return model

    # -- admission and time limits ------------------------------------------------------------

    def _full(self, reason: str) -> ApiError:
        self.metrics.rejected.inc(reason=reason)
        retry = str(self.batcher.retry_after_s())
        return ApiError(
            429,
            "queue_full",
            f"The service is at capacity ({self.pending} images pending); retry after {retry} s.",
            {"Retry-After": retry},
        )

    def check_capacity(self, images: int = 1) -> None:
        """429 at once when ``images`` more would pass the limit; takes no slot.

        Endpoints call it before reading a body, so a full service does not first receive
        uploads it will refuse; the slot itself is taken by :meth:`admit` once the body is in.
        """
        if self.pending + images > self.settings.max_queue:
            raise self._full("queue_full")

    @contextlib.asynccontextmanager
    async def admit(self, images: int = 1) -> AsyncIterator[None]:
        """Count ``images`` as pending for the block; 429 at once when that would pass the limit.

        Turning work away at the door keeps the latency of accepted requests bounded and the
        memory of queued uploads capped, instead of letting every request get slower. Endpoints
        admit only once the request body is in: a slow upload never holds a slot (its time is
        bounded by ``body_timeout_s`` instead). A request that reaches the app after SIGTERM (in
        the instant before the listener closes) is still served: it was accepted.
        """
        self.check_capacity(images)
        self.pending += images
        try:
            yield
        finally:
            self.pending -= images

    @contextlib.asynccontextmanager
    async def deadline(self, seconds: float | None = None) -> AsyncIterator[None]:
        """Fail the block with 503 ``timeout`` (and ``Retry-After``) when it takes too long."""
        seconds = self.settings.request_timeout_s if seconds is None else seconds
        try:
            async with asyncio.timeout(seconds):
                yield
        except TimeoutError:
            self.metrics.rejected.inc(reason="timeout")
            raise ApiError(
                503,
                "timeout",
                f"No answer within {seconds:g} s; retry later.",
                {"Retry-After": str(self.batcher.retry_after_s())},
            ) from None

    # -- work ---------------------------------------------------------------------------------

    async def decode(self, data: bytes, size: int) -> np.ndarray:
        """Decode an upload to uint8 [size, size, 3] in a worker thread.

        Raises:
            ApiError: 4xx with the decoder's reason (``empty``, ``not_image``, ``truncated``,
                ``too_large``, ``unreadable``).
        """
        loop = asyncio.get_running_loop()
        max_pixels = self.settings.max_pixels or MAX_PIXELS
        try:
            return await loop.run_in_executor(
                self._decode_pool, lambda: load_image(data, size, max_pixels=max_pixels)
            )
        except DecodeError as e:
            self.metrics.decode_errors.inc(reason=e.reason)
            raise decode_error(e) from None
        except (
            MemoryError,
            RecursionError,
            ArithmeticError,
            LookupError,
            TypeError,
            ValueError,
            OSError,
        ) as e:
            # The decoder should have said DecodeError; an odd file is still the client's
            # problem, not a reason for a 500. Logged so the decoder can learn about it.
            log.warning("Decoder raised %s for an upload: %s", type(e).__name__, e)
            self.metrics.decode_errors.inc(reason="unreadable")
            raise ApiError(
                422, "unreadable", "The upload cannot be used: it could not be decoded as an image."
            ) from None

    async def classify(self, model: LoadedModel, images: np.ndarray) -> np.ndarray:
        """Probabilities for one image [S, S, 3] -> [C] or a stack [k, S, S, 3] -> [k, C].

        Raises:
            ApiError: 429 when the queue is full, 503 while shutting down.
        """
        probs, _ = await self.classify_scored(model, images)
        return probs

    async def classify_scored(
        self, model: LoadedModel, images: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities and novelty: ([C], scalar) for one image, ([k, C], [k]) for a stack;
        the novelty is None for a bundle without a novelty score.

        Every answer is also recorded for the drift figures.

        Raises:
            ApiError: 429 when the queue is full, 503 while shutting down.
        """
        out = await self._submit(model.scoring or model, images)
        if model.scoring is None:
            probs, novelty = out, None
        else:
            probs, novelty = out[..., :-1], out[..., -1]
        self.drift.record(model, probs, novelty)
        return probs, novelty

    def consider_collecting(self, model: LoadedModel, data: bytes, answer: dict) -> None:
        """With ``--collect``, keep an uncertain image (written off the event loop)."""
        collector = self.collector
        if collector is None or not collector.wants(answer) or self._decode_pool is None:
            return

        def keep() -> None:
            try:
                collector.add(data, answer, model.version)
            except OSError as e:  # a full disk must not fail the prediction
                log.warning("Could not keep an uncertain image in collected/: %s", e)

        self._decode_pool.submit(keep)

    async def _submit(self, model, images: np.ndarray) -> np.ndarray:
        try:
            return await self.batcher.submit(model, images)
        except QueueFullError:
            raise self._full("queue_full") from None
        except BatcherClosedError:
            raise ApiError(
                503, "shutting_down", "The service is shutting down.", {"Retry-After": "1"}
            ) from None

    async def parse(self, fn: Callable[..., T], *args) -> T:
        """Run a CPU- and memory-heavy parse (a v2 JSON tensor) in a worker thread, at most
        ``max_parses`` at a time; the others wait here holding only their raw body."""
        async with self._parse_slots:
            return await asyncio.get_running_loop().run_in_executor(self._decode_pool, fn, *args)

    async def run_in_explain_thread(self, fn: Callable, *args):
        """Run TensorFlow work on the one thread kept for it (TF graphs are not cheap to share)."""
        return await asyncio.get_running_loop().run_in_executor(self._explain_pool, fn, *args)

    def _upcoming(self) -> int:
        """Admitted images not yet queued nor in the model: uploads and decodes in progress."""
        return self.pending - self.batcher.depth - self.batcher.in_model

    # -- metric hooks -------------------------------------------------------------------------

    def _on_batch(self, size: int, seconds: float) -> None:
        self.metrics.batch_size.observe(size)
        self.metrics.inference.observe(seconds)
        self.metrics.images.inc(size)

    def _on_swap(self, model: LoadedModel) -> None:
        self.metrics.model_info.replace(1, name=model.name, version=model.version)

    def _on_reload(self, result: ReloadResult) -> None:
        self.metrics.reloads.inc(result="success" if result.ok else "failure")


def _warm_explain(model: LoadedModel) -> None:
    """Import TensorFlow, load the Keras model and run one Grad-CAM (``--warm-explain``).

    A failure is logged, not raised: predictions do not need Grad-CAM, and ``/v1/explain``
    answers 501 with the reason.
    """
    import time

    started = time.perf_counter()
    try:
        if not model.bundle.keras_path.is_file():
            log.warning("--warm-explain: this run has no model.keras; /v1/explain will answer 501")
            return
        from littlevision.explain._gradcam import gradcam_overlay

        size = model.image_size
        gradcam_overlay(model.bundle, np.zeros((size, size, 3), np.uint8), class_index=0)
    except Exception as e:  # noqa: BLE001 - any failure leaves predictions serving
        log.warning("--warm-explain: Grad-CAM could not be loaded (%s); /v1/explain will fail", e)
        return
    log.info("Grad-CAM loaded and warmed in %.1f s", time.perf_counter() - started)
