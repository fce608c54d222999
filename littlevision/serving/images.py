"""Getting image bytes out of a request, in the three forms a client may send them.

1. ``multipart/form-data`` with the image in field ``file`` (what browsers and ``curl -F`` send);
2. the raw body with an ``image/*`` (or ``application/octet-stream``) content type;
3. JSON ``{"image_base64": "..."}`` (a ``data:`` URL prefix is accepted).

Only bytes leave this module: decoding is ``littlevision.data.decode``'s job, and the filename a
client sends is echoed back at most, never used as a path.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from littlevision.serving.errors import ApiError, echo

RAW_TYPES = ("application/octet-stream",)
JSON_TYPES = ("application/json",)
MULTIPART = "multipart/form-data"

#: One request body in the OpenAPI schema, shared by predict, explain and feedback.
IMAGE_BODY_DOC = {
    "required": True,
    "content": {
        MULTIPART: {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "The image (JPEG, PNG, WebP, GIF, BMP, TIFF).",
                    }
                },
            }
        },
        "image/*": {"schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["image_base64"],
                "properties": {
                    "image_base64": {
                        "type": "string",
                        "description": "The image file's bytes in base64 (a data: URL is accepted).",
                    }
                },
            }
        },
    },
}


@dataclass
class Upload:
    """Image bytes from a request, with what else came along.

    Attributes:
        data: The encoded image, exactly as sent.
        filename: The client's name for it (display only; never a path).
        fields: Other text fields of the form or JSON object (``label`` for feedback).
        problem: Why this entry of a batch cannot be an image (a text field where a file was
            expected); it gets its own error entry while the others are answered.
    """

    data: bytes
    filename: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    problem: str | None = None


def media_type(request: Request) -> str:
    """The content type without parameters, lower-case ('' when absent)."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def decode_base64(text: object, name: str = "image_base64") -> bytes:
    """Strict base64 (a ``data:...;base64,`` prefix and whitespace allowed) -> bytes.

    Raises:
        ApiError: 422 ``invalid_base64`` when it is not a string of valid base64.
    """
    if not isinstance(text, str):
        raise ApiError(
            422,
            "invalid_request",
            f"Expected '{name}' to be a string of base64. Received: {type(text).__name__}",
        )
    if text.startswith("data:"):
        _, _, text = text.partition(",")
    text = "".join(text.split())
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(
            422,
            "invalid_base64",
            f"'{name}' is not valid base64 (it has characters outside A-Z a-z 0-9 + / "
            "= or a wrong length).",
        ) from None


async def read_form(request: Request, max_files: int):
    """Parse a multipart body, answering 4xx (never 500) for every way it can be malformed."""
    try:
        return await request.form(max_files=max_files, max_fields=64)
    except (ApiError, ClientDisconnect):
        raise
    except HTTPException as e:
        detail = str(e.detail)
        if "Too many files" in detail:
            raise ApiError(
                413, "too_many_images", f"Expected at most {max_files} images in one request."
            ) from None
        raise ApiError(
            400, "invalid_multipart", f"The multipart body is malformed: {detail[:200]}"
        ) from None
    except Exception as e:  # python-multipart's own errors for broken bodies
        raise ApiError(
            400, "invalid_multipart", f"The multipart body is malformed: {str(e)[:200]}"
        ) from None


def parse_json(body: bytes) -> object:
    """``json.loads`` that answers 400 for anything that is not JSON it can hold.

    Raises:
        ApiError: 400 ``invalid_json`` for malformed JSON and for nesting too deep to parse
            (``RecursionError``: a few hundred ``[`` are enough).
    """
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "The body is not valid JSON.") from None
    except RecursionError:
        raise ApiError(
            400, "invalid_json", "The body's JSON is nested too deeply to be read."
        ) from None


async def _read_json(request: Request) -> dict:
    obj = parse_json(await request.body())
    if not isinstance(obj, dict):
        raise ApiError(
            422, "invalid_request", f"Expected a JSON object. Received: {type(obj).__name__}"
        )
    return obj


async def read_upload(request: Request, text_fields: tuple[str, ...] = ()) -> Upload:
    """The one image of a request, in whichever of the three forms it came.

    Args:
        request: The incoming request.
        text_fields: Other fields to collect from a form or JSON object (e.g. ``("label",)``);
            they may also come as query parameters with a raw body.

    Raises:
        ApiError: 415 for a content type that cannot carry an image, 422 when the ``file`` or
            ``image_base64`` field is missing, 400/422 for malformed multipart, JSON or base64.
    """
    kind = media_type(request)
    fields: dict[str, str] = {}
    if kind == MULTIPART:
        # room for the text fields to come as file parts too, so that is a clear 422, not 413
        form = await read_form(request, max_files=1 + len(text_fields))
        upload = form.get("file")
        for name in text_fields:
            value = form.get(name)
            if isinstance(value, str):
                fields[name] = value
            elif value is not None:
                raise ApiError(
                    422,
                    "invalid_field",
                    f"Expected field '{name}' to be text. Received: a file part",
                )
        if sum(isinstance(v, UploadFile) for _, v in form.multi_items()) > 1:
            raise ApiError(413, "too_many_images", "Expected one image in multipart field 'file'.")
        if upload is None:
            raise ApiError(
                422,
                "missing_field",
                "Expected the image in multipart field 'file'. Received fields: "
                f"{echo(sorted(form.keys())) if form else 'none'}",
            )
        if not isinstance(upload, UploadFile):
            raise ApiError(
                422,
                "missing_field",
                "Expected field 'file' to be a file upload. Received: a text field",
            )
        return Upload(await upload.read(), upload.filename, fields)
    if kind.startswith("image/") or kind in RAW_TYPES:
        for name in text_fields:
            if name in request.query_params:
                fields[name] = request.query_params[name]
        return Upload(await request.body(), None, fields)
    if kind in JSON_TYPES or kind.endswith("+json"):
        obj = await _read_json(request)
        if "image_base64" not in obj:
            raise ApiError(
                422,
                "missing_field",
                f"Expected JSON field 'image_base64'. Received fields: "
                f"{echo(sorted(obj)) if obj else 'none'}",
            )
        for name in text_fields:
            if isinstance(obj.get(name), str):
                fields[name] = obj[name]
        return Upload(
            decode_base64(obj["image_base64"]),
            obj.get("filename") if isinstance(obj.get("filename"), str) else None,
            fields,
        )
    if not kind and not await request.body():
        raise ApiError(400, "empty", "The request has no body: send an image.")
    raise ApiError(
        415,
        "unsupported_media_type",
        f"Expected multipart/form-data (field 'file'), an image/* body or JSON with "
        f"'image_base64'. Received: Content-Type {echo(kind) if kind else 'none'}",
    )


async def read_uploads(request: Request, max_images: int) -> list[Upload]:
    """Several images from one multipart request (fields ``files`` or ``file``, repeated).

    Raises:
        ApiError: 415 when the body is not multipart, 422 when it holds no image field,
            413 when it holds more than ``max_images``.
    """
    kind = media_type(request)
    if kind != MULTIPART:
        raise ApiError(
            415,
            "unsupported_media_type",
            "Expected multipart/form-data with the images in fields 'files'. "
            f"Received: Content-Type {echo(kind) if kind else 'none'}",
        )
    form = await read_form(request, max_files=max_images)
    uploads = []
    for name, value in form.multi_items():
        if name not in ("files", "file"):
            continue
        if isinstance(value, UploadFile):
            uploads.append(Upload(await value.read(), value.filename))
        else:  # a text field where a file was expected: its own error entry, in order
            uploads.append(Upload(b"", None, problem=f"Field '{name}' is text, not a file."))
    if not uploads:
        raise ApiError(
            422,
            "missing_field",
            "Expected one or more images in multipart fields 'files'. Received fields: "
            f"{echo(sorted(form.keys())) if form else 'none'}",
        )
    return uploads
