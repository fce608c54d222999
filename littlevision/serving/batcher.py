"""Micro-batching: images from concurrent requests share one ONNX Runtime call.

Why: on a CPU one call on 16 images costs far less than 16 calls on one, so a busy service
answers more images per second when it gathers them. The rule is the usual one: while the model
is busy, arrivals pile up and form the next batch; when it is idle, the first image waits at most
``max_wait_ms`` for company. Results go back to each caller through its own future.

Everything here runs on the event loop except the model calls, which run in ``lanes`` worker
threads. With one lane a call has every core to itself; with one lane per core a busy service
keeps a batch on each core (the model gives a call one thread when another is running, see
:class:`littlevision.inference.OnnxModel`), which on 2 cores answered more images per second
than one call at a time on both (docs/serving.md).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np

log = logging.getLogger("littlevision.serving")


class BatchModel(Protocol):
    """Anything with ``predict_array(uint8 [N, S, S, 3]) -> float32 [N, C]``."""

    def predict_array(self, images: np.ndarray) -> np.ndarray: ...


class QueueFullError(Exception):
    """The queue holds ``max_queue`` images already; the caller should come back later.

    Attributes:
        retry_after_s: A whole number of seconds after which the queue has likely drained.
    """

    def __init__(self, depth: int, retry_after_s: int) -> None:
        super().__init__(f"The queue is full ({depth} images waiting).")
        self.depth = depth
        self.retry_after_s = retry_after_s


class BatcherClosedError(Exception):
    """The batcher is shutting down and takes no new images."""


class Throughput:
    """Images per second of recent model calls, smoothed: how soon a queue will have drained.

    Both batchers (this module's and Ray Serve's) tell a refused caller when to come back from it.
    """

    def __init__(self) -> None:
        self.images_per_s = 0.0

    def record(self, images: int, seconds: float, calls_at_once: int = 1) -> None:
        rate = images / max(seconds, 1e-6) * max(1, calls_at_once)
        self.images_per_s = rate if self.images_per_s == 0 else 0.8 * self.images_per_s + 0.2 * rate

    def retry_after_s(self, depth: int) -> int:
        """Whole seconds until ``depth`` queued images have likely been answered (at least 1)."""
        if self.images_per_s <= 0:
            return 1
        return max(1, math.ceil(depth / self.images_per_s))


class BatcherBase:
    """What every batcher shares: its limits, admission, and the record of model calls.

    The app's :class:`MicroBatcher` and Ray Serve's ``ServeBatcher`` differ in how they gather
    batches; who gets in (``max_queue``, a closing batcher), when a refused caller should come
    back (``Retry-After``), and what each model call reports (``on_batch``) are decided here.

    Args:
        max_batch: Most images per model call.
        max_wait_ms: Longest an image waits for others while the model is idle.
        max_queue: Most images waiting; :meth:`admit` raises :class:`QueueFullError` past it.
        on_batch: Called after each model call with ``(batch_size, seconds)``, for metrics.
    """

    def __init__(
        self,
        max_batch: int,
        max_wait_ms: float,
        max_queue: int,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"Expected max_batch >= 1. Received: max_batch={max_batch}")
        if max_queue < 1:
            raise ValueError(f"Expected max_queue >= 1. Received: max_queue={max_queue}")
        self.max_batch = int(max_batch)
        self.max_wait_s = max(0.0, float(max_wait_ms)) / 1000.0
        self.max_queue = int(max_queue)
        self.on_batch = on_batch
        self._depth = 0  # images counted against max_queue
        self._closing = False
        self._throughput = Throughput()

    @property
    def depth(self) -> int:
        """Images counted against ``max_queue`` now."""
        return self._depth

    @property
    def running(self) -> bool:  # pragma: no cover - each batcher says
        raise NotImplementedError

    def retry_after_s(self) -> int:
        """Whole seconds until the current queue has likely been answered (at least 1)."""
        return self._throughput.retry_after_s(self._depth)

    def admit(self, images: np.ndarray) -> tuple[np.ndarray, bool]:
        """Check that ``images`` may queue; return them as a stack [k, S, S, 3] and whether one
        image [S, S, 3] was given.

        Raises:
            BatcherClosedError: when the batcher is stopping or was never started.
            QueueFullError: when the queue cannot take all the images.
        """
        if self._closing or not self.running:
            raise BatcherClosedError("The service is shutting down.")
        single = images.ndim == 3
        stack = images[None] if single else images
        if self._depth + int(stack.shape[0]) > self.max_queue:
            raise QueueFullError(self._depth, self.retry_after_s())
        return stack, single

    def record(self, images: int, seconds: float, calls_at_once: int = 1) -> None:
        """One model call answered ``images`` in ``seconds``: update Retry-After and metrics."""
        self._throughput.record(images, seconds, calls_at_once)
        if self.on_batch is not None:
            self.on_batch(images, seconds)


@dataclass(eq=False)
class _Item:
    model: Hashable
    images: np.ndarray  # [k, S, S, 3]
    future: asyncio.Future
    enqueued: float


class MicroBatcher(BatcherBase):
    """Gathers images into batches of at most ``max_batch`` for the model they were decoded for.

    Args:
        max_batch: Most images per model call.
        max_wait_ms: Longest an image waits for others while the model is idle.
        max_queue: Most images waiting; :meth:`submit` raises :class:`QueueFullError` past it.
        on_batch: Called on the event loop after each model call with
            ``(batch_size, seconds)``, for metrics.
        upcoming: Images admitted upstream that have not reached the batcher yet (still being
            uploaded or decoded). When given, an idle model waits for company only while some
            are on their way: a lone request is not taxed ``max_wait_ms`` for nothing.
        lanes: Most model calls running at once.

    Items are grouped by model object, so an image decoded at the old size during a hot reload
    is still answered by the model it was prepared for.
    """

    def __init__(
        self,
        max_batch: int = 32,
        max_wait_ms: float = 2.0,
        max_queue: int = 64,
        on_batch: Callable[[int, float], None] | None = None,
        upcoming: Callable[[], int] | None = None,
        lanes: int = 1,
    ) -> None:
        super().__init__(max_batch, max_wait_ms, max_queue, on_batch)
        if lanes < 1:
            raise ValueError(f"Expected lanes >= 1. Received: lanes={lanes}")
        self.upcoming = upcoming
        self.lanes = int(lanes)
        self._in_model = 0  # images in the model calls running now
        self._calls: set[asyncio.Task] = set()
        self._free: asyncio.Semaphore | None = None
        self._pending: deque[_Item] = deque()  # self._depth: images (not items) in it
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def in_model(self) -> int:
        """Images in the model calls running now."""
        return self._in_model

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start the batching loop on the running event loop."""
        if self.running:
            return
        self._arrived = asyncio.Event()
        self._free = asyncio.Semaphore(self.lanes)
        self._closing = False
        self._executor = ThreadPoolExecutor(max_workers=self.lanes, thread_name_prefix="lv-infer")
        self._task = asyncio.create_task(self._loop(), name="littlevision-batcher")

    async def stop(self) -> None:
        """Answer every image already queued, then stop. New submissions fail from now on."""
        self._closing = True
        if self._arrived is not None:
            self._arrived.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def submit(self, model: BatchModel, images: np.ndarray) -> np.ndarray:
        """Queue one image [S, S, 3] or a stack [k, S, S, 3]; wait for its probabilities.

        A stack larger than ``max_batch`` is queued in chunks, so no model call ever exceeds
        ``max_batch`` images (a 32-image batch request must not undo a small ``max_batch``).

        Returns:
            float32 [C] for one image, [k, C] for a stack, in the model's label order.

        Raises:
            QueueFullError: when the queue cannot take all the images.
            BatcherClosedError: when the batcher is stopping or was never started.
        """
        stack, single = self.admit(images)
        k = int(stack.shape[0])
        loop = asyncio.get_running_loop()
        futures = []
        for start in range(0, k, self.max_batch):
            chunk = stack[start : start + self.max_batch]
            futures.append(loop.create_future())
            self._pending.append(_Item(model, chunk, futures[-1], time.perf_counter()))
            self._depth += len(chunk)
        self._arrived.set()
        parts = await asyncio.gather(*futures)
        result = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return result[0] if single else result

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._free.acquire()  # while every lane is busy, arrivals form the next batch
            while not self._pending:
                if self._closing:
                    if self._calls:
                        await asyncio.wait(list(self._calls))
                    return
                self._arrived.clear()
                await self._arrived.wait()
            deadline = loop.time() + self.max_wait_s
            while self._depth < self.max_batch and not self._closing:
                if self.upcoming is not None and self.upcoming() <= 0:
                    break  # nobody else is on the way
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except TimeoutError:
                    break
            call = asyncio.create_task(self._run(self._take()))
            self._calls.add(call)
            call.add_done_callback(self._call_done)

    def _call_done(self, call: asyncio.Task) -> None:
        self._calls.discard(call)
        self._free.release()
        if not call.cancelled() and call.exception() is not None:
            log.error("A model call failed outside the model", exc_info=call.exception())

    def _take(self) -> list[_Item]:
        """Items from the front, up to ``max_batch`` images."""
        taken: list[_Item] = []
        size = 0
        while self._pending:
            k = len(self._pending[0].images)
            if taken and size + k > self.max_batch:
                break
            item = self._pending.popleft()
            self._depth -= k
            size += k
            taken.append(item)
        return taken

    async def _run(self, items: list[_Item]) -> None:
        loop = asyncio.get_running_loop()
        live = [it for it in items if not it.future.done()]  # skip callers that gave up
        groups: dict[int, list[_Item]] = {}
        for it in live:
            groups.setdefault(id(it.model), []).append(it)
        for group in groups.values():
            model = group[0].model
            images = (
                np.concatenate([it.images for it in group]) if len(group) > 1 else group[0].images
            )
            start = time.perf_counter()
            self._in_model += len(images)
            try:
                probs = await loop.run_in_executor(self._executor, model.predict_array, images)
            except Exception as e:  # the model failed: every caller of this batch hears why
                for it in group:
                    if not it.future.done():
                        it.future.set_exception(e)
                continue
            finally:
                self._in_model -= len(images)
            seconds = time.perf_counter() - start
            offset = 0
            for it in group:
                k = len(it.images)
                if not it.future.done():
                    it.future.set_result(probs[offset : offset + k])
                offset += k
            self.record(len(images), seconds, calls_at_once=len(self._calls))
