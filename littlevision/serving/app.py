"""Wiring only: the app, its lifespan, middlewares, error handlers and routers.

Endpoints live in ``littlevision.serving.routers``; what they share (runtime, model, API key)
in ``littlevision.serving.dependencies``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from littlevision import __version__
from littlevision.bundle import Bundle
from littlevision.serving import routers
from littlevision.serving.errors import install_error_handlers
from littlevision.serving.middleware import BodyLimitMiddleware, MetricsMiddleware
from littlevision.serving.routers.web import STATIC_DIR
from littlevision.serving.runtime import Runtime
from littlevision.serving.settings import ServeSettings

log = logging.getLogger("littlevision.serving")

_DESCRIPTION = """\
A littlevision image classifier as a service: ONNX Runtime on the CPU, concurrent requests
micro-batched, the model hot-reloaded when its run folder changes.

Every error is JSON `{"error": code, "message": sentence, "status": http_status}`.
`/v1/reload` and `/v1/feedback` need the API key when the service has one
(`X-API-Key: KEY` or `Authorization: Bearer KEY`). The Open Inference Protocol v2 endpoints
(`/v2/...`) let KServe/Triton clients call the model unchanged.
"""


def create_app(run_dir: str | os.PathLike, settings: ServeSettings | None = None) -> FastAPI:
    """A FastAPI app serving the bundle in ``run_dir``.

    The bundle's small files are checked now, so a wrong folder fails here with a clear
    message; the model itself is loaded and warmed up in the app's lifespan (on server start,
    or when a ``TestClient`` is entered).

    Args:
        run_dir: A run folder made by ``littlevision train``.
        settings: How to serve it (default: :class:`ServeSettings` ()).

    Returns:
        The app, ready for ``uvicorn.run(app)`` or ``fastapi.testclient.TestClient(app)``.
        Its :class:`~littlevision.serving.runtime.Runtime` is ``app.state.runtime``.

    Raises:
        UserError: when ``run_dir`` is not a littlevision run.
    """
    settings = settings or ServeSettings()
    bundle = Bundle.load(run_dir)  # fail early and clearly for a wrong folder
    runtime = Runtime(run_dir, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await runtime.start()
        except Exception as e:
            log.error("The service could not start: %s", e)
            runtime.startup_error = str(e)
            await runtime.stop()
            raise
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title=f"littlevision: {bundle.name}",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    for router in routers.ALL:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # Added last = runs first: metrics see every answer, including the body limit's 413.
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        max_seconds=settings.body_timeout_s,
        max_buffered=settings.max_buffered_bytes,
    )
    app.add_middleware(MetricsMiddleware, metrics=runtime.metrics)
    return app
