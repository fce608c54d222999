"""``POST /v1/explain``: the prediction plus a Grad-CAM overlay showing where the model looked.

Grad-CAM needs gradients, so it runs on the Keras model, not the ONNX one. TensorFlow is
imported and the Keras model loaded on the first explanation only (seconds), in a worker thread,
so predictions never wait for it and a service that is never asked to explain never pays.
The prediction in the answer comes from the ONNX model (the same as ``/v1/predict``), and the
overlay explains that predicted class unless ``class_index`` asks for another.
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from littlevision.data.decode import MAX_PIXELS, DecodeError, load_image
from littlevision.errors import UserError
from littlevision.serving.dependencies import RuntimeDep, get_runtime
from littlevision.serving.errors import ApiError, decode_error, error_responses
from littlevision.serving.images import IMAGE_BODY_DOC, read_upload
from littlevision.serving.model_store import LoadedModel
from littlevision.serving.runtime import Runtime
from littlevision.serving.schemas import ExplainResponse, model_ref, prediction

router = APIRouter(prefix="/v1", tags=["explain"])

#: ``(model, upload bytes, class_index) -> PNG bytes`` of the overlay; runs in a worker thread.
Explainer = Callable[[LoadedModel, bytes, int], bytes]


def get_explainer(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Explainer:
    """Grad-CAM from ``littlevision.explain._gradcam`` on the bundle's Keras model.

    Everything slow (importing TensorFlow, loading the Keras model, decoding the image at full
    size for the overlay) happens inside the returned function, on the explain thread, so
    neither the event loop nor predictions wait for it. Tests may override this dependency.
    """
    max_pixels = runtime.settings.max_pixels or MAX_PIXELS
    if not runtime.settings.explain:
        raise ApiError(
            501,
            "explain_disabled",
            "This service runs without Grad-CAM (--no-explain). Predictions still work.",
        )

    def explain(model: LoadedModel, data: bytes, class_index: int) -> bytes:
        if not model.bundle.keras_path.is_file():
            raise ApiError(
                501,
                "explain_unavailable",
                "This run has no model.keras, which Grad-CAM needs. Predictions still work.",
            )
        try:
            from littlevision.explain._gradcam import gradcam_overlay
        except ImportError as e:
            raise ApiError(
                501,
                "explain_unavailable",
                f"Grad-CAM is not available in this installation ({e}). Predictions still work.",
            ) from None
        try:
            image = load_image(data, max_pixels=max_pixels)  # full size: the overlay is drawn on it
        except DecodeError as e:
            raise decode_error(e) from None
        try:
            result = gradcam_overlay(model.bundle, image, class_index=class_index)
        except (UserError, ImportError) as e:
            raise ApiError(
                501,
                "explain_unavailable",
                f"This model cannot be explained: {e} Predictions still work.",
            ) from None
        return to_png(result[0] if isinstance(result, tuple) else result)

    return explain


def to_png(overlay) -> bytes:
    """The overlay as PNG bytes, whether the explainer gave PNG bytes, an array or a PIL image."""
    if isinstance(overlay, bytes | bytearray | memoryview):
        return bytes(overlay)
    from PIL import Image

    if isinstance(overlay, np.ndarray):
        array = overlay
        if array.dtype != np.uint8:
            array = np.clip(array * (255.0 if array.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        overlay = Image.fromarray(array)
    if not isinstance(overlay, Image.Image):
        raise TypeError(
            f"Expected the explainer to return PNG bytes, an array or an image. "
            f"Received: {type(overlay).__name__}"
        )
    buffer = io.BytesIO()
    overlay.save(buffer, format="PNG")
    return buffer.getvalue()


@router.post(
    "/explain",
    summary="Explain one image with Grad-CAM",
    description=(
        "Same input as `/v1/predict`. Answers the Grad-CAM overlay as `image/png` with the "
        "prediction in headers `X-Label`, `X-Score`, `X-Class-Index`, `X-Model-Version` "
        "(`format=png`, the default), or JSON with the prediction and the PNG in base64 "
        "(`format=json`). `class_index` picks the class to explain (default: the predicted one). "
        "501 when Grad-CAM is not available (not installed, or the run has no model.keras). "
        "The first call loads TensorFlow and takes seconds."
    ),
    openapi_extra={"requestBody": IMAGE_BODY_DOC},
    response_model=ExplainResponse,
    responses={
        200: {
            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The overlay (PNG) or the prediction with the overlay (JSON).",
        },
        **error_responses(400, 413, 415, 422, 429, 501, 503),
    },
)
async def explain(
    request: Request,
    runtime: RuntimeDep,
    explainer: Annotated[Explainer, Depends(get_explainer)],
    format: Annotated[Literal["png", "json"], Query(description="png or json")] = "png",
    class_index: Annotated[int | None, Query(ge=0, description="Class to explain.")] = None,
    top_k: Annotated[int | None, Query(ge=1, description="Classes in the JSON answer.")] = None,
) -> Response:
    start = time.perf_counter()
    runtime.check_capacity(1)
    upload = await read_upload(request)  # before admission: a slow upload holds no slot
    async with runtime.admit(1), runtime.deadline(runtime.settings.explain_timeout_s):
        model = runtime.model
        if class_index is not None and class_index >= len(model.labels):
            raise ApiError(
                422,
                "invalid_request",
                f"Expected class_index < {len(model.labels)}. Received: {class_index}",
            )
        image = await runtime.decode(upload.data, model.image_size)
        probs = await runtime.classify(model, image)
        index = int(np.argmax(probs)) if class_index is None else class_index
        png = await runtime.run_in_explain_thread(explainer, model, upload.data, index)
    answer = {
        **prediction(model.labels, probs, top_k),
        "model": model_ref(model).model_dump(),
        "latency_ms": round((time.perf_counter() - start) * 1000, 3),
        "class_index": index,
    }
    if format == "json":
        answer["overlay_png_base64"] = base64.b64encode(png).decode("ascii")
        return Response(ExplainResponse(**answer).model_dump_json(), media_type="application/json")
    headers = {
        "X-Label": _header_safe(answer["label"]),
        "X-Score": f"{answer['score']:.6f}",
        "X-Class-Index": str(index),
        "X-Model-Name": _header_safe(model.name),
        "X-Model-Version": _header_safe(model.version),
    }
    return Response(png, media_type="image/png", headers=headers)


def _header_safe(text: str) -> str:
    """A class name as a header value: as it is when it is printable ASCII, else percent-encoded.

    Labels are data (folder names): one in another script, or holding CR/LF or another control
    character, would be refused by the HTTP server (no answer at all) or split the header.
    """
    from urllib.parse import quote

    if text.isascii() and text.isprintable():
        return text
    return quote(text)
