"""The service's endpoints, one router per concern; ``littlevision.serving.app`` wires them."""

from littlevision.serving.routers import explain, feedback, health, model, predict, v2, web

ALL = (
    predict.router,
    explain.router,
    feedback.router,
    model.router,
    health.router,
    v2.router,
    web.router,
)

__all__ = ["ALL"]
