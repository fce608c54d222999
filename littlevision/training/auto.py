"""``--recipe auto``: pick scratch, bottleneck or finetune from the data, and say why.

The choice needs one cheap measurement: the bottleneck recipe (frozen features + a linear
classifier, seconds once the features are cached) is fitted first and checked on the validation
split. Its result and the size of the data then decide:

- few images per class, or a validation split too small to tell recipes apart: keep the
  bottleneck model; fine-tuning would mostly memorise the training images;
- the bottleneck model makes no validation error: nothing is left for fine-tuning to win;
- pretrained features that barely beat chance, with many images per class: the images are
  unlike photos the backbone knows, and a small network trained from scratch can learn its own
  features (the tutorial's first model);
- otherwise fine-tune, which starts from a bottleneck head (at its own input size) and keeps it
  when no epoch beats it on validation loss and accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

from littlevision.metrics import log_loss
from littlevision.progress import NULL, Reporter
from littlevision.training.base import FitResult, Recipe
from littlevision.training.registry import create_recipe, get_recipe_class, register_recipe

__all__ = ["Auto", "Choice", "choose_recipe"]

#: Below this many training images in the smallest class, fine-tuning is not tried.
MIN_PER_CLASS_FINETUNE = 20
#: Below this many validation images, the quick check cannot tell recipes apart.
MIN_VALIDATION = 20
#: From this many images per class, training from scratch is considered.
MIN_PER_CLASS_SCRATCH = 1000


@dataclass(frozen=True)
class Choice:
    """The recipe ``auto`` picked and the sentence that explains it."""

    recipe: str
    why: str


def choose_recipe(counts: dict[str, int], n_val: int, bottleneck_accuracy: float | None) -> Choice:
    """The decision rule of ``auto``, as a pure function of what it measured.

    Args:
        counts: Training images per class.
        n_val: Validation images that could be read.
        bottleneck_accuracy: The bottleneck model's validation accuracy (None: not measured).

    Returns:
        A :class:`Choice`.
    """
    smallest = min(counts.values()) if counts else 0
    n_classes = max(len(counts), 2)
    chance = 1.0 / n_classes
    if smallest < MIN_PER_CLASS_FINETUNE:
        return Choice(
            "bottleneck",
            f"the smallest class has {smallest} training images "
            f"(< {MIN_PER_CLASS_FINETUNE}): fine-tuning would memorise them, a linear "
            "classifier on frozen features is the safe choice",
        )
    if n_val < MIN_VALIDATION or bottleneck_accuracy is None:
        return Choice(
            "bottleneck",
            f"only {n_val} validation images: too few to check that "
            "fine-tuning does better, so the simplest model is kept",
        )
    pct = f"{100 * bottleneck_accuracy:.1f}%"
    if bottleneck_accuracy >= 1.0:
        return Choice(
            "bottleneck",
            f"the bottleneck model is already right on all {n_val} "
            "validation images: nothing is left for fine-tuning to win",
        )
    if bottleneck_accuracy < chance + 0.25 * (1 - chance) and smallest >= MIN_PER_CLASS_SCRATCH:
        return Choice(
            "scratch",
            f"pretrained features barely separate the classes ({pct} vs "
            f"{100 * chance:.0f}% by chance) and every class has >= {smallest} images: "
            "a network trained from scratch can learn features of its own",
        )
    return Choice(
        "finetune",
        f"the bottleneck model gets {pct} on {n_val} validation images and "
        f"every class has >= {smallest} training images: fine-tuning the backbone's top "
        "blocks (from a bottleneck head, kept if no epoch beats it) can do better",
    )


@register_recipe("auto")
class Auto(Recipe):
    """Fit the bottleneck model, then keep it or train the recipe the data calls for.

    Args:
        backbone: Backbone for the bottleneck and finetune recipes.
        image_size: Passed to the chosen recipe (its default when None).
        epochs: Passed to scratch/finetune when one of them is chosen.
        seed: Seed for every recipe.
        resume: Passed to scratch/finetune (``train --resume``).
    """

    def __init__(
        self,
        backbone: str = "lite0",
        image_size: int | None = None,
        epochs: int | None = None,
        seed: int = 0,
        resume: bool = False,
    ):
        self.backbone = backbone
        self.image_size = image_size
        self.epochs = epochs
        self.seed = seed
        self.resume = resume

    @property
    def model_backbone_(self) -> str | None:
        """The backbone inside the chosen model: none when ``scratch`` was chosen."""
        return None if getattr(self, "chosen_", None) == "scratch" else self.backbone

    def _fit(self, train, val, reporter: Reporter = NULL, output=None) -> FitResult:
        reporter.log("auto: fitting the bottleneck model first (the quick validation check)")
        quick = create_recipe("bottleneck", backbone=self.backbone, seed=self.seed)
        quick.fit(train, val, reporter=reporter, output=output)
        first = quick.result
        y = val.y[first.val_indices]
        accuracy = float((first.val_probabilities.argmax(axis=1) == y).mean()) if len(y) else None
        choice = choose_recipe(train.counts(), len(y), accuracy)
        reporter.log(f"auto: chose {choice.recipe}: {choice.why}")
        if choice.recipe == "bottleneck":
            result = first
        else:
            params = get_recipe_class(choice.recipe).settings(
                seed=self.seed,
                resume=self.resume,
                backbone=self.backbone,
                image_size=self.image_size or None,
                epochs=self.epochs or None,
            )
            chosen = create_recipe(choice.recipe, **params)
            chosen.fit(train, val, reporter=reporter, output=output)
            result = chosen.result
            result.timings = {
                **{f"bottleneck_{k}": v for k, v in first.timings.items()},
                **result.timings,
            }
        self.chosen_ = choice.recipe
        result.info = {
            **result.info,
            "auto": {
                "chosen": choice.recipe,
                "why": choice.why,
                "bottleneck_accuracy": accuracy,
                "bottleneck_log_loss": log_loss(y, first.val_probabilities),
                "counts_train": train.counts(),
                "n_val": int(len(y)),
            },
        }
        return result
