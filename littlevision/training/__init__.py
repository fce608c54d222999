"""Training: recipes by name, ``train``/``evaluate`` from data to a bundle, and ``compare``.

Importing this package is cheap: a recipe module (and Keras with it) loads only when one of
these names is first used.
"""

from __future__ import annotations

from littlevision._lazy import lazy_exports

_EXPORTS = {
    "FitResult": "littlevision.training.base",
    "Recipe": "littlevision.training.base",
    "create_recipe": "littlevision.training.registry",
    "get_recipe_class": "littlevision.training.registry",
    "list_recipes": "littlevision.training.registry",
    "register_recipe": "littlevision.training.registry",
    "TrainConfig": "littlevision.training.run",
    "evaluate": "littlevision.training.run",
    "train": "littlevision.training.run",
    "write_bundle": "littlevision.training.run",
    "Bottleneck": "littlevision.training.bottleneck",
    "Scratch": "littlevision.training.scratch",
    "Finetune": "littlevision.training.finetune",
    "Auto": "littlevision.training.auto",
    "choose_recipe": "littlevision.training.auto",
    "CompareRow": "littlevision.training.comparison",
    "Comparison": "littlevision.training.comparison",
    "compare": "littlevision.training.comparison",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
