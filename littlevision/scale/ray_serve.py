"""Replicated serving on Ray Serve: the same FastAPI app, N replicas, Serve's request batching.

Each replica runs the app of :func:`littlevision.serving.create_app` unchanged (endpoints,
bad-input answers, admission, metrics, hot reload), built inside the replica: the app holds
threads and locks, so it is made where it runs rather than pickled from here. The only change is
the batcher: the app's own micro-batcher is swapped for :class:`ServeBatcher`, which batches
with ``@serve.batch``, so Serve's batching settings (and its batch metrics) apply.

Autoscaling (``serve_ray(..., autoscaling=autoscaling_config(8))``, see docs/scaling.md)::

    {"min_replicas": 1, "max_replicas": 8, "target_ongoing_requests": 32,
     "upscale_delay_s": 10, "downscale_delay_s": 120}

``target_ongoing_requests`` is set to the batch size: a replica with a full batch queued is
busy, more than that waiting means another replica would answer sooner.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from littlevision._net import is_loopback
from littlevision.bundle import Bundle
from littlevision.errors import UserError
from littlevision.serving.batcher import BatcherBase

log = logging.getLogger("littlevision.serving")

DEFAULT_APP_NAME = "littlevision"


# -- Serve's request batching behind the app's batcher interface ------------------------------


@dataclass(eq=False, slots=True)
class _Image:
    model: Any  # anything with predict_array (littlevision.serving.model_store.LoadedModel)
    image: np.ndarray  # uint8 [S, S, 3]


class ServeBatcher(BatcherBase):
    """The app's batcher interface (``submit``/``start``/``stop``/``depth``...) on ``@serve.batch``.

    Every image is one Serve batch item, so ``max_batch`` counts images as the app's own
    :class:`~littlevision.serving.batcher.MicroBatcher` does, and a multi-image request is
    spread over batches like any other. Runs inside a Serve replica (``serve.batch`` reads
    the replica's context).

    Args:
        max_batch: Serve's ``max_batch_size``: most images per ONNX Runtime call.
        max_wait_ms: Serve's ``batch_wait_timeout_s`` (in ms): longest wait for a fuller batch.
        max_queue: Most images waiting; :meth:`submit` raises ``QueueFullError`` past it.
        on_batch: Called after each model call with ``(batch_size, seconds)`` (the app's
            metrics hook).
    """

    def __init__(
        self, max_batch: int = 32, max_wait_ms: float = 2.0, max_queue: int = 256, on_batch=None
    ) -> None:
        super().__init__(max_batch, max_wait_ms, max_queue, on_batch)
        self._running = False  # self._depth: images submitted and not yet answered
        self._executor: ThreadPoolExecutor | None = None
        self._batched = None

    @property
    def running(self) -> bool:
        return self._running and not self._closing

    async def start(self) -> None:
        from ray import serve

        if self._running:
            return
        self._closing = False
        # One inference thread: ONNX Runtime already uses the replica's cores inside a call.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lv-infer")
        self._batched = serve.batch(
            max_batch_size=self.max_batch, batch_wait_timeout_s=self.max_wait_s
        )(self._run)
        self._running = True

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Refuse new images, answer the ones submitted (up to ``timeout_s``), then stop."""
        self._closing = True
        deadline = time.monotonic() + timeout_s
        while self._depth and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        self._running = False
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def submit(self, model, images: np.ndarray) -> np.ndarray:
        """Probabilities [C] for one image [S, S, 3], [k, C] for a stack [k, S, S, 3].

        Raises:
            QueueFullError: when ``max_queue`` images are already waiting.
            BatcherClosedError: when stopping or not started.
        """
        stack, single = self.admit(images)
        k = int(stack.shape[0])
        self._depth += k
        try:
            rows = await asyncio.gather(*(self._batched(_Image(model, im)) for im in stack))
        finally:
            self._depth -= k
        probs = np.stack(rows)
        return probs[0] if single else probs

    async def _run(self, items: list[_Image]) -> list[np.ndarray]:
        loop = asyncio.get_running_loop()
        out: list[np.ndarray | None] = [None] * len(items)
        groups: dict[int, list[int]] = {}
        for i, item in enumerate(items):  # a hot reload can leave two models in one batch
            groups.setdefault(id(item.model), []).append(i)
        for rows in groups.values():
            images = np.stack([items[i].image for i in rows])
            start = time.perf_counter()
            probs = await loop.run_in_executor(
                self._executor, items[rows[0]].model.predict_array, images
            )
            seconds = time.perf_counter() - start
            for j, i in enumerate(rows):
                out[i] = probs[j]
            self.record(len(images), seconds)
        return out


def build_app(run_dir: str | os.PathLike, settings=None, serve_batching: bool = True):
    """The littlevision FastAPI app, with Serve's batching in place of its own.

    Args:
        run_dir: A run folder made by ``littlevision train``.
        settings: :class:`~littlevision.serving.ServeSettings` (default: its defaults).
        serve_batching: Use :class:`ServeBatcher` (``False`` keeps the app's micro-batcher).

    Returns:
        The app of :func:`littlevision.serving.create_app`.
    """
    from littlevision.serving.app import create_app

    app = create_app(run_dir, settings)
    if serve_batching:
        runtime = app.state.runtime
        s = runtime.settings
        runtime.batcher = ServeBatcher(
            s.max_batch, s.batch_wait_ms, s.max_queue, on_batch=runtime.batcher.on_batch
        )
    return app


class LazyApp:
    """An ASGI app that builds the real one in the replica, on its first (lifespan) event.

    ``@serve.ingress(app)`` pickles ``app``; this one is only a folder name and settings, so it
    pickles on every Ray version, and each replica gets its own runtime, threads and model.
    """

    def __init__(self, run_dir: str, settings, serve_batching: bool = True) -> None:
        self.run_dir = run_dir
        self.settings = settings
        self.serve_batching = serve_batching
        self._app = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_app": None}

    async def __call__(self, scope, receive, send) -> None:
        if self._app is None:
            self._app = build_app(self.run_dir, self.settings, self.serve_batching)
        await self._app(scope, receive, send)


# -- the deployment ---------------------------------------------------------------------------


@dataclass
class RayService:
    """A running Serve application (what :func:`serve_ray` returns with ``blocking=False``).

    Attributes:
        url: Where it answers (``http://HOST:PORT``).
        name: The Serve application name.
        replicas: Replicas asked for (the autoscaler may change the count).
    """

    url: str
    name: str
    replicas: int | None
    _owns_ray: bool = False
    _owns_serve: bool = False

    def shutdown(self) -> None:
        """Delete the application; stop Serve and Ray too when :func:`serve_ray` started them."""
        import ray
        from ray import serve

        if not ray.is_initialized():
            return
        if self._owns_serve:
            serve.shutdown()
        else:
            serve.delete(self.name)
        if self._owns_ray:
            ray.shutdown()


def serve_ray(
    run_dir: str | os.PathLike,
    replicas: int = 1,
    *,
    settings=None,
    address: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    cpus_per_replica: float = 1,
    autoscaling: dict | None = None,
    max_ongoing_requests: int | None = None,
    serve_batching: bool = True,
    name: str = DEFAULT_APP_NAME,
    blocking: bool = True,
    object_store_memory: int | None = None,
) -> int | RayService:
    """Serve a run on Ray Serve: ``replicas`` copies of the app behind Serve's HTTP proxy.

    Args:
        run_dir: A run folder made by ``littlevision train``; every node running a replica
            must see it at the same path (shared volume or baked into the image), which also
            keeps hot reload working.
        replicas: Replicas to start (ignored when ``autoscaling`` is given).
        settings: :class:`~littlevision.serving.ServeSettings`; ``threads`` and
            ``decode_threads`` default to ``cpus_per_replica`` so replicas do not fight for cores.
        address: A Ray cluster to join; ``None`` starts a local Ray (or uses this process's).
        host: Address of Serve's HTTP proxy (loopback by default).
        port: Its port.
        cpus_per_replica: CPUs Ray reserves for each replica.
        autoscaling: Serve's ``autoscaling_config`` (see the module docstring).
        max_ongoing_requests: Requests one replica takes at once (default: the settings'
            ``max_queue``, so the app's own admission answers 429 as the plain service does).
        serve_batching: Batch with ``@serve.batch`` (``False``: the app's micro-batcher).
        name: Serve application name.
        blocking: Serve until SIGINT/SIGTERM, then shut down and return 0; ``False`` returns a
            :class:`RayService` at once (tests, notebooks).
        object_store_memory: Object store bytes of a local Ray (default: small).

    Returns:
        0 after a clean shutdown (``blocking``), else a :class:`RayService`.

    Raises:
        UserError: Ray is not installed, ``run_dir`` is not a run, or ``replicas`` < 1.
    """
    from littlevision.scale.cluster import connect_ray, require_ray

    ray = require_ray("Serving on Ray", part="serve")
    from ray import serve

    if not is_loopback(host) and (settings is None or settings.api_key is None):
        log.warning(
            "Serving on %s without an API key: anyone who can reach it can reload the "
            "model and write feedback files.",
            host,
        )

    application = build_application(
        run_dir,
        replicas,
        settings=settings,
        cpus_per_replica=cpus_per_replica,
        autoscaling=autoscaling,
        max_ongoing_requests=max_ongoing_requests,
        serve_batching=serve_batching,
        name=name,
    )
    owns_ray = connect_ray(ray, address, object_store_memory=object_store_memory)
    owns_serve = owns_ray
    try:
        serve.start(http_options={"host": host, "port": int(port)})
        serve.run(application, name=name, route_prefix="/")
    except BaseException:
        if owns_ray:
            serve.shutdown()
            ray.shutdown()
        raise
    service = RayService(
        url=f"http://{host}:{int(port)}",
        name=name,
        replicas=None if autoscaling else int(replicas),
        _owns_ray=owns_ray,
        _owns_serve=owns_serve,
    )
    if not blocking:
        return service
    _wait_for_signal()
    service.shutdown()
    return 0


def autoscaling_config(
    max_replicas: int = 8, *, min_replicas: int = 1, target_ongoing_requests: int = 32
) -> dict:
    """Serve's ``autoscaling_config`` for this service, as documented in docs/scaling.md.

    ``target_ongoing_requests`` defaults to the batch size: one full batch in flight per
    replica. Scale-up reacts in 10 s, scale-down waits 2 min so a burst does not flap replicas.
    """
    return {
        "min_replicas": int(min_replicas),
        "max_replicas": int(max_replicas),
        "target_ongoing_requests": int(target_ongoing_requests),
        "upscale_delay_s": 10,
        "downscale_delay_s": 120,
    }


def build_application(
    run_dir: str | os.PathLike,
    replicas: int = 1,
    *,
    settings=None,
    cpus_per_replica: float = 1,
    autoscaling: dict | None = None,
    max_ongoing_requests: int | None = None,
    serve_batching: bool = True,
    name: str = DEFAULT_APP_NAME,
):
    """The Serve application (deployment bound to the run) that :func:`serve_ray` runs.

    Arguments as :func:`serve_ray`. Use it to run the service your own way
    (``serve.run(build_application(...))``), or through :func:`app_builder` from a Serve config.

    Raises:
        UserError: Ray Serve is not installed, ``run_dir`` is not a run, or ``replicas`` < 1.
    """
    from littlevision.scale.cluster import require_ray
    from littlevision.serving.settings import ServeSettings

    require_ray("Serving on Ray", part="serve")
    from ray import serve

    Bundle.load(run_dir)  # a wrong folder fails here, in one sentence, not in a replica log
    if autoscaling is None and int(replicas) < 1:
        raise UserError(f"Expected replicas >= 1. Received: replicas={replicas}")
    settings = settings or ServeSettings()
    threads = max(1, int(cpus_per_replica))
    settings = dataclasses.replace(
        settings,
        threads=settings.threads or threads,
        decode_threads=settings.decode_threads or threads,
    )
    options: dict[str, Any] = {
        "name": name,
        "ray_actor_options": {"num_cpus": cpus_per_replica},
        "max_ongoing_requests": max_ongoing_requests or settings.max_queue,
    }
    if autoscaling is not None:
        options["autoscaling_config"] = autoscaling
    else:
        options["num_replicas"] = int(replicas)
    app = LazyApp(str(Path(run_dir).resolve()), settings, serve_batching)
    return serve.deployment(serve.ingress(app)(), **options).bind()


def app_builder(args: dict[str, str]):
    """Serve's application builder, for ``serve run`` and KubeRay's RayService config.

    ``serve run littlevision.scale.ray_serve:app_builder run_dir=/models/pets replicas=2``, or
    in a Serve config file ``import_path: littlevision.scale.ray_serve:app_builder`` with
    ``args: {run_dir: /models/pets, replicas: 2}``. Keys: ``run_dir`` (required), ``replicas``
    (a number, or ``auto`` for :func:`autoscaling_config` up to ``max_replicas``, default 8),
    ``cpus_per_replica``, and every service option of ``littlevision serve`` by its name
    (``max_batch``, ``batch_wait_ms``, ``max_queue``, ``api_key_env`` -- the name of an
    environment variable holding the key -- ...; see
    :func:`littlevision.serving.settings.cli_options`).
    """
    from littlevision.serving.settings import cli_options, settings_from_cli

    if "run_dir" not in args:
        raise UserError("Expected the argument run_dir=RUN_FOLDER. Received: no run_dir.")
    values = {o.name: o.parse(str(args[o.name])) for o in cli_options() if o.name in args}
    settings = settings_from_cli(values)
    replicas = str(args.get("replicas", 1))
    autoscaling = None
    if replicas == "auto":
        autoscaling = autoscaling_config(
            int(args.get("max_replicas", 8)), target_ongoing_requests=settings.max_batch
        )
        replicas = "1"
    return build_application(
        args["run_dir"],
        int(replicas),
        settings=settings,
        cpus_per_replica=float(args.get("cpus_per_replica", 1)),
        autoscaling=autoscaling,
    )


def _wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM (a process manager's or Kubernetes' stop)."""
    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
