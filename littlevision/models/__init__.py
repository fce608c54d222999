"""Backbones: EfficientNet-Lite in Keras 3 with ImageNet weights converted from torch, by name.

Importing this package is cheap: TensorFlow is loaded only when a model is built.
"""

from littlevision.models._efficientnet_lite import (
    FEATURE_DIM,
    LAST_CONV_LAYER,
    PIXEL_MEAN,
    PIXEL_STD,
    efficientnet_lite,
)
from littlevision.models.registry import (
    BackboneSpec,
    create_backbone,
    get_backbone_spec,
    list_backbones,
    register_backbone,
)
from littlevision.models.torch_pickle import TorchPickleError, load_legacy_torch
from littlevision.models.weights import (
    checkpoint_path,
    convert_state_dict,
    imagenet_weights_path,
    load_imagenet_weights,
)

__all__ = [
    "FEATURE_DIM",
    "LAST_CONV_LAYER",
    "PIXEL_MEAN",
    "PIXEL_STD",
    "BackboneSpec",
    "TorchPickleError",
    "checkpoint_path",
    "convert_state_dict",
    "create_backbone",
    "efficientnet_lite",
    "get_backbone_spec",
    "imagenet_weights_path",
    "list_backbones",
    "load_imagenet_weights",
    "load_legacy_torch",
    "register_backbone",
]
