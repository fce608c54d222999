"""The shapes of the service's answers, for clients and for the OpenAPI schema at ``/docs``."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from littlevision.serving.model_store import LoadedModel


class ModelRef(BaseModel):
    """Which model answered: every answer carries it, so a hot reload is visible to clients."""

    name: str
    version: str
    precision: str = Field(
        default="fp32", description="fp32 (model.onnx) or int8 (model.int8.onnx)."
    )


class Prediction(BaseModel):
    """One image's answer."""

    label: str = Field(description="The most probable class.")
    score: float = Field(description="Its probability.")
    probabilities: dict[str, float] = Field(
        description="Class -> probability, most probable first (the top_k classes when asked)."
    )
    unknown: bool | None = Field(
        None,
        description="True when the image looks like none of the training images (its novelty "
        "is over the model's threshold); the label is still the most probable class. Absent "
        "for a model trained without a novelty score.",
    )
    novelty: float | None = Field(
        None, description="How unlike the training images it is (higher = stranger)."
    )


class PredictResponse(Prediction):
    model: ModelRef
    latency_ms: float = Field(description="Time spent in the service, from request to answer.")


class BatchEntry(BaseModel):
    """One image of a batch: a prediction, or its own error (the others are still answered)."""

    index: int
    filename: str | None = None
    label: str | None = None
    score: float | None = None
    probabilities: dict[str, float] | None = None
    unknown: bool | None = None
    novelty: float | None = None
    error: str | None = Field(None, description="Error code when this image failed.")
    message: str | None = None
    status: int | None = Field(None, description="The HTTP status this image alone would get.")


class BatchResponse(BaseModel):
    results: list[BatchEntry]
    model: ModelRef
    latency_ms: float


class ExplainResponse(PredictResponse):
    class_index: int = Field(description="Index (in labels) of the class the overlay explains.")
    overlay_png_base64: str = Field(description="The Grad-CAM overlay, a PNG in base64.")


class FeedbackResponse(BaseModel):
    saved: bool = Field(description="False when this exact image was already saved for the label.")
    label: str
    sha256: str
    path: str = Field(description="Where it was saved, relative to the run folder.")


class ModelInfo(BaseModel):
    name: str
    version: str
    precision: str = Field("fp32", description="fp32 (model.onnx) or int8 (model.int8.onnx).")
    labels: list[str]
    image_size: int
    backbone: str | None = Field(
        None, description="Pretrained backbone of the model (None: trained from scratch)."
    )
    cost: dict[str, Any] | None = Field(
        None,
        description="Per image: multiply-adds, parameters, measured ms and img/s (card.json).",
    )
    card: dict[str, Any]
    metrics: dict[str, Any]
    loaded_at: float = Field(description="Unix time at which this version started serving.")
    last_reload_error: str | None = Field(
        None, description="Why the last reload failed (the old model kept serving), if it did."
    )
    run_version: int | None = Field(
        None, description="The run's version being served (versions/<N>), for a retrained run."
    )
    unknown_threshold: float | None = Field(
        None, description="Novelty over it is answered with unknown=true."
    )
    drift: dict[str, Any] | None = Field(
        None, description="Recent traffic compared with the validation set (docs/lifecycle.md)."
    )


class ReloadResponse(BaseModel):
    reloaded: bool
    version: str
    previous: str | None
    seconds: float


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    model: ModelRef | None = None


def model_ref(model: LoadedModel) -> ModelRef:
    return ModelRef(name=model.name, version=model.version, precision=model.precision)


def prediction(
    labels: list[str],
    probs: np.ndarray,
    top_k: int | None = None,
    novelty: float | None = None,
    threshold: float | None = None,
) -> dict[str, Any]:
    """``label``, ``score`` and ``probabilities`` (most probable first) for one row [C], and
    ``unknown``/``novelty`` when the model scores novelty."""
    order = np.argsort(-probs, kind="stable")
    if top_k is not None:
        order = order[:top_k]
    best = int(order[0])
    out = {
        "label": labels[best],
        "score": float(probs[best]),
        "probabilities": {labels[int(i)]: float(probs[int(i)]) for i in order},
    }
    if novelty is not None and threshold is not None:
        out["unknown"] = bool(novelty > threshold)
        out["novelty"] = float(novelty)
    return out
