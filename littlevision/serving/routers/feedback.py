"""``POST /v1/feedback``: a user's correction, kept for the next ``littlevision retrain``.

The image is saved as ``RUN/feedback/<label>/<sha256>.<ext>``: the label must be one of the
model's own labels and the name is the content's hash, so nothing a client sends becomes part of
a path, the same image sent twice is stored once, and the folder is a ready class-folder dataset.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from littlevision._io import write_bytes
from littlevision.serving.dependencies import ApiKeyDep, RuntimeDep
from littlevision.serving.errors import ApiError, echo, error_responses
from littlevision.serving.images import IMAGE_BODY_DOC, MULTIPART, read_upload
from littlevision.serving.schemas import FeedbackResponse

router = APIRouter(prefix="/v1", tags=["feedback"])

FEEDBACK_DIR = "feedback"

_SIGNATURES = (
    (b"\xff\xd8\xff", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tif"),
    (b"MM\x00*", "tif"),
)


def sniff_extension(data: bytes) -> str | None:
    """The file extension the content's magic bytes call for (never the client's filename)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    for magic, ext in _SIGNATURES:
        if data.startswith(magic):
            return ext
    return None


def _body_doc() -> dict:
    doc = {"required": True, "content": {}}
    for kind, spec in IMAGE_BODY_DOC["content"].items():
        schema = dict(spec["schema"])
        if kind in (MULTIPART, "application/json"):
            schema["properties"] = {
                **schema["properties"],
                "label": {"type": "string", "description": "The right class."},
            }
            schema["required"] = [*schema["required"], "label"]
        doc["content"][kind] = {"schema": schema}
    return doc


@router.post(
    "/feedback",
    status_code=201,
    response_model=FeedbackResponse,
    summary="Send a correction: an image and its right label",
    description=(
        "The image as in `/v1/predict` (multipart `file`, raw `image/*` body or JSON "
        "`image_base64`) plus `label` (a form or JSON field, or `?label=` with a raw body). "
        "The label must be one of the model's labels. Saved under the run folder as "
        "`feedback/<label>/<sha256>.<ext>` for the next training; 201 when new, 200 when this "
        "image was already saved for that label. Needs the API key when the service has one."
    ),
    dependencies=[ApiKeyDep],
    openapi_extra={"requestBody": _body_doc()},
    responses=error_responses(400, 401, 413, 415, 422, 429, 503),
)
async def feedback(
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    label: Annotated[
        str | None, Query(description="The right class (with a raw image body).")
    ] = None,
) -> dict:
    runtime.check_capacity(1)
    upload = await read_upload(request, text_fields=("label",))  # before admission
    async with runtime.admit(1), runtime.deadline():
        model = runtime.model
        label = upload.fields.get("label", label)
        if label is None:
            raise ApiError(
                422,
                "missing_field",
                f"Expected field 'label', one of {echo(model.labels, 200)}. Received: none",
            )
        if label not in model.labels:
            raise ApiError(
                422,
                "unknown_label",
                f"Expected label to be one of {echo(model.labels, 200)}. Received: {echo(label)}",
            )
        # Decoding proves it is an image the trainer can read; the array itself is not kept.
        await runtime.decode(upload.data, model.image_size)
        saved, relative, digest = await asyncio.to_thread(
            save_feedback, runtime.run_dir, label, upload.data, runtime.settings.max_pixels
        )
    runtime.metrics.feedback.inc(label=label)
    if not saved:
        response.status_code = 200
    return {"saved": saved, "label": label, "sha256": digest, "path": relative}


def save_feedback(
    run_dir: Path, label: str, data: bytes, max_pixels: int | None = None
) -> tuple[bool, str, str]:
    """Write ``data`` as ``run_dir/feedback/<label>/<sha256>.<ext>``, atomically.

    Args:
        run_dir: The run folder.
        label: One of the model's labels (checked by the caller, and again here for paths).
        data: An encoded image that decodes.
        max_pixels: Decoder limit, for the rare format that is re-encoded as PNG.

    Returns:
        ``(saved, path relative to run_dir, sha256)``; ``saved`` is False when the file existed.

    Raises:
        ApiError: 422 when the label cannot be a folder name (a bundle's labels come from folder
            names, so this only guards against a hand-edited labels.json).
    """
    if not label or label in (".", "..") or any(c in label for c in "/\\\x00"):
        raise ApiError(
            422, "unknown_label", f"The label {echo(label)} cannot be used as a folder name."
        )
    ext = sniff_extension(data)
    if ext is None:  # a format the decoder reads but we do not recognise: store it as PNG
        from PIL import Image

        from littlevision.data.decode import MAX_PIXELS, load_image

        buffer = io.BytesIO()
        Image.fromarray(load_image(data, max_pixels=max_pixels or MAX_PIXELS)).save(buffer, "PNG")
        data, ext = buffer.getvalue(), "png"
    digest = hashlib.sha256(data).hexdigest()
    root = (Path(run_dir) / FEEDBACK_DIR).resolve()
    folder = root / label
    target = folder / f"{digest}.{ext}"
    if not target.resolve().is_relative_to(root):
        raise ApiError(
            422, "unknown_label", f"The label {echo(label)} cannot be used as a folder name."
        )
    relative = f"{FEEDBACK_DIR}/{label}/{target.name}"
    if target.exists():
        return False, relative, digest
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes(target, data)
    return True, relative, digest
