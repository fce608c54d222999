"""``train``: from a Dataset to a bundle folder, whatever the recipe."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from littlevision._io import file_sha256, write_json
from littlevision.bundle import Bundle
from littlevision.errors import UserError
from littlevision.metrics import classification_metrics
from littlevision.model_card import weights_source, write_model_card
from littlevision.progress import NULL, Reporter, default_reporter
from littlevision.training.base import Recipe
from littlevision.training.registry import create_recipe, get_recipe_class


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``littlevision train`` takes besides the data; stored in card.json."""

    recipe: str = "bottleneck"
    val_split: float = 0.2
    seed: int = 0
    image_size: int | None = None
    backbone: str = "lite0"
    unknown_rate: float = 0.05  # share of validation images the novelty threshold flags
    # auto: also write model.int8.onnx when it passes the accuracy gate on this CPU; fp32: only
    # the exact model (and the bottleneck recipe embeds with the exact backbone).
    precision: str = "auto"


def versions() -> dict[str, str]:
    """Versions of what made the model, so a card says how to reproduce it."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in (
        "littlevision",
        "keras",
        "tensorflow-cpu",
        "tensorflow",
        "onnxruntime",
        "onnx",
        "scikit-learn",
        "numpy",
        "pillow",
    ):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _skipped_records(failures, root: Path | None) -> list[dict[str, str]]:
    out = []
    for f in failures:
        path = Path(getattr(f, "path", "") or "")
        try:
            shown = str(path.relative_to(root)) if root else str(path)
        except ValueError:
            shown = str(path)
        out.append({"path": shown, "reason": getattr(f, "reason", "unreadable"), "message": str(f)})
    return out


def data_summary(train, val, skipped, dataset=None) -> dict[str, Any]:
    source = dataset if dataset is not None else train
    report = getattr(source, "load_report", None)
    summary = {
        "source": str(getattr(source, "source", None) or getattr(source, "root", "") or ""),
        "classes": list(train.classes),
        "n_train": len(train),
        "n_val": len(val),
        "counts_train": train.counts(),
        "counts_val": val.counts(),
        "skipped": skipped,
    }
    if report is not None and hasattr(report, "summary"):
        summary["load_report"] = report.summary()
    return summary


def write_bundle(
    output: Path,
    recipe: Recipe,
    train,
    val,
    config: TrainConfig,
    dataset=None,
    started: float | None = None,
    reporter: Reporter = NULL,
) -> Bundle:
    """Write the run folder for a fitted recipe (see :mod:`littlevision.bundle`)."""
    from littlevision.models.cost import model_cost
    from littlevision.models.onnx_export import export_onnx

    result = recipe.result
    output.mkdir(parents=True, exist_ok=True)
    result.model.save(output / "model.keras")
    classes = recipe.classes_
    export_onnx(
        result.model,
        output / "model.onnx",
        result.image_size,
        features_output="features",
        metadata=onnx_metadata(classes, result.image_size),
    )
    write_json(output / "labels.json", classes)
    y_val = val.y[result.val_indices]
    metrics = classification_metrics(y_val, result.val_probabilities, classes)
    metrics["subset"] = "validation"
    write_json(output / "metrics.json", metrics)
    fast_model = write_fast_model(output, result, train, val, config)
    root = getattr(dataset if dataset is not None else train, "root", None)
    write_json(output / "split.json", _split_record(train, val, root))
    if result.history:
        write_json(output / "history.json", result.history)
    skipped = _skipped_records(result.skipped, Path(root) if root else None)
    from littlevision.training.novelty import fit_novelty

    scorer = fit_novelty(
        output,
        recipe.model_backbone_,
        result.image_size,
        train,
        val,
        config.unknown_rate,
        config.seed,
        reporter,
    )
    card = {
        "name": output.resolve().name,
        "model_version": file_sha256(output / "model.onnx")[:12],
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "image_size": result.image_size,
        "backbone": recipe.model_backbone_,
        "weights": weights_source(recipe.model_backbone_),
        "recipe": recipe.name,
        "recipe_params": recipe.get_params(),
        "seed": config.seed,
        "val_split": config.val_split,
        "labels": classes,
        "data": data_summary(train, val, skipped, dataset),
        "metrics": {k: metrics[k] for k in ("accuracy", "log_loss", "n")},
        "recipe_info": result.info,
        "timings": {k: round(v, 3) for k, v in result.timings.items()},
        "cost": model_cost(
            result.model,
            output / "model.onnx",
            result.image_size,
            recipe.model_backbone_,
        ),
        "onnx": {
            "input": "image",
            "dtype": "uint8",
            "shape": ["N", result.image_size, result.image_size, 3],
            "output": "probabilities",
            "features_output": "features",
            "normalisation": "inside the graph",
        },
        "novelty": scorer.card(),
        "fast_model": fast_model,
        "versions": versions(),
    }
    if started is not None:
        card["timings"]["total_s"] = round(time.perf_counter() - started, 3)
    write_json(output / "card.json", card)
    write_model_card(output)
    return Bundle.load(output)


def onnx_metadata(classes: list[str], image_size: int) -> dict[str, str]:
    """What a bare ``model.onnx`` says about itself (its ``metadata_props``)."""
    import json

    from littlevision import __version__

    return {
        "labels": json.dumps(list(classes), ensure_ascii=False),
        "image_size": str(int(image_size)),
        "littlevision_version": __version__,
        "input": "image: uint8 [N, S, S, 3], RGB, the whole image resized to S x S",
        "output": "probabilities: float32 [N, C], in the order of labels",
    }


def write_fast_model(output: Path, result, train, val, config: TrainConfig) -> dict[str, Any]:
    """Write ``model.int8.onnx`` when it passes the gate; return what card.json records.

    The candidate is the recipe's own int8 model when it made one (bottleneck: the int8
    backbone that embedded the images + the fitted head, whose validation probabilities are
    already known), else model.onnx quantised with 64 training images as calibration and run
    once over the validation images. Either way it is compared with the exact model's validation
    probabilities (:func:`littlevision.models.quantize.compare`). A stale int8 model from an
    earlier run in the same folder is removed first, so a bundle never pairs a new model.onnx
    with an old fast one.
    """
    from littlevision.models import quantize as q

    (output / q.FAST_MODEL).unlink(missing_ok=True)
    if config.precision == "fp32":
        return {"written": False, "reason": "trained with --precision fp32"}
    if not q.int8_supported():
        gate = q.GateResult(
            "int8",
            False,
            "this CPU has no int8 dot-product instructions (VNNI/AMX): "
            "int8 would be slower than fp32",
            cpu_int8=False,
        )
        return {"written": False, **gate.to_dict()}
    val_paths = [val.paths[i] for i in result.val_indices]
    y_val = val.y[result.val_indices]
    candidate = output / f".{q.FAST_MODEL}.candidate"
    try:
        try:
            fast_probs = _fast_candidate(candidate, output / "model.onnx", result, train, val_paths)
        except Exception as e:  # onnxruntime.quantization raises its own untyped errors
            # The fast model is optional: a quantiser that cannot handle this graph costs the
            # run its int8 copy, never the trained model (the card says why).
            return {"written": False, "reason": f"int8 quantisation failed: {str(e)[:200]}"}
        speedup = _speedup(output / "model.onnx", candidate, val_paths, result.image_size)
        gate = q.compare(result.val_probabilities, fast_probs, y_val, speedup=speedup)
        return finish_gate(output, candidate, gate)
    finally:
        candidate.unlink(missing_ok=True)


def finish_gate(output: Path, candidate: Path, gate) -> dict[str, Any]:
    """Keep ``candidate`` as ``model.int8.onnx`` when ``gate`` passed; the card's record."""
    from littlevision.models import quantize as q

    record: dict[str, Any] = {"written": bool(gate.passed), **gate.to_dict()}
    if gate.passed:
        os.replace(candidate, output / q.FAST_MODEL)
        record["file"] = q.FAST_MODEL
        record["sha256"] = file_sha256(output / q.FAST_MODEL)[:12]
    else:
        candidate.unlink(missing_ok=True)
        (output / q.FAST_MODEL).unlink(missing_ok=True)
    return record


def _fast_candidate(candidate: Path, fp32: Path, result, train, val_paths) -> np.ndarray:
    """Write the int8 candidate and return its validation probabilities."""
    from littlevision.models import quantize as q

    if result.fast is not None:
        f = result.fast
        q.append_head(f["features_onnx"], f["kernel"], f["bias"], candidate)
        return f["val_probabilities"]
    from littlevision.data.decode import decode_many
    from littlevision.features import content_hash
    from littlevision.inference import OnnxModel

    chosen = sorted(train.paths, key=lambda p: content_hash(p))[: 2 * q.CALIBRATION_IMAGES]
    calibration = decode_many(chosen, result.image_size).images[: q.CALIBRATION_IMAGES]
    q.quantize_static_int8(fp32, candidate, calibration)
    model = OnnxModel(candidate)
    probs = [out for _, out in model.map_paths(val_paths, result.image_size) if out is not None]
    return np.concatenate(probs)


def _speedup(fp32: Path, candidate: Path, val_paths, size: int) -> float:
    """fp32 time / int8 time on 8 validation images (recorded in the card, not gated on)."""
    from littlevision.data.decode import decode_many
    from littlevision.inference import make_session
    from littlevision.models.quantize import measure_speedup

    images = decode_many(val_paths[:8], size).images
    if not len(images):
        return 0.0
    a, b = make_session(fp32), make_session(candidate)
    return measure_speedup(
        lambda x: a.run(None, {"image": x}), lambda x: b.run(None, {"image": x}), images
    )


def _split_record(train, val, root) -> dict[str, Any]:
    """``split.json``: the files of each subset relative to ``root`` (see Dataset.split_record)."""
    try:
        record = (train + val).split_record()
    except ValueError:  # no common root (a hand-made Dataset): keep absolute paths
        record = {"subsets": {"train": {}, "validation": {}}}
        for subset, ds in (("train", train), ("validation", val)):
            for it in ds:
                record["subsets"][subset].setdefault(it.label, []).append(str(it.path))
    record["root"] = str(Path(root).resolve()) if root else None
    return record


def check_class_names(classes) -> None:
    """Refuse class names holding control characters (CR, LF, tab, NUL...).

    A class name travels into HTTP headers, CSV rows, HTML and file names; one with a line
    break would break a header (the service could not answer) or a downstream CSV parser.
    Every writer encodes names anyway, but a model should not be built on such names.

    Raises:
        UserError: naming the first such class, with its control characters shown.
    """
    for name in classes:
        if any(not (ch.isprintable() or ch == " ") for ch in name):
            raise UserError(
                f"Expected class names of printable characters. Received: {name!r} "
                "(it holds control characters such as a line break): rename that folder or label."
            )


def train(
    data,
    output: str | os.PathLike,
    config: TrainConfig | None = None,
    reporter: Reporter | None = None,
    **recipe_params,
) -> Bundle:
    """Train a classifier on ``data`` and write its bundle to ``output``.

    Args:
        data: A Dataset, or a folder / CSV path (see :func:`littlevision.data.source.open_dataset`).
        output: The run folder to write.
        config: Recipe name, validation split, seed, image size, backbone.
        reporter: Receives progress (bars in a notebook, silent elsewhere, by default).
        **recipe_params: Extra settings for the recipe (e.g. ``epochs`` for ``scratch``).

    Returns:
        The written :class:`~littlevision.bundle.Bundle`.
    """
    started = time.perf_counter()
    reporter = reporter or default_reporter()
    config = config or TrainConfig()
    from littlevision._paths import check_output_dir

    check_output_dir(output, "output")  # before any work: a wrong path is not found at the end
    if not 0.0 < config.val_split < 1.0:
        raise UserError(f"--val-split must be between 0 and 1. Received: {config.val_split}.")
    if not 0.0 < config.unknown_rate < 1.0:
        raise UserError(f"--unknown-rate must be between 0 and 1. Received: {config.unknown_rate}.")
    if not isinstance(data, (str, os.PathLike)):
        dataset = data
    else:
        from littlevision.data.source import open_dataset

        dataset = open_dataset(data)
    if len(dataset) == 0:
        raise UserError(f"No images found in '{getattr(dataset, 'root', data)}'.")
    check_class_names(dataset.classes)
    train_ds, val_ds = dataset.split(val_fraction=config.val_split, seed=config.seed)
    if len(val_ds) == 0:
        raise UserError("The validation split is empty: add images or raise --val-split.")
    if config.precision not in ("auto", "fp32"):
        raise UserError(f"--precision must be auto or fp32. Received: {config.precision}.")
    exact = {"embed_precision": "fp32", "fast_model": False} if config.precision == "fp32" else {}
    shared = get_recipe_class(config.recipe).settings(
        backbone=config.backbone, image_size=config.image_size or None, **exact
    )
    recipe = create_recipe(config.recipe, **{"seed": config.seed, **shared, **recipe_params})
    output = Path(output)
    recipe.fit(train_ds, val_ds, reporter=reporter, output=output)
    with reporter.stage("write bundle"):
        return write_bundle(
            output, recipe, train_ds, val_ds, config, dataset, started, reporter=reporter
        )


def evaluate(
    run,
    data,
    reporter: Reporter | None = None,
    batch_size: int = 8,
    precision: str = "auto",
) -> dict[str, Any]:
    """Metrics of a bundle on labelled data (class folders or CSV), predicting with ONNX Runtime.

    Images whose label is not one of the bundle's classes are counted in ``unknown_labels``.
    ``precision``: ``auto`` uses the bundle's int8 model when it has one, ``fp32`` the exact
    one; ``metrics["precision"]`` says which answered.
    """
    from littlevision.inference import Predictor

    reporter = reporter or default_reporter()
    bundle = run if isinstance(run, Bundle) else Bundle.load(run)
    if isinstance(data, (str, os.PathLike)):
        from littlevision.data.source import open_dataset

        data = open_dataset(data)
    index = {c: i for i, c in enumerate(bundle.labels)}
    known = [i for i, it in enumerate(data) if it.label in index]
    unknown = sorted({it.label for it in data if it.label not in index and it.label is not None})
    subset = data[known]
    predictor = Predictor.from_bundle(bundle, precision=precision)
    with reporter.stage("predict", total=len(subset)) as st:
        preds = predictor.predict_paths(subset.paths, batch_size=batch_size, progress=st.advance)
    pos = {Path(p): i for i, p in enumerate(subset.paths)}
    y = np.array([index[subset[pos[Path(p)]].label] for p in preds.paths], dtype=np.int64)
    metrics = classification_metrics(y, preds.probabilities, bundle.labels)
    metrics["skipped"] = _skipped_records(preds.failures, getattr(data, "root", None))
    metrics["unknown_labels"] = unknown
    metrics["n_unknown_label"] = len(data) - len(known)
    metrics["precision"] = predictor.precision
    metrics["model_file"] = predictor.onnx_path.name
    return metrics
