"""Two plain ASGI middlewares: request-body limits (size and time) and per-endpoint metrics.

Plain ASGI rather than ``BaseHTTPMiddleware`` because both must see the raw message stream (the
limit counts body bytes as they arrive, before anything is buffered) and because they add no
task or copy per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from littlevision.serving.errors import ApiError, error_response
from littlevision.serving.metrics import ServingMetrics

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class BodyLimitMiddleware:
    """Answer 413 for a body over ``max_bytes``, without ever holding more than that, and 408
    for a body that takes longer than ``max_seconds`` to arrive.

    A declared ``Content-Length`` over the limit is refused before the app runs; a streamed
    body is counted as it arrives and refused once it passes the limit. In both cases the rest
    of the body is read and dropped (up to ``drain_bytes``) before answering, so the client
    reads a clean 413 instead of a connection reset halfway through its upload.

    ``max_buffered`` bounds the body bytes held by all requests together: bytes are counted as
    they arrive and released when the request has been answered; a request whose next chunk
    would pass it gets 429. Counting what arrived (not what a header declares) means a client
    trickling a large upload holds almost nothing, so it cannot crowd out others.

    The time limit runs from the moment the app gets the request (its headers are in) until
    the last body byte; a client trickling its upload is cut off with 408 and the connection
    closed, so it holds a connection (never a queue slot: endpoints read the body first) for
    at most ``max_seconds``.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        drain_bytes: int | None = None,
        max_seconds: float | None = None,
        max_buffered: int | None = None,
    ) -> None:
        self.app = app
        self.max_buffered = max_buffered
        self.buffered = 0  # body bytes held by requests in progress
        self.max_bytes = int(max_bytes)
        self.drain_bytes = int(drain_bytes if drain_bytes is not None else 8 * max_bytes)
        self.max_seconds = max_seconds

    def _error(self) -> ApiError:
        mb = self.max_bytes / (1024 * 1024)
        return ApiError(
            413, "too_large", f"Expected a request body of at most {mb:g} MB. Received: more"
        )

    async def _drain(self, receive: Receive, already: int, deadline: float | None) -> None:
        """Read and drop the rest of a refused body: up to ``drain_bytes``, until ``deadline``."""
        seen = already
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(None if deadline is None else _loop_time(deadline)):
                while seen <= self.drain_bytes:
                    message = await receive()
                    if message["type"] != "http.request":
                        return
                    seen += len(message.get("body", b""))
                    if not message.get("more_body", False):
                        return

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
                break
        deadline = None if self.max_seconds is None else time.monotonic() + self.max_seconds
        if declared is not None and declared > self.max_bytes:
            await self._drain(receive, 0, deadline)
            error = self._error()
            await error_response(413, error.code, error.message, path=scope.get("path"))(
                scope, receive, send
            )
            return

        received = 0
        complete = False

        async def timed_receive() -> Message:
            if complete or deadline is None:
                return await receive()
            try:
                async with asyncio.timeout_at(_loop_time(deadline)):
                    return await receive()
            except TimeoutError:
                raise ApiError(
                    408,
                    "body_timeout",
                    f"Expected the request body within {self.max_seconds:g} s. "
                    "Received: it was still arriving.",
                    {"Connection": "close"},
                ) from None

        async def limited_receive() -> Message:
            nonlocal received, complete
            message = await timed_receive()
            if message["type"] == "http.request":
                complete = not message.get("more_body", False)
                size = len(message.get("body", b""))
                if self.max_buffered is not None and self.buffered + size > self.max_buffered:
                    raise ApiError(
                        429,
                        "busy",
                        "The service holds as many request bodies as it may; retry shortly.",
                        {"Retry-After": "1", "Connection": "close"},
                    )
                received += size
                self.buffered += size
                if received > self.max_bytes:
                    if message.get("more_body", False):
                        await self._drain(receive, received, deadline)
                    raise self._error()
            return message

        try:
            await self.app(scope, limited_receive, send)
        finally:
            self.buffered -= received


def _loop_time(deadline: float) -> float:
    """A ``time.monotonic`` deadline on the running loop's clock."""
    return asyncio.get_running_loop().time() + (deadline - time.monotonic())


class MetricsMiddleware:
    """Count every answer by endpoint (the route's template, so cardinality stays bounded),
    method and status, and time it."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, recording_send)
        finally:
            self.metrics.in_flight.dec()
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            method = method if method in _METHODS else "other"
            self.metrics.requests.inc(endpoint=endpoint, method=method, status=str(status))
            self.metrics.latency.observe(time.perf_counter() - start, endpoint=endpoint)
