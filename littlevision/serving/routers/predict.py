"""``POST /v1/predict`` and ``POST /v1/predict/batch``: classify uploaded images."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Request

from littlevision.serving.dependencies import RuntimeDep
from littlevision.serving.errors import ApiError, error_responses
from littlevision.serving.images import (
    IMAGE_BODY_DOC,
    MULTIPART,
    Upload,
    read_upload,
    read_uploads,
)
from littlevision.serving.runtime import Runtime
from littlevision.serving.schemas import (
    BatchResponse,
    PredictResponse,
    model_ref,
    prediction,
)

router = APIRouter(prefix="/v1", tags=["predict"])

TopK = Annotated[int | None, Query(ge=1, description="Return only the N most probable classes.")]

_BATCH_BODY_DOC = {
    "required": True,
    "content": {
        MULTIPART: {
            "schema": {
                "type": "object",
                "required": ["files"],
                "properties": {
                    "files": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "description": "The images, answered in this order.",
                    }
                },
            }
        }
    },
}


@router.post(
    "/predict",
    response_model=PredictResponse,
    response_model_exclude_none=True,
    summary="Classify one image",
    description=(
        "Send one image as multipart field `file`, as the raw body with an `image/*` content "
        'type, or as JSON `{"image_base64": ...}`. Concurrent requests are micro-batched. '
        "Bad input gets a 4xx JSON error: empty body 400, not an image or truncated 422, "
        "decompression bomb or body over the limit 413, wrong content type 415, missing field "
        "422, invalid base64 422. A full queue gets 429 with Retry-After."
    ),
    openapi_extra={"requestBody": IMAGE_BODY_DOC},
    responses=error_responses(400, 413, 415, 422, 429, 503),
)
async def predict(request: Request, runtime: RuntimeDep, top_k: TopK = None) -> dict:
    start = time.perf_counter()
    runtime.check_capacity(1)
    upload = await read_upload(request)  # before admission: a slow upload holds no slot
    async with runtime.admit(1), runtime.deadline():
        model = runtime.model
        image = await runtime.decode(upload.data, model.image_size)
        probs, novelty = await runtime.classify_scored(model, image)
    answer = prediction(model.labels, probs, top_k, novelty, model.threshold)
    runtime.consider_collecting(model, upload.data, answer)
    return {
        **answer,
        "model": model_ref(model),
        "latency_ms": round((time.perf_counter() - start) * 1000, 3),
    }


@router.post(
    "/predict/batch",
    response_model=BatchResponse,
    response_model_exclude_none=True,
    summary="Classify several images in one request",
    description=(
        "Multipart with the images in repeated field `files` (or `file`). Answers come in the "
        "order sent; an image that cannot be decoded gets its own error entry (`error`, "
        "`message`, `status`) while the others are still answered. At most "
        "`max_batch_images` images per request (413 past it)."
    ),
    openapi_extra={"requestBody": _BATCH_BODY_DOC},
    responses=error_responses(400, 413, 415, 422, 429, 503),
)
async def predict_batch(request: Request, runtime: RuntimeDep, top_k: TopK = None) -> dict:
    start = time.perf_counter()
    runtime.check_capacity(1)
    uploads = await read_uploads(request, runtime.settings.max_batch_images)
    async with runtime.admit(len(uploads)), runtime.deadline():
        model = runtime.model
        decoded = await asyncio.gather(
            *(_decode_entry(runtime, u, model.image_size) for u in uploads)
        )
        ok = [i for i, d in enumerate(decoded) if isinstance(d, np.ndarray)]
        probs, novelty = (
            await runtime.classify_scored(model, np.stack([decoded[i] for i in ok]))
            if ok
            else ([], None)
        )
    results: list[dict] = []
    rows = dict(zip(ok, probs, strict=True))
    nov = dict(zip(ok, novelty, strict=True)) if novelty is not None else {}
    for i, (upload, item) in enumerate(zip(uploads, decoded, strict=True)):
        entry = {"index": i, "filename": upload.filename}
        if i in rows:
            answer = prediction(model.labels, rows[i], top_k, nov.get(i), model.threshold)
            runtime.consider_collecting(model, upload.data, answer)
            entry.update(answer)
        else:
            entry.update({"error": item.code, "message": item.message, "status": item.status_code})
        results.append(entry)
    return {
        "results": results,
        "model": model_ref(model),
        "latency_ms": round((time.perf_counter() - start) * 1000, 3),
    }


async def _decode_entry(runtime: Runtime, upload: Upload, size: int) -> np.ndarray | ApiError:
    """One image of a batch, decoded, or the error it alone gets (never raised: the others go on)."""
    if upload.problem:
        return ApiError(422, "not_a_file", upload.problem)
    try:
        return await runtime.decode(upload.data, size)
    except ApiError as e:
        return e
