"""The Open Inference Protocol v2 (KServe, Triton, Seldon MLServer), REST flavour.

So that clients and tooling written for those servers can call a littlevision model unchanged:
health, model metadata, and ``infer`` with the bundle's own tensor contract (input ``image``,
UINT8 [N, S, S, 3], the whole image resized to S x S; output ``probabilities``, FP32 [N, C] in
label order). ``image`` may instead be a BYTES tensor of shape [N] whose elements are
base64-encoded image files (JPEG, PNG, ...), as OpenVINO Model Server accepts them: the service
decodes and resizes them, so a client need not. Tensors travel as JSON; Triton's binary-data
extension is not supported. Errors are ``{"error": "<message>"}``; health and readiness answer
200 when true and 503 (with the spec's body) when not; ``id`` is echoed only when sent.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from littlevision import __version__
from littlevision.onnx_contract import ONNX_INPUT, ONNX_OUTPUT
from littlevision.serving.dependencies import RuntimeDep, get_model
from littlevision.serving.errors import ApiError, echo, error_responses
from littlevision.serving.images import JSON_TYPES, media_type
from littlevision.serving.model_store import LoadedModel

router = APIRouter(prefix="/v2", tags=["open inference protocol v2"])

ModelName = Annotated[str, Path(description="The model's name (see GET /v1/model).")]
ModelVersion = Annotated[str, Path(description="The model's version.")]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class RequestInput(BaseModel):
    name: str = Field(description=f"Must be '{ONNX_INPUT}'.")
    shape: list[int] = Field(
        description="[N, S, S, 3] with S the model's image_size (UINT8), or [N] (BYTES)."
    )
    datatype: str = Field(description="'UINT8' (pixels) or 'BYTES' (base64 image files).")
    parameters: dict[str, Any] | None = None
    data: list[Any] = Field(
        description="UINT8: the pixels, flat in row-major order or nested. BYTES: N strings, "
        "each a base64-encoded image file (JPEG, PNG, WebP, ...)."
    )


class RequestOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput] = Field(min_length=1, max_length=1)
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[float]


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[ResponseOutput]


class Liveness(BaseModel):
    live: bool


class Ready(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


def named_model(
    model: Annotated[LoadedModel, Depends(get_model)], model_name: ModelName
) -> LoadedModel:
    """The served model when the path names it; 404 otherwise."""
    if model_name != model.name:
        raise ApiError(
            404,
            "model_not_found",
            f"Expected model name '{model.name}'. Received: {echo(model_name)}",
        )
    return model


NamedModel = Annotated[LoadedModel, Depends(named_model)]


def _check_version(model: LoadedModel, version: str) -> None:
    if version != model.version:
        raise ApiError(
            404,
            "model_not_found",
            f"Expected version '{model.version}' (the one being served). Received: {echo(version)}",
        )


@router.get("", response_model=ServerMetadata, summary="Server metadata")
async def server_metadata() -> dict:
    return {"name": "littlevision", "version": __version__, "extensions": []}


@router.get("/health/live", response_model=Liveness, summary="Server liveness")
async def live() -> dict:
    return {"live": True}


@router.get(
    "/health/ready",
    response_model=Ready,
    summary="Server readiness",
    responses={503: {"model": Ready, "description": "not ready"}},
)
async def ready(runtime: RuntimeDep):
    if not runtime.ready:
        return JSONResponse({"ready": False}, status_code=503, headers={"Retry-After": "1"})
    return {"ready": True}


def _metadata(model: LoadedModel) -> dict:
    s = model.image_size
    return {
        "name": model.name,
        "versions": [model.version],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": ONNX_INPUT, "datatype": "UINT8", "shape": [-1, s, s, 3]}],
        "outputs": [{"name": ONNX_OUTPUT, "datatype": "FP32", "shape": [-1, len(model.labels)]}],
    }


@router.get(
    "/models/{model_name}",
    response_model=ModelMetadata,
    summary="Model metadata",
    responses=error_responses(404, 503, v2=True),
)
async def model_metadata(model: NamedModel) -> dict:
    return _metadata(model)


@router.get(
    "/models/{model_name}/versions/{model_version}",
    response_model=ModelMetadata,
    summary="Model metadata (one version)",
    responses=error_responses(404, 503, v2=True),
)
async def model_version_metadata(model: NamedModel, model_version: ModelVersion) -> dict:
    _check_version(model, model_version)
    return _metadata(model)


@router.get(
    "/models/{model_name}/ready",
    response_model=ModelReady,
    summary="Model readiness",
    responses={**error_responses(404, v2=True), 503: {"model": ModelReady}},
)
async def model_ready(model: NamedModel, runtime: RuntimeDep):
    if not runtime.ready:
        return JSONResponse(
            {"name": model.name, "ready": False}, status_code=503, headers={"Retry-After": "1"}
        )
    return {"name": model.name, "ready": True}


_INFER_DOC = (
    "Input `image`: UINT8 tensor of shape [N, S, S, 3] (S = the model's image_size, the whole "
    "image resized to S x S, RGB), `data` flat in row-major order or nested; or a BYTES tensor "
    "of shape [N] whose elements are base64-encoded image files (the service decodes and "
    "resizes them). Output "
    "`probabilities`: FP32 [N, C] in label order (labels: GET /v1/model). Requests go through "
    "the same micro-batcher as /v1/predict. Malformed JSON or tensors get 400, a request that "
    "is not a v2 inference request 422. A full service answers 429 before reading the body; "
    "at most `max_parses` bodies are parsed at once."
)


def _inline_refs(schema: dict) -> dict:
    """The model's JSON schema with its ``$defs`` written in place (OpenAPI has no ``$defs``)."""
    defs = schema.pop("$defs", {})

    def walk(node):
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(defs[ref.rsplit("/", 1)[1]])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


#: The body is read and parsed by the endpoint itself (admission first), so it is declared here.
_INFER_BODY_DOC = {
    "required": True,
    "content": {"application/json": {"schema": _inline_refs(InferenceRequest.model_json_schema())}},
}


#: What the two infer routes (latest model, one version) declare alike.
_INFER_ROUTE: dict[str, Any] = {
    "response_model": InferenceResponse,
    "description": _INFER_DOC,
    "openapi_extra": {"requestBody": _INFER_BODY_DOC},
    "responses": error_responses(400, 404, 408, 413, 415, 422, 429, 503, v2=True),
    "response_model_exclude_none": True,  # no id when the request had none
}


@router.post("/models/{model_name}/infer", summary="Inference", **_INFER_ROUTE)
async def infer(request: Request, model: NamedModel, runtime: RuntimeDep) -> dict:
    return await _infer(request, model, runtime)


@router.post(
    "/models/{model_name}/versions/{model_version}/infer",
    summary="Inference (one version)",
    **_INFER_ROUTE,
)
async def infer_version(
    request: Request, model: NamedModel, runtime: RuntimeDep, model_version: ModelVersion
) -> dict:
    _check_version(model, model_version)
    return await _infer(request, model, runtime)


def parse_infer_request(
    body: bytes | bytearray, size: int, max_images: int
) -> tuple[str | None, np.ndarray]:
    """A v2 JSON body -> (its id, uint8 images [N, S, S, 3]): the memory-heavy part of infer.

    Parsed straight from bytes by pydantic (no intermediate ``json.loads`` tree), and nothing
    but the uint8 array outlives this call.

    Raises:
        ApiError: 400 ``invalid_json`` (including nesting too deep), 422 ``invalid_request``
            for JSON that is not an inference request, 400/413 from :func:`tensor_to_images`.
    """
    try:
        request = InferenceRequest.model_validate_json(body)
    except ValidationError as e:
        errors = e.errors(include_input=False, include_url=False, include_context=False)
        if any(err["type"] == "json_invalid" for err in errors):
            raise ApiError(400, "invalid_json", "The body is not valid JSON.") from None
        where = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', '')}"
            for err in errors[:5]
        )
        raise ApiError(
            422, "invalid_request", f"Expected a v2 inference request. Received: {where}"
        ) from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "The body's JSON is nested too deeply.") from None
    for wanted in request.outputs or []:
        if wanted.name != ONNX_OUTPUT:
            raise ApiError(
                400, "bad_tensor", f"Expected output '{ONNX_OUTPUT}'. Received: {echo(wanted.name)}"
            )
    return request.id, tensor_to_images(request.inputs[0], size, max_images)


async def _infer(request: Request, model: LoadedModel, runtime) -> dict:
    kind = media_type(request)
    if kind and kind not in JSON_TYPES and not kind.endswith("+json"):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Expected Content-Type application/json. Received: {echo(kind)}",
        )
    # Admission before anything is read or parsed: a full service says 429 at once. The body
    # is then read (bounded in size and time) and parsed at most max_parses at a time.
    runtime.check_capacity(1)
    body = bytearray()  # grown in place: no second copy from joining chunks
    async for chunk in request.stream():
        body += chunk
    async with runtime.deadline():
        request_id, images = await runtime.parse(
            parse_infer_request, body, model.image_size, runtime.settings.max_batch_images
        )
        del body
        async with runtime.admit(len(images)):
            probs = await runtime.classify(model, images)
    answer = {"model_name": model.name, "model_version": model.version}
    if request_id is not None:
        answer["id"] = request_id
    return {
        **answer,
        "parameters": {"precision": model.precision},
        "outputs": [
            {
                "name": ONNX_OUTPUT,
                "shape": list(probs.shape),
                "datatype": "FP32",
                "data": probs.astype(np.float32).ravel().tolist(),
            }
        ],
    }


def tensor_to_images(tensor: RequestInput, size: int, max_images: int) -> np.ndarray:
    """Check a v2 input tensor against the contract and return it as uint8 [N, S, S, 3].

    Raises:
        ApiError: 400 ``bad_tensor`` saying what was expected and what came; 413 for more
            than ``max_images`` images.
    """

    def bad(message: str) -> ApiError:
        return ApiError(400, "bad_tensor", message)

    if tensor.name != ONNX_INPUT:
        raise bad(f"Expected input '{ONNX_INPUT}'. Received: {echo(tensor.name)}")
    if tensor.datatype.upper() == "BYTES":
        return encoded_images(tensor, size, max_images)
    if tensor.datatype.upper() != "UINT8":
        raise bad(f"Expected datatype UINT8 or BYTES. Received: {echo(tensor.datatype)}")
    shape = tensor.shape
    if len(shape) != 4 or shape[1:] != [size, size, 3] or shape[0] < 1:
        raise bad(f"Expected shape [N, {size}, {size}, 3] with N >= 1. Received: {echo(shape)}")
    if shape[0] > max_images:
        raise ApiError(
            413,
            "too_many_images",
            f"Expected at most {max_images} images per request. Received: {shape[0]}",
        )
    try:
        values = np.asarray(tensor.data)
    except (ValueError, TypeError, OverflowError):
        raise bad("Expected 'data' to be numbers, flat or evenly nested.") from None
    if values.dtype.kind not in "iu":
        raise bad(
            f"Expected integer pixel values 0-255. Received: values of type {values.dtype.name}"
        )
    expected = int(np.prod(shape))
    if values.size != expected:
        raise bad(f"Expected {expected} values for shape {echo(shape)}. Received: {values.size}")
    if values.size and (values.min() < 0 or values.max() > 255):
        raise bad("Expected pixel values 0-255. Received: values outside that range")
    return values.reshape(shape).astype(np.uint8)


def encoded_images(tensor: RequestInput, size: int, max_images: int) -> np.ndarray:
    """A BYTES tensor [N] of base64-encoded image files -> uint8 [N, S, S, 3], decoded as
    ``/v1/predict`` decodes an upload (EXIF orientation, any mode to RGB, bomb limit).

    Raises:
        ApiError: 400 ``bad_tensor`` for a wrong shape or an element that is not base64; 413
            for more than ``max_images``; the upload's 4xx when a file is not a usable image.
    """
    from littlevision.data.decode import DecodeError, load_image
    from littlevision.serving.errors import decode_error

    shape = tensor.shape
    if len(shape) != 1 or shape[0] < 1:
        raise ApiError(
            400, "bad_tensor", f"Expected shape [N] with N >= 1 for BYTES. Received: {shape}"
        )
    if shape[0] > max_images:
        raise ApiError(
            413,
            "too_many_images",
            f"Expected at most {max_images} images per request. Received: {shape[0]}",
        )
    if len(tensor.data) != shape[0]:
        raise ApiError(
            400,
            "bad_tensor",
            f"Expected {shape[0]} elements for shape {shape}. Received: {len(tensor.data)}",
        )
    images = np.empty((shape[0], size, size, 3), np.uint8)
    for i, item in enumerate(tensor.data):
        if not isinstance(item, str):
            raise ApiError(
                400,
                "bad_tensor",
                f"Expected element {i} to be a base64 string. Received: {type(item).__name__}",
            )
        try:
            data = base64.b64decode(item, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(
                400, "bad_tensor", f"Expected element {i} to be base64. Received: other text"
            ) from None
        try:
            images[i] = load_image(data, size)
        except DecodeError as e:
            error = decode_error(e)
            raise ApiError(error.status_code, error.code, f"Element {i}: {error.message}") from None
    return images
