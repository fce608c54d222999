"""Backbones by name, timm style: one decorated builder per backbone.

Everything downstream (embedding cache, training recipes, the CLI's ``--backbone``) refers to a
backbone by a short name and reads its :class:`BackboneSpec` (input size, feature width, the layer
Grad-CAM needs) without building the network, so listing backbones never imports TensorFlow.

A duplicate name is an error rather than a silent overwrite: two modules claiming ``"lite0"``
would otherwise make the winner depend on import order.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from littlevision.errors import UserError

if TYPE_CHECKING:
    import keras

__all__ = [
    "BackboneSpec",
    "create_backbone",
    "get_backbone_spec",
    "list_backbones",
    "register_backbone",
]

# Modules whose import registers the built-in backbones; imported on first lookup so that
# ``import littlevision.models.registry`` stays cheap and free of import cycles.
_BUILTIN_MODULES = ("littlevision.models._efficientnet_lite",)


@dataclass(frozen=True)
class BackboneSpec:
    """What callers need to know about a backbone without building it.

    Attributes:
        name: Registry name (``"lite0"``).
        image_size: Side of the square images it was pretrained on.
        feature_dim: Width of the pooled feature vector (``include_top=False, pooling="avg"``).
        last_conv_layer: Name of the layer whose output is the last feature map (Grad-CAM).
        weights_package: The pip package holding its pretrained weights, or None.
        finetune_image_size: Input side the ``finetune`` recipe trains it at by default
            (default: ``image_size``).
        multiply_adds: Multiply-adds per image of the pooled features at ``image_size`` (0:
            unknown); the machine-independent cost that ``auto`` and ``compare`` rank by.
    """

    name: str
    image_size: int
    feature_dim: int
    last_conv_layer: str
    weights_package: str | None = None
    finetune_image_size: int | None = None

    def __post_init__(self) -> None:
        if self.finetune_image_size is None:
            object.__setattr__(self, "finetune_image_size", self.image_size)

    multiply_adds: int = 0

    def relative_cost(self, image_size: int | None = None, reference: int | None = None) -> float:
        """Multiply-adds at ``image_size`` (they grow with its square) over ``reference``'s."""
        size = image_size or self.image_size
        return self.multiply_adds * (size / self.image_size) ** 2 / max(reference or 1, 1)


@dataclass(frozen=True)
class _Entry:
    spec: BackboneSpec
    builder: Callable[..., keras.Model]


_REGISTRY: dict[str, _Entry] = {}


def register_backbone(
    name: str,
    *,
    image_size: int,
    feature_dim: int,
    last_conv_layer: str,
    weights_package: str | None = None,
    finetune_image_size: int | None = None,
    multiply_adds: int = 0,
) -> Callable[[Callable[..., keras.Model]], Callable[..., keras.Model]]:
    """Register a backbone builder under ``name``.

    The builder must accept the shared keyword arguments of :func:`create_backbone`
    (``input_shape``, ``include_top``, ``pooling``, ``weights``, ``num_classes``...).

    Args:
        name: The registry name.
        image_size: See :class:`BackboneSpec`.
        feature_dim: See :class:`BackboneSpec`.
        last_conv_layer: See :class:`BackboneSpec`.
        weights_package: See :class:`BackboneSpec`.
        finetune_image_size: See :class:`BackboneSpec`.
        multiply_adds: See :class:`BackboneSpec`.

    Returns:
        A decorator that registers the function and returns it unchanged.

    Raises:
        ValueError: ``name`` is already registered.
    """
    spec = BackboneSpec(
        name,
        int(image_size),
        int(feature_dim),
        last_conv_layer,
        weights_package,
        None if finetune_image_size is None else int(finetune_image_size),
        int(multiply_adds),
    )

    def decorator(builder: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
        if name in _REGISTRY:
            raise ValueError(
                f"Backbone {name!r} is already registered "
                f"(by {_REGISTRY[name].builder.__module__}.{_REGISTRY[name].builder.__qualname__})."
            )
        _REGISTRY[name] = _Entry(spec, builder)
        return builder

    return decorator


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def _entry(name: str) -> _Entry:
    _load_builtins()
    if name not in _REGISTRY:
        raise UserError(
            f"Unknown backbone {name!r}. Known backbones: {', '.join(sorted(_REGISTRY))}."
        )
    return _REGISTRY[name]


def list_backbones(by_cost: bool = False) -> list[str]:
    """Names of all registered backbones, sorted by name, or cheapest first with ``by_cost``."""
    _load_builtins()
    if by_cost:
        return sorted(_REGISTRY, key=lambda n: (_REGISTRY[n].spec.multiply_adds, n))
    return sorted(_REGISTRY)


def get_backbone_spec(name: str) -> BackboneSpec:
    """The :class:`BackboneSpec` of a registered backbone (no model is built).

    Raises:
        littlevision.errors.UserError: ``name`` is not registered; the message lists the known
            names.
    """
    return _entry(name).spec


def create_backbone(name: str, **kwargs: Any) -> keras.Model:
    """Build a registered backbone.

    Args:
        name: A name from :func:`list_backbones`.
        **kwargs: Passed to the builder: ``input_shape``, ``include_top``, ``pooling``,
            ``weights``, ``num_classes``, ``classifier_activation``, ``name``.

    Returns:
        The ``keras.Model``.

    Raises:
        littlevision.errors.UserError: ``name`` is not registered, or its pretrained weights need
            an optional package that is not installed (the message names the pip package).
    """
    return _entry(name).builder(**kwargs)
