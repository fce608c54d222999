"""``GET /v1/model`` (what is served) and ``POST /v1/reload`` (serve the run folder's new model)."""

from __future__ import annotations

from fastapi import APIRouter

from littlevision.serving.dependencies import ApiKeyDep, ModelDep, RuntimeDep
from littlevision.serving.errors import ApiError, error_responses
from littlevision.serving.schemas import ModelInfo, ReloadResponse

router = APIRouter(prefix="/v1", tags=["model"])


@router.get(
    "/model",
    response_model=ModelInfo,
    summary="The model being served: card, labels, validation metrics",
    responses=error_responses(503),
)
async def model_info(model: ModelDep, runtime: RuntimeDep) -> dict:
    return {
        "name": model.name,
        "version": model.version,
        "precision": model.precision,
        "labels": model.labels,
        "image_size": model.image_size,
        "backbone": model.bundle.card.get("backbone"),
        "cost": model.bundle.card.get("cost"),
        "card": model.bundle.card,
        "metrics": model.bundle.metrics,
        "loaded_at": model.loaded_at,
        "last_reload_error": runtime.store.last_error,
        "run_version": model.bundle.run_version,
        "unknown_threshold": model.threshold,
        "drift": runtime.drift.figures(),
    }


@router.post(
    "/reload",
    response_model=ReloadResponse,
    summary="Load the run folder's model again and swap it in",
    description=(
        "Loads and warms the bundle on disk in the background while the current model keeps "
        "answering, then swaps it in atomically. If the new one fails to load or to answer its "
        "warm-up, the current model keeps serving and the answer is 409 with the reason. "
        "The service also reloads by itself when the bundle's files change. Needs the API key "
        "when the service has one."
    ),
    dependencies=[ApiKeyDep],
    responses=error_responses(401, 409, 503),
)
async def reload(runtime: RuntimeDep) -> dict:
    runtime.model  # noqa: B018 - 503 when not started yet
    result = await runtime.store.reload(reason="POST /v1/reload")
    if not result.ok:
        raise ApiError(
            409,
            "reload_failed",
            f"The new model was not loaded; still serving version {result.version}. {result.error}",
        )
    return {
        "reloaded": True,
        "version": result.version,
        "previous": result.previous,
        "seconds": round(result.seconds, 3),
    }
