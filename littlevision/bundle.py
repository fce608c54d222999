"""A trained run is a folder: the *bundle*.

Everything another tool needs lives in it, so a run can be copied, served, explained or
evaluated without the data or the code that made it::

    RUN/
      model.keras    the whole Keras model (preprocessing inside, softmax output)
      model.onnx     the same model for ONNX Runtime: input ``image`` uint8 [N, S, S, 3],
                     output ``probabilities`` float32 [N, C] in labels.json order
      labels.json    class names, in output order
      card.json      what the model is and how it was made (image_size, backbone, recipe, ...)
      metrics.json   validation metrics
      split.json     the files of each subset, relative to the data root
      model.int8.onnx  optional: a faster int8 copy of model.onnx, written only when it passed
                     the accuracy gate (card.json "fast_model" says how it did, or why not)
      novelty.npz    the novelty score's reference and threshold (optional; see
                     littlevision.models.novelty); model.onnx then has a second output
                     ``features``

A run that has been retrained keeps every version in ``versions/<N>/`` (the layout of TF
Serving and Triton) and ``current`` is a symbolic link to the one being served; the files above
are then links through ``current``, so every tool reads the run as before and a promotion or a
rollback switches all of them with one atomic rename (see littlevision.lifecycle).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from littlevision._io import file_sha256
from littlevision.errors import UserError

REQUIRED_FILES = ("model.onnx", "labels.json", "card.json")
FAST_MODEL_FILE = "model.int8.onnx"
PRECISIONS = ("auto", "fp32", "int8")
CURRENT_LINK = "current"
VERSIONS_DIR = "versions"


def resolve_files(path: Path) -> Path:
    """The folder a run's files are read from: the version ``current`` points to, if any.

    Resolving the link once, then reading every file from that folder, means a promotion that
    happens while a bundle is being loaded can never mix two versions' files.
    """
    link = path / CURRENT_LINK
    if link.is_symlink():
        target = link.resolve()
        if target.is_dir():
            return target
    return path


@dataclass
class Bundle:
    """A loaded run folder. Use :meth:`load`; files are read lazily where they are large."""

    path: Path
    labels: list[str]
    card: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    files: Path | None = None  # where the files are read from (a version folder, or path)
    _novelty: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Bundle:
        """Read a bundle's small files and check that it is complete.

        Raises:
            UserError: when the folder is missing or is not a littlevision run.
        """
        path = Path(path)
        if not path.is_dir():
            raise UserError(f"No such run folder: '{path}'.")
        files = resolve_files(path)
        missing = [name for name in REQUIRED_FILES if not (files / name).is_file()]
        if missing:
            raise UserError(
                f"'{path}' is not a littlevision run: missing {', '.join(missing)}. "
                "Make one with `littlevision train DATA -o RUN`."
            )
        try:
            labels = json.loads((files / "labels.json").read_text(encoding="utf-8"))
            card = json.loads((files / "card.json").read_text(encoding="utf-8"))
            metrics_file = files / "metrics.json"
            metrics = json.loads(metrics_file.read_text("utf-8")) if metrics_file.is_file() else {}
        except (OSError, ValueError) as e:
            raise UserError(f"The run folder '{path}' is damaged: {e}.") from None
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise UserError(
                f"The run folder '{path}' is damaged: labels.json is not a list of names."
            )
        if not isinstance(card, dict) or "image_size" not in card:
            raise UserError(f"The run folder '{path}' is damaged: card.json has no image_size.")
        return cls(path=path, labels=labels, card=card, metrics=metrics, files=files)

    @property
    def image_size(self) -> int:
        return int(self.card["image_size"])

    @property
    def name(self) -> str:
        return str(self.card.get("name") or self.path.resolve().name)

    @property
    def version(self) -> str:
        """A short content hash of the ONNX model: changes exactly when the model does."""
        return str(self.card.get("model_version") or file_sha256(self.onnx_path)[:12])

    @property
    def files_dir(self) -> Path:
        """The folder holding this bundle's files (its version folder in a versioned run)."""
        return self.files or self.path

    @property
    def run_version(self) -> int | None:
        """The version number (``versions/<N>``) being read, or None for an unversioned run."""
        files = self.files_dir
        if files != self.path and files.parent.name == VERSIONS_DIR and files.name.isdigit():
            return int(files.name)
        return None

    @property
    def onnx_path(self) -> Path:
        return self.files_dir / "model.onnx"

    @property
    def fast_path(self) -> Path:
        """The int8 model, present only when it passed the gate at training time."""
        return self.files_dir / FAST_MODEL_FILE

    def model_file(self, precision: str = "auto") -> tuple[Path, str]:
        """The ONNX file to run and its precision (``"int8"`` or ``"fp32"``).

        Args:
            precision: ``auto`` (the fast model when the bundle has one, else the exact one),
                ``fp32`` (always the exact ``model.onnx``) or ``int8`` (the fast one, required).

        Raises:
            UserError: for an unknown precision, or ``int8`` on a bundle without a fast model.
        """
        if precision not in PRECISIONS:
            raise UserError(
                f"Unknown precision '{precision}'. Use one of: {', '.join(PRECISIONS)}."
            )
        if precision == "fp32":
            return self.onnx_path, "fp32"
        if self.fast_path.is_file():
            return self.fast_path, "int8"
        if precision == "int8":
            why = (self.card.get("fast_model") or {}).get("reason")
            raise UserError(
                f"The run '{self.path}' has no int8 model"
                + (f": {why}." if why else " (it was trained before int8 models existed).")
                + " Use --precision auto or fp32."
            )
        return self.onnx_path, "fp32"

    @property
    def keras_path(self) -> Path:
        return self.files_dir / "model.keras"

    @property
    def novelty(self):
        """The fitted :class:`~littlevision.models.novelty.NoveltyScorer`, or None for a bundle
        made before unknown detection (it then serves without ``unknown``/``novelty``)."""
        if self._novelty is None:
            from littlevision.models.novelty import NOVELTY_FILE, NoveltyScorer

            file = self.files_dir / NOVELTY_FILE
            if not (self.card.get("novelty") and file.is_file()):
                return None
            self._novelty = NoveltyScorer.load(file)
        return self._novelty

    def load_keras(self):
        """Load the Keras model (slow: imports TensorFlow). Needed for explanations and fine-tuning."""
        from littlevision._tf import quiet_keras

        keras = quiet_keras()
        if not self.keras_path.is_file():
            raise UserError(f"The run folder '{self.path}' has no model.keras.")
        return keras.models.load_model(self.keras_path, compile=False)

    def __repr__(self) -> str:
        from littlevision._display import bundle_summary

        return f"Bundle({self.name!r}: {bundle_summary(self)})"

    def _repr_html_(self) -> str:
        """Jupyter shows the card's headline figures, the confusion matrix and the curves."""
        from littlevision._display import bundle_html

        return bundle_html(self)
