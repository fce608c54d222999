"""The review page: a FastAPI app that is a thin shell over a
:class:`~littlevision.review.session.ReviewSession` (the same stack as ``serve``).

Endpoints (all JSON except the page, thumbnails and Grad-CAM):

- ``GET /``: the page (its script and style under ``/static/``; no CDN, nothing remote).
- ``GET /api/state``: classes, queues, each item's state, progress.
- ``POST /api/act`` ``{"key", "action": keep|relabel|quarantine, "value"?, "member"?}``.
- ``POST /api/undo`` ``{"key"?}``: the item's answer, or the latest answer.
- ``GET /thumb?where=data|inbox|quarantine&p=PATH&s=160|480``: a cached JPEG thumbnail.
- ``GET /api/gradcam?p=PATH``: with a run, a Grad-CAM overlay (PNG), made on demand.

Every error is ``{"error", "message", "status"}`` with a 4xx status: a person's mistake or a
file that changed is never a 500. The app answers only requests addressed to a loopback name
(a web page elsewhere cannot reach it through DNS rebinding) and takes JSON only for actions
(a cross-site form cannot post one).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from littlevision.errors import UserError
from littlevision.review.journal import ConflictError, StaleError
from littlevision.review.session import ReviewSession
from littlevision.review.target import inside
from littlevision.review.thumbs import SIZES, ThumbnailCache

log = logging.getLogger("littlevision.review")

STATIC_DIR = Path(__file__).resolve().parent / "static"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]", "testserver"})

_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; "
        "style-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class Act(BaseModel):
    key: str
    action: str
    value: str | None = None
    member: int | None = None


class Undo(BaseModel):
    key: str | None = None


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, "status": status}, status_code=status)


def _host_name(host: str) -> str:
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def create_app(session: ReviewSession, thumbs: ThumbnailCache | None = None) -> FastAPI:
    """The review page and its API over ``session``.

    Args:
        session: What to review (:meth:`ReviewSession.build`).
        thumbs: The thumbnail cache (default: under the littlevision cache).
    """
    thumbs = thumbs or ThumbnailCache()
    app = FastAPI(title="littlevision review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.session = session
    app.state.thumbs = thumbs
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    explainer: dict[str, Any] = {}

    @app.middleware("http")
    async def guard(request: Request, call_next):
        host = _host_name(request.headers.get("host", ""))
        if host not in LOOPBACK_NAMES:
            return _error(403, "forbidden", "The review page answers loopback addresses only.")
        if request.method == "POST":
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/json":
                return _error(415, "unsupported_media_type", "Actions are JSON posts.")
        return await call_next(request)

    @app.exception_handler(UserError)
    async def user_error(request: Request, exc: UserError):
        if isinstance(exc, StaleError):
            return _error(409, "stale", str(exc))
        if isinstance(exc, ConflictError):
            return _error(409, "conflict", str(exc))
        return _error(400, "bad_request", str(exc))

    @app.exception_handler(OSError)
    async def os_error(request: Request, exc: OSError):
        log.warning("review: %s", exc)
        return _error(409, "conflict", f"The file system refused: {exc.strerror or exc}.")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(422, "invalid_request", f"Invalid request: {where} {first.get('msg', '')}.")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return _error(exc.status_code, "error", str(exc.detail))

    @app.get("/", include_in_schema=False)
    def index() -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)

    @app.get("/api/state")
    def state() -> JSONResponse:
        return JSONResponse(session.state(), headers={"Cache-Control": "no-store"})

    @app.post("/api/act")
    def act(body: Act) -> JSONResponse:
        t = time.perf_counter()
        answer = session.act(body.key, body.action, body.value, body.member)
        answer["server_ms"] = round((time.perf_counter() - t) * 1000, 2)
        return JSONResponse(answer)

    @app.post("/api/undo")
    def undo(body: Undo) -> JSONResponse:
        t = time.perf_counter()
        answer = session.undo(body.key)
        answer["server_ms"] = round((time.perf_counter() - t) * 1000, 2)
        return JSONResponse(answer)

    def _file(where: str, p: str) -> Path:
        if where == "data":
            return inside(session.target.root, p)
        if where == "quarantine":
            return inside(session.journal.quarantine, p)
        if where == "inbox":
            path = Path(os.path.abspath(p))
            for folder in session.unlabelled:
                folder = Path(os.path.abspath(folder))
                if folder in path.parents:
                    return path
        raise UserError(f"'{p}' is not an image of this review.")

    @app.get("/thumb")
    def thumb(where: str, p: str, s: int = SIZES[0]) -> Response:
        if s not in SIZES:
            raise UserError(f"Thumbnail size is one of {SIZES}. Received: {s}.")
        path = _file(where, p)
        if not path.is_file():
            return _error(404, "not_found", f"{Path(p).name} is not there any more.")
        data = thumbs.get(path, s)
        if data is None:
            return _error(422, "not_image", f"{Path(p).name} cannot be decoded as an image.")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=60"})

    @app.get("/api/gradcam")
    def gradcam(p: str, where: str = "data") -> Response:
        if session.run is None:
            return _error(404, "not_found", "Grad-CAM needs a run: start with --run RUN.")
        path = _file(where, p)
        if not path.is_file():
            return _error(404, "not_found", f"{Path(p).name} is not there any more.")
        from littlevision.data.decode import DecodeError, load_image

        try:
            image = load_image(path)
        except DecodeError as e:
            return _error(422, "not_image", str(e))
        try:
            from littlevision.explain._gradcam import gradcam_overlay

            if "bundle" not in explainer:
                from littlevision.bundle import Bundle

                explainer["bundle"] = Bundle.load(session.run)
            png, _ = gradcam_overlay(explainer["bundle"], image, max_side=480)
        except (ImportError, UserError) as e:
            return _error(501, "explain_unavailable", f"Grad-CAM is not available: {e}")
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
