"""Every error the service answers is JSON of one shape: ``{"error", "message", "status"}``.

``error`` is a stable code a client can switch on (``not_image``, ``queue_full``, ...);
``message`` is one sentence for a person. The ``error`` field being a string also keeps the
Open Inference Protocol's ``{"error": "..."}`` clients happy.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

log = logging.getLogger("littlevision.serving")

#: HTTP status for each reason of ``littlevision.data.decode.DecodeError``.
DECODE_STATUS = {
    "empty": 400,
    "truncated": 422,
    "not_image": 422,
    "unreadable": 422,
    "too_large": 413,
}

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "queue_full",
    499: "client_closed_request",
    500: "internal_error",
    501: "not_implemented",
    503: "unavailable",
    504: "timeout",
}


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: str
    message: str
    status: int


class ApiError(HTTPException):
    """An error with a stable ``code``; raised anywhere in a request, answered as JSON.

    It subclasses Starlette's ``HTTPException`` so FastAPI lets it through untouched even when
    it is raised while the body is being read (the body-size limit does that).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status, detail=message, headers=headers)
        self.code = code
        self.message = message


def echo(value: object, limit: int = 80) -> str:
    """A client's value quoted in an error message, cut to about ``limit`` characters.

    Errors say what they received, but a 1 MB label must not come back as a 1 MB answer (nor
    fill a log): longer values are cut and their length given.
    """
    text = repr(value)
    if len(text) <= limit:
        return text
    size = len(value) if isinstance(value, str | bytes | list | tuple | dict) else len(text)
    return f"{text[:limit]}... ({size} long)"


V2_PREFIX = "/v2"


def error_response(
    status: int, code: str, message: str, headers=None, path: str | None = None
) -> JSONResponse:
    """The error answer; under ``/v2`` in the Open Inference Protocol's shape, ``{"error":
    message}``, so v2 clients (Triton's, KServe's) show the sentence."""
    if path is not None and (path == V2_PREFIX or path.startswith(V2_PREFIX + "/")):
        return JSONResponse({"error": message}, status_code=status, headers=headers)
    return JSONResponse(
        {"error": code, "message": message, "status": status}, status_code=status, headers=headers
    )


def decode_error(exc: Exception) -> ApiError:
    """Turn a ``DecodeError`` from ``littlevision.data.decode`` into its 4xx answer."""
    reason = getattr(exc, "reason", "unreadable")
    words = getattr(exc, "words", None) or str(exc)
    return ApiError(DECODE_STATUS.get(reason, 422), reason, f"The upload cannot be used: {words}.")


class V2ErrorBody(BaseModel):
    """The body of every error answer under ``/v2`` (the Open Inference Protocol's)."""

    error: str


def error_responses(*statuses: int, v2: bool = False) -> dict[int | str, dict]:
    """OpenAPI ``responses`` entries for the error statuses an endpoint can answer."""
    model = V2ErrorBody if v2 else ErrorBody
    return {
        s: {"model": model, "description": _CODES.get(s, "error").replace("_", " ")}
        for s in statuses
    }


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error as :class:`ErrorBody` JSON, including framework and unexpected ones."""

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        code = getattr(exc, "code", None) or _CODES.get(exc.status_code, "error")
        message = getattr(exc, "message", None) or str(exc.detail)
        return error_response(
            exc.status_code, code, message, getattr(exc, "headers", None), request.url.path
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = []
        for err in exc.errors()[:10]:  # a body with thousands of errors gets the first ten
            err = {k: v for k, v in err.items() if k not in ("input", "ctx", "url")}
            details.append(jsonable_encoder(err))
        where = "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', ()))}: {d.get('msg', '')}" for d in details
        )
        message = f"The request is not valid: {where}"
        if request.url.path.startswith(V2_PREFIX + "/"):
            return error_response(422, "invalid_request", message, path=request.url.path)
        body = {"error": "invalid_request", "message": message, "status": 422, "details": details}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(ClientDisconnect)
    async def _disconnect(request: Request, exc: ClientDisconnect) -> Response:
        # Not an error of the service: count it as nginx does (499) and say so in one line.
        client = f"{request.client.host}:{request.client.port}" if request.client else "a client"
        log.info(
            "%s disconnected before sending all of %s %s (499)",
            client,
            request.method,
            request.url.path,
        )
        return Response(status_code=499)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("Unexpected error answering %s %s", request.method, request.url.path)
        return error_response(
            500,
            "internal_error",
            "The service failed unexpectedly; see its log.",
            path=request.url.path,
        )
