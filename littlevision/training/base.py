"""What every recipe shares: the estimator contract and the checks on the data it is given."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from littlevision.errors import NotFittedError, UserError
from littlevision.progress import NULL, Reporter


@dataclass
class FitResult:
    """What a fitted recipe hands to the bundle writer."""

    model: Any  # keras.Model: float RGB 0..255 [N, S, S, 3] -> probabilities [N, C]
    image_size: int
    val_probabilities: np.ndarray  # [N_val_ok, C]
    val_indices: np.ndarray  # indices into the validation Dataset of the rows above
    skipped: list = field(default_factory=list)  # DecodeError for files that could not be used
    history: dict[str, list[float]] = field(default_factory=dict)  # per-epoch curves
    timings: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # recipe-specific facts for the card
    # A fast (int8) model the recipe made on the way, with its validation probabilities:
    # {"features_onnx": Path, "kernel": [D, C], "bias": [C], "val_probabilities": [N_val_ok, C]}.
    # None: ``train`` quantises model.onnx itself (see littlevision.training.run).
    fast: dict[str, Any] | None = None


class Recipe:
    """Base class: configure in ``__init__``, learn in ``fit``; learned state ends in ``_``.

    Subclasses implement :meth:`_fit` and set ``name`` through ``@register_recipe``.
    """

    name = "recipe"
    backbone: str | None = None

    @classmethod
    def param_names(cls) -> frozenset[str]:
        """The settings this recipe takes: the keyword arguments of its ``__init__``.

        Callers that pass shared settings (``backbone``, ``epochs``, ``image_size``) to whichever
        recipe was named ask this instead of knowing each recipe.
        """
        import inspect

        params = inspect.signature(cls.__init__).parameters
        return frozenset(p for p in params if p != "self")

    @classmethod
    def settings(cls, **shared: Any) -> dict[str, Any]:
        """The items of ``shared`` this recipe takes (None values left out: the recipe's
        default applies)."""
        names = cls.param_names()
        return {k: v for k, v in shared.items() if k in names and v is not None}

    def get_params(self) -> dict[str, Any]:
        return {
            k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")
        }

    @property
    def model_backbone_(self) -> str | None:
        """The pretrained backbone inside the fitted model (None when trained from scratch)."""
        return self.backbone

    def fit(self, train, val, reporter: Reporter = NULL, output=None) -> Recipe:
        """Learn from ``train``, measure on ``val``; sets ``result_`` and ``classes_``.

        Args:
            train: The training Dataset.
            val: The validation Dataset (same classes).
            reporter: Receives progress.
            output: The run folder, for recipes that checkpoint while they train.

        Returns:
            self.
        """
        check_trainable(train, val)
        self.classes_ = list(train.classes)
        self.result_ = self._fit(train, val, reporter, output)
        return self

    def _fit(self, train, val, reporter: Reporter, output) -> FitResult:
        raise NotImplementedError

    @property
    def result(self) -> FitResult:
        if not hasattr(self, "result_"):
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet: call fit first.")
        return self.result_


def check_trainable(train, val) -> None:
    """Refuse data no classifier can learn from, with a sentence that says what to do."""
    counts = train.counts()
    if len(counts) < 2:
        found = f"only '{next(iter(counts))}'" if counts else "none"
        raise UserError(
            f"Training needs at least 2 classes (one subfolder per class); found {found}."
        )
    empty = [c for c, n in counts.items() if n == 0]
    if empty:
        raise UserError(
            f"Class '{empty[0]}' has no training images"
            + (f" (nor {len(empty) - 1} other classes)" if len(empty) > 1 else "")
            + ": add images or remove the class folder."
        )
    if list(val.classes) != list(train.classes):
        raise UserError(
            "The validation set's classes differ from the training set's: "
            f"{list(val.classes)} vs {list(train.classes)}."
        )


def class_weights(y: np.ndarray, n_classes: int, threshold: float = 1.5) -> dict[int, float] | None:
    """Balanced class weights when the largest class outnumbers the smallest by ``threshold``.

    Weights are ``n / (n_classes * count)`` (scikit-learn's 'balanced'), so they average 1.
    """
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes)
    present = counts[counts > 0]
    if len(present) == 0 or present.max() / present.min() < threshold:
        return None
    n = counts.sum()
    return {i: float(n / (n_classes * counts[i])) if counts[i] else 0.0 for i in range(n_classes)}
