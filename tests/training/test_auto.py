"""``auto``: the decision rule, and a real pick on a tiny slice, with its reason recorded."""

from __future__ import annotations

import numpy as np
import pytest

from littlevision.bundle import Bundle
from littlevision.data.dataset import Dataset, Item
from littlevision.errors import UserError
from littlevision.inference import Predictor
from littlevision.progress import Reporter
from littlevision.training.auto import Candidate, choose_recipe, parse_budget, pick_winner
from littlevision.training.registry import create_recipe
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
    def __init__(self, interrupt_at: str | None = None):
        self.lines = []
        self.interrupt_at = interrupt_at

    def log(self, message):
        self.lines.append(message)
        if self.interrupt_at and message.startswith(self.interrupt_at):
            raise KeyboardInterrupt  # what Ctrl-C raises in the main thread at that moment


def _cand(backbone, correct, speed, loss=0.3):
    c = np.array(correct, dtype=float)
    return Candidate(
        backbone,
        "bottleneck",
        status="done",
        cv_accuracy=float(np.nanmean(c)),
        cv_log_loss=loss,
        cv_images=int((~np.isnan(c)).sum()),
        images_per_s=speed,
        correct=c,
    )


def test_a_clear_winner_beats_a_faster_model():
    fast = _cand("lite0", [1] * 60 + [0] * 40, speed=120)
    slow = _cand("lite2", [1] * 90 + [0] * 10, speed=50)  # +30 points on the same images
    winner, why = pick_winner([fast, slow])
    assert winner == 1 and "the most accurate" in why and "lite0 bottleneck 60.0%" in why


def test_a_tie_within_noise_goes_to_the_faster_model():
    fast = _cand("lite0", [1] * 90 + [0] * 10, speed=120)
    slow = _cand("lite2", [1] * 91 + [0] * 9, speed=50)  # one image more: within the noise
    winner, why = pick_winner([fast, slow])
    assert winner == 0 and "within the noise" in why and "120 vs 50 img/s" in why


def test_skipped_candidates_are_never_picked():
    done = _cand("lite0", [1, 0, 1, 1], speed=100)
    skipped = Candidate("lite2", "bottleneck", status="skipped", note="over budget")
    assert pick_winner([done, skipped]) == (0, pick_winner([done])[1])
    with pytest.raises(ValueError):
        pick_winner([skipped])


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("5m", 300), ("2m30s", 150), ("1h", 3600), ("45", 45)]
)
def test_budgets_read_as_durations(text, seconds):
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["soon", "5 minutes", "0s", "-3m"])
def test_a_bad_budget_is_one_sentence(text):
    with pytest.raises(UserError, match="--budget"):
        parse_budget(text)


def test_auto_searches_within_a_tiny_budget_and_records_the_winner(small_folder, tmp_path):
    reporter = _Log()
    bundle = train(
        small_folder,
        tmp_path / "run",
        TrainConfig(recipe="auto", val_split=0.3),
        reporter=reporter,
        backbones="lite0,lite1",
        budget="1s",
    )
    card = bundle.card
    auto = card["recipe_info"]["auto"]
    cands = {(c["backbone"], c["recipe"]): c for c in auto["candidates"]}
    # lite0 always runs (the floor); lite1 does not fit in one second and says so
    assert cands[("lite0", "bottleneck")]["status"] == "done"
    assert cands[("lite1", "bottleneck")]["status"] == "skipped"
    assert "budget left" in cands[("lite1", "bottleneck")]["note"]
    assert cands[("lite0", "finetune")]["status"] == "skipped"
    lite0 = cands[("lite0", "bottleneck")]
    assert 0.0 <= lite0["cv_accuracy"] <= 1.0 and lite0["cv_images"] == card["data"]["n_train"]
    assert lite0["images_per_s"] > 0 and lite0["cost_s"] > 0
    assert auto["chosen"] == "bottleneck" and auto["backbone"] == "lite0"
    assert card["backbone"] == "lite0" and "cross-validated accuracy" in auto["why"]
    assert "training split" in auto["chosen_by"] and auto["budget_s"] == 1.0
    assert bundle.metrics["accuracy"] == auto["validation_accuracy"]
    assert card["cost"]["backbone"] == "lite0" and card["cost"]["ms_per_image"] > 0
    assert any(line.startswith("auto: skipped lite1 bottleneck") for line in reporter.lines)
    assert any(line.startswith("auto: chose") for line in reporter.lines)


def _relabelled(ds: Dataset) -> Dataset:
    """The same photos with every label swapped to another class."""
    other = {c: ds.classes[(i + 1) % len(ds.classes)] for i, c in enumerate(ds.classes)}
    return Dataset([Item(it.path, other[it.label]) for it in ds], classes=ds.classes)


def test_the_validation_split_never_enters_the_choice(small_folder):
    ds = Dataset.from_folder(small_folder)
    tr, val = ds.split(val_fraction=0.3, seed=0)
    runs = []
    for v in (val, _relabelled(val)):
        recipe = create_recipe("auto", backbones="lite0", budget="1s")
        recipe.fit(tr, v)
        runs.append(recipe.result.info["auto"])
    right, wrong = runs
    # the reported validation figures see the swapped labels...
    assert right["validation_accuracy"] > wrong["validation_accuracy"]
    # ...the search's figures and its choice do not: they come from the training split alone
    strip = ("cost_s", "images_per_s", "estimated_s")
    for a, b in zip(right["candidates"], wrong["candidates"], strict=True):
        assert {k: v for k, v in a.items() if k not in strip} == {
            k: v for k, v in b.items() if k not in strip
        }
    assert (right["chosen"], right["backbone"]) == (wrong["chosen"], wrong["backbone"])


def test_ctrl_c_mid_search_keeps_the_best_so_far_as_a_complete_bundle(small_folder, tmp_path):
    reporter = _Log(interrupt_at="auto: lite1 bottleneck")
    bundle = train(
        small_folder,
        tmp_path / "run",
        TrainConfig(recipe="auto", val_split=0.3),
        reporter=reporter,
        backbones="lite0,lite1,lite2",
        budget="10m",
    )
    auto = bundle.card["recipe_info"]["auto"]
    assert auto["interrupted"] is True and "interrupted" in auto["why"]
    assert [c["status"] for c in auto["candidates"][:3]] == ["done", "interrupted", "skipped"]
    assert auto["backbone"] == "lite0" and bundle.card["backbone"] == "lite0"
    for name in ("model.keras", "model.onnx", "labels.json", "card.json", "metrics.json"):
        assert (bundle.path / name).is_file(), name
    loaded = Bundle.load(bundle.path)
    probs = Predictor.from_bundle(loaded).predict_paths(
        sorted((small_folder / "cats").iterdir())[:2]
    )
    assert probs.probabilities.shape == (2, 2)


def test_ctrl_c_before_any_candidate_finished_stops(small_folder, tmp_path):
    reporter = _Log(interrupt_at="auto: lite0 bottleneck first")
    with pytest.raises(KeyboardInterrupt):
        train(small_folder, tmp_path / "run", TrainConfig(recipe="auto"), reporter=reporter)
    assert not (tmp_path / "run" / "model.onnx").exists()


def test_the_report_shows_the_candidates_and_their_frontier():
    from littlevision.explain.report import _auto_search, _Notes

    def cand(backbone, acc, speed):
        return {"backbone": backbone, "recipe": "bottleneck", "status": "done",
                "cv_accuracy": acc, "images_per_s": speed}  # fmt: skip

    card = {"recipe_info": {"auto": {"why": "lite2 wins", "candidates": [
        cand("lite0", 0.67, 110.0), cand("lite2", 0.76, 45.0)]}}}  # fmt: skip
    shown = _auto_search(card, _Notes(True, Reporter()))
    assert shown["why"] == "lite2 wins" and shown["frontier"].startswith("data:image/png;base64,")
    assert _auto_search({"recipe": "bottleneck"}, _Notes(True, Reporter())) is None


@pytest.mark.slow
def test_a_raised_budget_tries_fine_tuning_on_a_held_out_fold(cats_dogs_dir, tmp_path):
    import shutil

    data = shutil.copytree(cats_dogs_dir / "train", tmp_path / "pets")  # >= 24 per class
    bundle = train(
        data,
        tmp_path / "run",
        TrainConfig(recipe="auto", val_split=0.2),
        backbones="lite0",
        budget="20m",
        epochs=1,
    )
    auto = bundle.card["recipe_info"]["auto"]
    ft = next(c for c in auto["candidates"] if c["recipe"] == "finetune")
    n_train = bundle.card["data"]["n_train"]
    assert ft["status"] == "done" and ft["cv_images"] == pytest.approx(n_train / 5, abs=2)
    assert ft["image_size"] == 288 and ft["images_per_s"] < auto["candidates"][0]["images_per_s"]
    assert auto["chosen"] in ("bottleneck", "finetune") and bundle.metrics["n"] > 0
