"""``retrain``, ``versions``, ``rollback``: a run that learns from its corrections, safely.

:func:`retrain` trains a candidate on the run's own training data (its source and split are in
``split.json``) plus the labelled feedback, with the same recipe and seed, scores it against the
served version with the gate (:mod:`littlevision.lifecycle.gate`), keeps it as a new version
either way, and promotes it only when the gate passes (or ``force``). A running service's
watcher sees ``current`` change and swaps the model in without failing a request.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from littlevision._io import write_json
from littlevision.bundle import Bundle
from littlevision.errors import UserError
from littlevision.lifecycle.gate import GateRule, Scorer, decide, evaluate_pair
from littlevision.lifecycle.layout import (
    append_history,
    clean_staging,
    current_version,
    ensure_versioned,
    lifecycle_lock,
    publish,
    read_history,
    read_version,
    staging_dir,
    switch_to,
    version_dir,
    version_numbers,
    write_version,
)
from littlevision.progress import NULL, Reporter

FEEDBACK_DIR = "feedback"
#: One feedback image in this many is held out for the gate (chosen by its content hash, so
#: the choice never changes and a held-out image is never trained on).
HOLDOUT_EVERY = 5


@dataclass(frozen=True)
class RetrainResult:
    """What :func:`retrain` did: the new version, the gate's figures and its decision."""

    run: Path
    version: int
    previous: int
    promoted: bool
    forced: bool
    reasons: list[str]
    rule: str
    gate: dict[str, Any]
    data: dict[str, Any]
    metrics: dict[str, Any]
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "run": str(self.run)}


@dataclass(frozen=True)
class VersionInfo:
    """One version of a run, as ``versions`` lists it."""

    version: int
    status: str  # serving, promoted (served before), rejected, candidate
    created: str | None
    model_version: str | None
    metrics: dict[str, Any] | None
    data: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None
    forced: bool = False
    reasons: list[str] = field(default_factory=list)
    path: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "path": str(self.path) if self.path else None}


@dataclass(frozen=True)
class RollbackResult:
    """What :func:`rollback` did."""

    run: Path
    version: int
    previous: int
    model_version: str | None

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "run": str(self.run)}


# -- feedback -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Feedback:
    path: Path
    label: str
    sha256: str

    @property
    def held_out(self) -> bool:
        return int(self.sha256[:8], 16) % HOLDOUT_EVERY == 0


def _file_digest(path: Path) -> str:
    stem = path.stem
    if len(stem) == 64 and all(c in "0123456789abcdef" for c in stem):
        return stem  # /v1/feedback names files by their sha256
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_feedback(run: Path) -> list[_Feedback]:
    """Every labelled image under ``run/feedback/<label>/`` (hidden and temporary files skipped)."""
    root = Path(run) / FEEDBACK_DIR
    if not root.is_dir():
        return []
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(folder.iterdir()):
            if f.is_file() and not f.name.startswith(".") and not f.name.endswith(".tmp"):
                out.append(_Feedback(f, folder.name, _file_digest(f)))
    return out


# -- retrain --------------------------------------------------------------------------------


def _frozen_backbone(bundle: Bundle) -> str | None:
    """The backbone name when the model's features are the frozen backbone's (bottleneck)."""
    card = bundle.card
    recipe = card.get("recipe")
    chosen = (card.get("recipe_info") or {}).get("chosen")
    if recipe == "bottleneck" or (recipe == "auto" and chosen == "bottleneck"):
        return card.get("backbone") or (card.get("recipe_params") or {}).get("backbone")
    return None


def _source_dataset(bundle: Bundle, data: str | os.PathLike | None):
    from littlevision.data.dataset import Dataset

    split_file = bundle.files_dir / "split.json"
    if not split_file.is_file():
        raise UserError(f"'{bundle.path}' has no split.json: it cannot be retrained.")
    import json

    split = json.loads(split_file.read_text(encoding="utf-8"))
    root = data if data is not None else split.get("root")
    if not root or not Path(root).is_dir():
        raise UserError(
            f"The run's training data is not at '{root}' (where its split.json says it was); "
            "pass --data FOLDER to say where it is now."
        )
    dataset = Dataset.from_split_record(split, root)
    missing = dataset.load_report.missing_rows if dataset.load_report else []
    if len(dataset) == 0:
        raise UserError(f"None of the run's training images are in '{root}'; pass --data FOLDER.")
    return split, dataset, list(missing)


def retrain(
    run: str | os.PathLike,
    data: str | os.PathLike | None = None,
    *,
    allow_new_classes: bool = False,
    force: bool = False,
    rule: GateRule | None = None,
    reporter: Reporter | None = None,
) -> RetrainResult:
    """Train a candidate on the run's data plus its feedback; promote it if the gate passes.

    Args:
        run: The run folder (a plain run becomes version 1 of a versioned one first).
        data: Where the run's training data is now (default: the root in its split.json).
        allow_new_classes: Accept feedback whose label the model does not know (adds a class).
        force: Promote even when the gate says no (recorded in version.json and history).
        rule: The gate's rule (default :class:`GateRule` ()).
        reporter: Receives progress.

    Returns:
        A :class:`RetrainResult` with the new version's number, the gate figures and decision.

    Raises:
        UserError: no feedback, feedback for unknown labels, the data is missing, another
            retrain holds the run, or the candidate does not load (it is then never promoted).
    """
    from littlevision.data.dataset import Dataset, Item
    from littlevision.training.registry import create_recipe
    from littlevision.training.run import TrainConfig, write_bundle

    started = time.perf_counter()
    reporter = reporter or NULL
    rule = rule or GateRule()
    run = Path(run)
    Bundle.load(run)  # a clear error for a folder that is not a run
    with lifecycle_lock(run):
        feedback = read_feedback(run)
        if not feedback:
            raise UserError(
                f"No feedback in '{run / FEEDBACK_DIR}': send corrections to /v1/feedback "
                "(or the web page) first; there is nothing new to learn from."
            )
        labels = list(Bundle.load(run).labels)
        new = sorted({f.label for f in feedback} - set(labels))
        if new and not allow_new_classes:
            counts = {c: sum(f.label == c for f in feedback) for c in new}
            listed = ", ".join(f"'{c}' ({n} images)" for c, n in counts.items())
            raise UserError(
                f"Feedback names label(s) the model does not know: {listed}. Retrain with "
                "--allow-new-classes to add them, or move those folders out of "
                f"'{run / FEEDBACK_DIR}'."
            )
        classes = labels + new
        split, source, missing = _source_dataset(Bundle.load(run), data)
        previous = ensure_versioned(run)  # checks first: a refused retrain changes nothing
        clean_staging(run)
        current = Bundle.load(run)
        train_items = [Item(it.path, it.label, "train") for it in source.where(subset="train")]
        val_items = [
            Item(it.path, it.label, "validation") for it in source.where(subset="validation")
        ]
        fb_train = [f for f in feedback if not f.held_out]
        fb_held = [f for f in feedback if f.held_out]
        train_ds = Dataset(
            train_items + [Item(f.path, f.label, "train") for f in fb_train], classes=classes
        )
        val_ds = Dataset(val_items, classes=classes)
        card = current.card
        params = dict(card.get("recipe_params") or {})
        params.pop("resume", None)
        recipe = create_recipe(card["recipe"], **params)
        number = max(version_numbers(run) + [previous]) + 1
        staging = staging_dir(run, number)
        try:
            recipe.fit(train_ds, val_ds, reporter=reporter, output=staging)
            novelty = card.get("novelty") or {}
            config = TrainConfig(
                recipe=card["recipe"],
                val_split=float(card.get("val_split") or 0.2),
                seed=int(card.get("seed") or 0),
                backbone=str(card.get("backbone") or "lite0"),
                unknown_rate=float(novelty.get("target_rate") or 0.05),
            )
            with reporter.stage("write candidate"):
                write_bundle(staging, recipe, train_ds, val_ds, config, reporter=reporter)
            write_json(staging / "split.json", split)  # the source data stays the run's own
            cand_card = _candidate_card(staging, current, number, previous, fb_train, fb_held)
            candidate = Bundle.load(staging)
            with reporter.stage("gate"):
                frozen_backbone = _frozen_backbone(current)
                cur_scorer = Scorer(current, frozen_backbone)
                cand_scorer = Scorer(candidate, _frozen_backbone(candidate))
                index = {c: i for i, c in enumerate(classes)}
                frozen = evaluate_pair(
                    cur_scorer,
                    cand_scorer,
                    [it.path for it in val_items],
                    np.array([index[it.label] for it in val_items], np.int64),
                )
                held = evaluate_pair(
                    cur_scorer,
                    cand_scorer,
                    [f.path for f in fb_held],
                    np.array([index[f.label] for f in fb_held], np.int64),
                )
                passed, reasons = decide(frozen, held, rule)
            data_record = {
                "source": str(source.root),
                "n_source_train": len(train_items),
                "n_source_validation": len(val_items),
                "n_source_missing": len(missing),
                "n_feedback_train": len(fb_train),
                "n_feedback_held_out": len(fb_held),
                "feedback_train_sha256": sorted(f.sha256 for f in fb_train),
                "new_classes": new,
                "classes": classes,
            }
            gate = {
                "rule": rule.describe(),
                "frozen_validation": frozen,
                "held_out_feedback": held,
                "passed": passed,
            }
            promote = passed or force
            record = {
                "version": number,
                "parent": previous,
                "created": cand_card["created"],
                "origin": "retrain",
                "status": "candidate",
                "forced": bool(force and not passed),
                "model_version": cand_card["model_version"],
                "metrics": cand_card["metrics"],
                "data": data_record,
                "gate": gate,
                "reasons": reasons,
            }
            write_version(staging, {**record, "status": "promoted" if promote else "rejected"})
            if promote:
                _check_loads(staging)  # a candidate that does not answer is never promoted
            publish(staging, run, number)
        except OSError as e:  # a full disk, a vanished file: the served version is untouched
            shutil.rmtree(staging, ignore_errors=True)
            raise UserError(
                f"The retrain stopped: {e.strerror or e} ({e.filename or 'writing the candidate'}); "
                f"version {previous} is still served and nothing else changed."
            ) from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if promote:
            switch_to(run, number)
            append_history(
                run,
                {
                    "event": "promote",
                    "version": number,
                    "from": previous,
                    "forced": bool(force and not passed),
                },
            )
    return RetrainResult(
        run=run,
        version=number,
        previous=previous,
        promoted=promote,
        forced=bool(force and not passed),
        reasons=reasons,
        rule=rule.describe(),
        gate=gate,
        data={k: v for k, v in data_record.items() if k != "feedback_train_sha256"},
        metrics=cand_card["metrics"],
        seconds=round(time.perf_counter() - started, 3),
    )


def _candidate_card(staging: Path, current: Bundle, number: int, previous: int, fb_train, fb_held):
    """The candidate's card, named after the run (not its staging folder), with its lineage."""
    import json

    card = json.loads((staging / "card.json").read_text(encoding="utf-8"))
    card["name"] = current.name
    card["lifecycle"] = {
        "version": number,
        "parent": previous,
        "feedback_train": len(fb_train),
        "feedback_held_out": len(fb_held),
    }
    card["data"]["source"] = current.card.get("data", {}).get("source", card["data"]["source"])
    write_json(staging / "card.json", card)
    from littlevision.model_card import write_model_card

    write_model_card(staging)  # README.md again, now with the run's name
    return card


def _check_loads(folder: Path) -> None:
    """Load the version and run its warm-up checks (probabilities per label, novelty)."""
    from littlevision.serving.model_store import load_model

    try:
        # Every model file the version holds: model.onnx, and model.int8.onnx when training
        # kept one (the default precision serves it, --precision fp32 the exact one).
        load_model(folder, threads=1, warm_batch=1, precision="fp32")
        load_model(folder, threads=1, warm_batch=1)
    except UserError as e:
        raise UserError(f"The candidate was not promoted: it does not load ({e}).") from None


# -- versions, rollback, prune ----------------------------------------------------------------


def versions(run: str | os.PathLike, prune: int | None = None) -> list[VersionInfo]:
    """Every version of a run, oldest first; ``prune=KEEP`` first deletes all but the ``KEEP``
    newest versions (the served one is always kept).

    A run that was never retrained is listed as one version (its folder is not changed).
    """
    run = Path(run)
    bundle = Bundle.load(run)
    if prune is not None:
        if prune < 1:
            raise UserError(f"Expected --prune KEEP >= 1. Received: {prune}.")
        with lifecycle_lock(run):
            serving = current_version(run)
            numbers = version_numbers(run)
            keep = set(numbers[-prune:]) | {serving}
            for n in numbers:
                if n not in keep:
                    shutil.rmtree(version_dir(run, n))
            if len(numbers) > len(keep):
                append_history(run, {"event": "prune", "kept": sorted(k for k in keep if k)})
    serving = current_version(run)
    if serving is None:
        card = bundle.card
        return [
            VersionInfo(
                version=1,
                status="serving",
                created=card.get("created"),
                model_version=bundle.version,
                metrics=card.get("metrics"),
                path=run,
            )
        ]
    served_before = {e.get("version") for e in read_history(run) if e.get("event") == "promote"}
    out = []
    for n in version_numbers(run):
        rec = read_version(run, n)
        status = rec.get("status", "candidate")
        if n == serving:
            status = "serving"
        elif status == "promoted" or n in served_before or n == 1:
            status = "promoted"
        out.append(
            VersionInfo(
                version=n,
                status=status,
                created=rec.get("created"),
                model_version=rec.get("model_version"),
                metrics=rec.get("metrics"),
                data={k: v for k, v in (rec.get("data") or {}).items() if "sha256" not in k},
                gate=rec.get("gate"),
                forced=bool(rec.get("forced")),
                reasons=list(rec.get("reasons") or []),
                path=version_dir(run, n),
            )
        )
    return out


def rollback(run: str | os.PathLike, to: int | None = None) -> RollbackResult:
    """Serve the previous version again (the one promoted before the current), or version ``to``.

    The version's files were never changed, so the model served is byte for byte the one that
    was served before. A rejected version can be served this way too (it is loaded and checked
    first).

    Raises:
        UserError: no earlier version, no such version, or it does not load.
    """
    run = Path(run)
    Bundle.load(run)
    with lifecycle_lock(run):
        serving = current_version(run)
        if serving is None:
            raise UserError(
                f"'{run}' has no earlier version to roll back to: it was never retrained."
            )
        if to is None:
            earlier = [
                n
                for n in version_numbers(run)
                if n < serving and read_version(run, n).get("status") == "promoted"
            ]
            if not earlier:
                raise UserError(f"'{run}' has no version before {serving} that was served.")
            to = earlier[-1]
        if to == serving:
            raise UserError(f"Version {to} of '{run}' is already being served.")
        if to not in version_numbers(run):
            raise UserError(
                f"'{run}' has no version {to}; it has {', '.join(map(str, version_numbers(run)))}."
            )
        _check_loads(version_dir(run, to))
        switch_to(run, to)
        append_history(run, {"event": "rollback", "version": to, "from": serving})
    rec = read_version(run, to)
    return RollbackResult(
        run=run, version=to, previous=serving, model_version=rec.get("model_version")
    )
