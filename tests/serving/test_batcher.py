"""The micro-batcher: requests that arrive together share a model call; answers go to their caller."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from littlevision.serving.batcher import BatcherClosedError, MicroBatcher, QueueFullError


class EchoModel:
    """Answers each image with [its first pixel's red value, 0]: who got what is visible.

    Records the size of every call, and can be slowed down to keep the batcher busy.
    """

    def __init__(self, delay_s: float = 0.0) -> None:
        self.calls: list[int] = []
        self.delay_s = delay_s
        self.threads: set[str] = set()

    def predict_array(self, images: np.ndarray) -> np.ndarray:
        self.calls.append(len(images))
        self.threads.add(threading.current_thread().name)
        if self.delay_s:
            time.sleep(self.delay_s)
        out = np.zeros((len(images), 2), np.float32)
        out[:, 0] = images[:, 0, 0, 0]
        return out


def image(value: int) -> np.ndarray:
    return np.full((4, 4, 3), value, np.uint8)


def run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_share_one_call_and_get_their_own_answer():
    model = EchoModel()

    async def main():
        b = MicroBatcher(max_batch=32, max_wait_ms=200, max_queue=100)
        await b.start()
        results = await asyncio.gather(*(b.submit(model, image(v)) for v in range(20)))
        await b.stop()
        return results

    results = run(main())
    assert model.calls == [20]
    assert [int(r[0]) for r in results] == list(range(20))
    assert all(r.shape == (2,) for r in results)


def test_batches_never_exceed_max_batch():
    model = EchoModel()

    async def main():
        b = MicroBatcher(max_batch=8, max_wait_ms=50, max_queue=100)
        await b.start()
        results = await asyncio.gather(*(b.submit(model, image(v)) for v in range(30)))
        await b.stop()
        return results

    results = run(main())
    assert max(model.calls) <= 8 and sum(model.calls) == 30
    assert [int(r[0]) for r in results] == list(range(30))


def test_a_stack_larger_than_max_batch_is_split_and_put_back_together():
    model = EchoModel()

    async def main():
        b = MicroBatcher(max_batch=4, max_wait_ms=0, max_queue=100)
        await b.start()
        result = await b.submit(model, np.stack([image(v) for v in range(10)]))
        await b.stop()
        return result

    result = run(main())
    assert max(model.calls) <= 4 and sum(model.calls) == 10
    assert result.shape == (10, 2) and result[:, 0].tolist() == list(range(10))


def test_alone_an_image_waits_at_most_max_wait():
    model = EchoModel()

    async def main():
        b = MicroBatcher(max_batch=32, max_wait_ms=30, max_queue=10)
        await b.start()
        start = time.perf_counter()
        await b.submit(model, image(1))
        elapsed = time.perf_counter() - start
        await b.stop()
        return elapsed

    assert run(main()) < 0.5
    assert model.calls == [1]


def test_an_idle_model_waits_only_while_more_images_are_on_the_way():
    model = EchoModel()

    async def main(upcoming):
        b = MicroBatcher(max_batch=32, max_wait_ms=300, max_queue=10, upcoming=upcoming)
        await b.start()
        start = time.perf_counter()
        await b.submit(model, image(1))
        elapsed = time.perf_counter() - start
        await b.stop()
        return elapsed

    assert run(main(lambda: 0)) < 0.15  # nobody coming: answered at once
    assert run(main(lambda: 3)) >= 0.25  # others being decoded: it waits for them


def test_arrivals_during_a_call_form_the_next_batch():
    model = EchoModel(delay_s=0.1)

    async def main():
        b = MicroBatcher(max_batch=32, max_wait_ms=0, max_queue=100)
        await b.start()
        first = asyncio.create_task(b.submit(model, image(0)))
        await asyncio.sleep(0.03)  # the first call is running now
        rest = [asyncio.create_task(b.submit(model, image(v))) for v in range(1, 11)]
        results = await asyncio.gather(first, *rest)
        await b.stop()
        return results

    results = run(main())
    assert model.calls == [1, 10]
    assert [int(r[0]) for r in results] == list(range(11))


def test_stacks_are_split_back_to_their_callers():
    model = EchoModel()

    async def main():
        b = MicroBatcher(max_batch=32, max_wait_ms=100, max_queue=100)
        await b.start()
        a = np.stack([image(1), image(2), image(3)])
        c = np.stack([image(7), image(8)])
        ra, rb, rc = await asyncio.gather(
            b.submit(model, a), b.submit(model, image(5)), b.submit(model, c)
        )
        await b.stop()
        return ra, rb, rc

    ra, rb, rc = run(main())
    assert model.calls == [6]
    assert ra[:, 0].tolist() == [1, 2, 3] and int(rb[0]) == 5 and rc[:, 0].tolist() == [7, 8]


def test_each_model_gets_only_its_own_images():
    """During a hot reload, images prepared for the old model are answered by the old model."""
    old, new = EchoModel(), EchoModel()

    async def main():
        b = MicroBatcher(max_batch=32, max_wait_ms=100, max_queue=100)
        await b.start()
        results = await asyncio.gather(
            b.submit(old, image(1)), b.submit(new, image(2)), b.submit(old, image(3))
        )
        await b.stop()
        return results

    results = run(main())
    assert old.calls == [2] and new.calls == [1]
    assert [int(r[0]) for r in results] == [1, 2, 3]


def test_a_full_queue_is_refused_at_once_with_a_retry_hint():
    model = EchoModel(delay_s=0.2)

    async def main():
        b = MicroBatcher(max_batch=2, max_wait_ms=0, max_queue=4)
        await b.start()
        tasks = [asyncio.create_task(b.submit(model, image(v))) for v in range(2)]
        await asyncio.sleep(0.05)  # 2 in the model now
        tasks += [asyncio.create_task(b.submit(model, image(v))) for v in range(2, 6)]
        await asyncio.sleep(0.01)  # and 4 waiting: the queue is full
        with pytest.raises(QueueFullError) as err:
            await b.submit(model, image(99))
        results = await asyncio.gather(*tasks)
        await b.stop()
        return err.value, results

    error, results = run(main())
    assert error.retry_after_s >= 1
    assert [int(r[0]) for r in results] == list(range(6))  # the accepted ones all answered


def test_a_caller_that_gave_up_is_skipped():
    model = EchoModel(delay_s=0.1)

    async def main():
        b = MicroBatcher(max_batch=1, max_wait_ms=0, max_queue=10)
        await b.start()
        first = asyncio.create_task(b.submit(model, image(1)))
        await asyncio.sleep(0.02)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(b.submit(model, image(2)), 0.01)
        third = await b.submit(model, image(3))
        await first
        await b.stop()
        return third

    assert int(run(main())[0]) == 3
    assert model.calls == [1, 1]  # image 2 never reached the model


def test_model_errors_reach_every_caller_of_the_batch():
    class Broken:
        def predict_array(self, images):
            raise RuntimeError("boom")

    async def main():
        b = MicroBatcher(max_batch=8, max_wait_ms=50, max_queue=10)
        await b.start()
        results = await asyncio.gather(
            *(b.submit(Broken(), image(v)) for v in range(3)), return_exceptions=True
        )
        ok = await b.submit(EchoModel(), image(4))  # and the batcher still works
        await b.stop()
        return results, ok

    results, ok = run(main())
    assert all(isinstance(r, RuntimeError) for r in results)
    assert int(ok[0]) == 4


def test_stop_answers_what_was_queued_then_refuses():
    model = EchoModel(delay_s=0.05)

    async def main():
        b = MicroBatcher(max_batch=2, max_wait_ms=0, max_queue=10)
        await b.start()
        tasks = [asyncio.create_task(b.submit(model, image(v))) for v in range(5)]
        await asyncio.sleep(0.01)
        await b.stop()
        with pytest.raises(BatcherClosedError):
            await b.submit(model, image(9))
        return await asyncio.gather(*tasks)

    results = run(main())
    assert [int(r[0]) for r in results] == list(range(5))


def test_the_model_runs_off_the_event_loop():
    model = EchoModel()

    async def main():
        b = MicroBatcher(max_batch=4, max_wait_ms=0, max_queue=10)
        await b.start()
        await b.submit(model, image(1))
        await b.stop()

    run(main())
    assert model.threads and all(name.startswith("lv-infer") for name in model.threads)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(max_batch=0)
    with pytest.raises(ValueError, match="max_queue"):
        MicroBatcher(max_queue=0)


class OverlapModel(EchoModel):
    """Records the most calls that were running at the same moment."""

    def __init__(self, delay_s: float) -> None:
        super().__init__(delay_s)
        self.running = self.most_at_once = 0
        self.lock = threading.Lock()

    def predict_array(self, images: np.ndarray) -> np.ndarray:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            return super().predict_array(images)
        finally:
            with self.lock:
                self.running -= 1


@pytest.mark.parametrize("lanes", [1, 2])
def test_lanes_bound_the_model_calls_running_at_once(lanes):
    model = OverlapModel(delay_s=0.05)

    async def main():
        b = MicroBatcher(max_batch=4, max_wait_ms=0, max_queue=100, lanes=lanes)
        await b.start()
        results = await asyncio.gather(*(b.submit(model, image(v)) for v in range(16)))
        await b.stop()
        return results

    results = run(main())
    assert model.most_at_once == lanes
    assert max(model.calls) <= 4 and sum(model.calls) == 16
    assert [int(r[0]) for r in results] == list(range(16))


def test_stop_waits_for_every_lane():
    model = OverlapModel(delay_s=0.1)

    async def main():
        b = MicroBatcher(max_batch=2, max_wait_ms=0, max_queue=100, lanes=2)
        await b.start()
        waiting = [asyncio.ensure_future(b.submit(model, image(v))) for v in range(6)]
        await asyncio.sleep(0.02)
        await b.stop()
        assert all(w.done() for w in waiting)
        return [w.result() for w in waiting]

    results = run(main())
    assert [int(r[0]) for r in results] == list(range(6))
