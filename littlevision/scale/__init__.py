"""Scale out on Ray: batch prediction, embeddings and replicated serving (optional extra).

Install with ``pip install 'littlevision[ray]'``. Importing this package is cheap and never
imports Ray: each name loads its module when first used, and every entry point raises a
one-sentence :class:`~littlevision.errors.UserError` when Ray is not installed.
"""

from __future__ import annotations

from littlevision._lazy import lazy_exports

_EXPORTS = {
    "predict_files": "littlevision.scale.ray_engine",
    "embed_paths_ray": "littlevision.scale.ray_engine",
    "RayPredictSummary": "littlevision.scale.ray_engine",
    "serve_ray": "littlevision.scale.ray_serve",
    "RayService": "littlevision.scale.ray_serve",
    "ServeBatcher": "littlevision.scale.ray_serve",
    "build_application": "littlevision.scale.ray_serve",
    "app_builder": "littlevision.scale.ray_serve",
    "autoscaling_config": "littlevision.scale.ray_serve",
    "require_ray": "littlevision.scale.cluster",
    "ray_session": "littlevision.scale.cluster",
    "INSTALL_HINT": "littlevision.scale.cluster",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
