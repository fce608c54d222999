"""littlevision: image classifiers from very little data, cleaned, trained, explained and served.

The top-level names are imported lazily, so ``import littlevision`` is instant and TensorFlow is
loaded only by what needs it (training, explanations).
"""

from __future__ import annotations

from littlevision._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "Dataset": "littlevision.data.dataset",
    "Item": "littlevision.data.dataset",
    "load_image": "littlevision.data.decode",
    "DecodeError": "littlevision.data.decode",
    "open_dataset": "littlevision.data.source",
    "Bundle": "littlevision.bundle",
    "Predictor": "littlevision.inference",
    "Embedder": "littlevision.features",
    "TrainConfig": "littlevision.training.run",
    "train": "littlevision.training.run",
    "evaluate": "littlevision.training.run",
    "create_recipe": "littlevision.training.registry",
    "list_recipes": "littlevision.training.registry",
    "create_backbone": "littlevision.models",
    "list_backbones": "littlevision.models",
    "UserError": "littlevision.errors",
    "retrain": "littlevision.lifecycle",
    "versions": "littlevision.lifecycle",
    "rollback": "littlevision.lifecycle",
    "GateRule": "littlevision.lifecycle",
    "RetrainResult": "littlevision.lifecycle",
    "VersionInfo": "littlevision.lifecycle",
    "RollbackResult": "littlevision.lifecycle",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
