"""Two plain ASGI middlewares: a request-body size limit and per-endpoint request metrics.

Plain ASGI rather than ``BaseHTTPMiddleware`` because both must see the raw message stream (the
limit counts body bytes as they arrive, before anything is buffered) and because they add no
task or copy per request.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from littlevision.serving.errors import ApiError, error_response
from littlevision.serving.metrics import ServingMetrics

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class BodyLimitMiddleware:
    """Answer 413 for a body over ``max_bytes``, without ever holding more than that.

    A declared ``Content-Length`` over the limit is refused before the app runs; a streamed
    body is counted as it arrives and refused once it passes the limit. In both cases the rest
    of the body is read and dropped (up to ``drain_bytes``) before answering, so the client
    reads a clean 413 instead of a connection reset halfway through its upload.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, drain_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)
        self.drain_bytes = int(drain_bytes if drain_bytes is not None else 8 * max_bytes)

    def _error(self) -> ApiError:
        mb = self.max_bytes / (1024 * 1024)
        return ApiError(
            413, "too_large", f"Expected a request body of at most {mb:g} MB. Received: more"
        )

    async def _drain(self, receive: Receive, already: int) -> None:
        seen = already
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
        if declared is not None and declared > self.max_bytes:
            await self._drain(receive, 0)
            error = self._error()
            await error_response(413, error.code, error.message)(scope, receive, send)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if message.get("more_body", False):
                        await self._drain(receive, received)
                    raise self._error()
            return message

        await self.app(scope, limited_receive, send)


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
