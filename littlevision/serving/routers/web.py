"""``GET /``: a small web page to try the model: drop an image, see classes, send corrections."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["web page"])

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

#: The page loads only its own script and style and talks only to this service.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; "
        "style-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@cache
def _page() -> str:
    return (STATIC_DIR / "index.html").read_text(encoding="utf-8")


@router.get(
    "/",
    response_class=HTMLResponse,
    summary="Web page to try the model",
    description="Drop or pick an image, see the top classes and the Grad-CAM overlay, and send "
    "a correction as feedback. Its script and style are under /static/.",
)
async def index() -> HTMLResponse:
    return HTMLResponse(_page(), headers=_HEADERS)
