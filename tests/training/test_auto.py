"""``auto``: the decision rule, and a real pick on a tiny slice, with its reason recorded."""

from __future__ import annotations

from littlevision.progress import Reporter
from littlevision.training.auto import choose_recipe
from littlevision.training.run import TrainConfig, train


def test_few_images_per_class_keep_the_bottleneck_model():
    choice = choose_recipe({"a": 12, "b": 300}, n_val=100, bottleneck_accuracy=0.8)
    assert choice.recipe == "bottleneck" and "12 training images" in choice.why


def test_a_tiny_validation_split_cannot_justify_fine_tuning():
    choice = choose_recipe({"a": 50, "b": 50}, n_val=8, bottleneck_accuracy=0.75)
    assert choice.recipe == "bottleneck" and "8 validation images" in choice.why


def test_nothing_to_win_when_the_bottleneck_is_perfect():
    choice = choose_recipe({"a": 100, "b": 100}, n_val=50, bottleneck_accuracy=1.0)
    assert choice.recipe == "bottleneck" and "all 50" in choice.why


def test_room_to_improve_and_enough_data_means_finetune():
    choice = choose_recipe({"a": 1000, "b": 1000}, n_val=800, bottleneck_accuracy=0.985)
    assert choice.recipe == "finetune" and "98.5%" in choice.why


def test_useless_pretrained_features_and_much_data_mean_scratch():
    choice = choose_recipe({"a": 3000, "b": 3000, "c": 3000}, n_val=900, bottleneck_accuracy=0.40)
    assert choice.recipe == "scratch" and "33% by chance" in choice.why
    # the same features with little data: scratch would not learn better ones
    assert choose_recipe({"a": 60, "b": 60, "c": 60}, 90, 0.40).recipe == "finetune"


class _Log(Reporter):
    def __init__(self):
        self.lines = []

    def log(self, message):
        self.lines.append(message)


def test_auto_on_a_tiny_slice_keeps_the_bottleneck_and_says_why(small_folder, tmp_path):
    reporter = _Log()
    bundle = train(small_folder, tmp_path / "run", TrainConfig(recipe="auto"), reporter=reporter)
    card = bundle.card
    assert card["recipe"] == "auto" and card["backbone"] == "lite0"
    auto = card["recipe_info"]["auto"]
    smallest = min(card["data"]["counts_train"].values())
    assert auto["chosen"] == "bottleneck" and f"smallest class has {smallest} " in auto["why"]
    assert any(line.startswith("auto: chose bottleneck") for line in reporter.lines)
    assert 0.0 <= auto["bottleneck_accuracy"] <= 1.0
    assert bundle.metrics["accuracy"] == auto["bottleneck_accuracy"]
