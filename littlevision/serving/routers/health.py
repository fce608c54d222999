"""``/healthz`` (the process answers), ``/readyz`` (send it traffic) and ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from littlevision.serving.dependencies import RuntimeDep
from littlevision.serving.metrics import CONTENT_TYPE
from littlevision.serving.schemas import Health, Readiness, model_ref

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: the model is loaded and warmed up",
    description="200 when requests will be answered; 503 while starting or shutting down.",
    responses={503: {"model": Readiness, "description": "not ready"}},
)
async def readyz(runtime: RuntimeDep):
    if not runtime.ready:
        return JSONResponse(
            {"ready": False, "model": None}, status_code=503, headers={"Retry-After": "1"}
        )
    return {"ready": True, "model": model_ref(runtime.store.current)}


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Prometheus metrics",
    description=(
        "Prometheus text format: requests by endpoint and status, latency histograms, batch "
        "sizes, ONNX Runtime call times, queue depth, rejections, decode errors, reloads and "
        "the model version being served."
    ),
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text."}},
)
async def metrics(runtime: RuntimeDep) -> PlainTextResponse:
    return PlainTextResponse(runtime.metrics.render(), media_type=CONTENT_TYPE)
