"""Recipes by name, and what each says it takes (callers ask the recipe, not its name)."""

from __future__ import annotations

import pytest

from littlevision.errors import UserError
from littlevision.training.registry import create_recipe, get_recipe_class, list_recipes


def test_each_recipe_says_which_shared_settings_it_takes():
    shared = {"backbone": "lite0", "image_size": 160, "epochs": 3, "seed": 1}
    assert get_recipe_class("scratch").settings(**shared) == {
        "image_size": 160,
        "epochs": 3,
        "seed": 1,
    }
    assert "backbone" in get_recipe_class("bottleneck").settings(**shared)
    assert "epochs" not in get_recipe_class("bottleneck").settings(**shared)
    assert get_recipe_class("finetune").settings(image_size=None) == {}  # None: its default


def test_every_recipe_can_be_made_from_what_it_says_it_takes():
    for name in list_recipes():
        params = get_recipe_class(name).settings(backbone="lite0", seed=3)
        assert create_recipe(name, **params).get_params()["seed"] == 3


def test_the_backbone_inside_the_model_is_asked_of_the_recipe():
    assert create_recipe("scratch").model_backbone_ is None
    assert create_recipe("bottleneck", backbone="lite0").model_backbone_ == "lite0"
    auto = create_recipe("auto", backbone="lite0")
    assert auto.model_backbone_ == "lite0"
    auto.chosen_backbone_ = "lite2"  # what fit sets when the search's winner is on lite2
    assert auto.model_backbone_ == "lite2" and auto.get_params()["backbone"] == "lite0"


def test_an_unknown_recipe_is_one_sentence():
    with pytest.raises(UserError, match="Unknown recipe 'nope'. Known recipes: auto"):
        get_recipe_class("nope")
