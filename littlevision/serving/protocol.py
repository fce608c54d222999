"""uvicorn's HTTP/1.1 protocol (h11) with a deadline on request headers.

uvicorn bounds how long an idle keep-alive connection stays open, but not how long a client may
take to send a request's headers: a client that connects and sends one byte a second holds its
connection, and a few hundred such clients fill ``limit_concurrency`` so that every other client
gets 503. This protocol closes a connection whose headers are not complete within
``header_timeout_s`` of connecting (or of the end of its previous answer). The body has its own
limit in the app (``BodyLimitMiddleware``).
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class HeaderTimeoutH11Protocol(H11Protocol):
    """:class:`H11Protocol` that closes connections slow to send their headers."""

    header_timeout_s: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.info("Closed a connection that sent no complete headers in time")
            self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # headers are in: the body has its own limit
            self._cancel_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_timer()  # the next request on this connection gets the same limit

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)


def protocol_class(header_timeout_s: float) -> type[HeaderTimeoutH11Protocol]:
    """A protocol class with its own ``header_timeout_s`` (uvicorn builds one per connection)."""
    return type(
        "HeaderTimeoutH11Protocol",
        (HeaderTimeoutH11Protocol,),
        {"header_timeout_s": float(header_timeout_s)},
    )
