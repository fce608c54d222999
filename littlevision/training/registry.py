"""Recipes by name, timm-style: a new recipe is one decorated class."""

from __future__ import annotations

from collections.abc import Callable

from littlevision.errors import UserError

_RECIPES: dict[str, type] = {}


def register_recipe(name: str) -> Callable[[type], type]:
    """Class decorator adding a recipe under ``name``; a duplicate name is an error."""

    def add(cls: type) -> type:
        if name in _RECIPES:
            raise ValueError(f"A recipe named '{name}' is already registered ({_RECIPES[name]}).")
        cls.name = name
        _RECIPES[name] = cls
        return cls

    return add


def list_recipes() -> list[str]:
    _load_builtin()
    return sorted(_RECIPES)


def get_recipe_class(name: str) -> type:
    """The class registered as ``name`` (to ask what it takes before making one)."""
    _load_builtin()
    if name not in _RECIPES:
        raise UserError(f"Unknown recipe '{name}'. Known recipes: {', '.join(sorted(_RECIPES))}.")
    return _RECIPES[name]


def create_recipe(name: str, **params):
    """A recipe object configured with ``params``."""
    return get_recipe_class(name)(**params)


def _load_builtin() -> None:
    """Import the modules that register the built-in recipes (kept lazy: they import Keras)."""
    import importlib

    for module in ("bottleneck", "scratch", "finetune", "auto"):
        try:
            importlib.import_module(f"littlevision.training.{module}")
        except ModuleNotFoundError as e:
            if e.name != f"littlevision.training.{module}":
                raise
