"""Rich display in Jupyter: every object a notebook user holds shows itself as valid,
self-contained HTML (and a PNG where a picture is the answer), on tiny real cases."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from littlevision.bundle import Bundle
from littlevision.data.dataset import Dataset

_VOID = {"img", "br", "hr", "meta", "input", "col", "source", "wbr"}


class _Checker(HTMLParser):
    """Balanced tags, and every URL in the markup is a data: URI (nothing fetched)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.images: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href", "srcset", "action", "poster") and value is not None:
                if not value.startswith(("data:", "#")):
                    self.errors.append(f"<{tag} {name}={value[:60]!r}> points outside the page")
                if tag == "img" and name == "src":
                    self.images.append(value)
            if name == "style" and value and "url(" in value and "url(data:" not in value:
                self.errors.append(f"<{tag} style> loads a URL")
        if tag == "script":
            self.errors.append("a <script>: display HTML must not need one")
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in _VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else 'nothing'}>")
            return
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def check_html(html: str) -> _Checker:
    """Parse ``html``; fail unless it is balanced and self-contained. Returns the parse."""
    assert isinstance(html, str) and html.strip(), "empty HTML"
    checker = _Checker()
    checker.feed(html)
    checker.close()
    assert not checker.errors, checker.errors
    assert not checker.stack, f"unclosed tags: {checker.stack}"
    assert not re.search(r"https?://", html), "an external URL in display HTML"
    for uri in checker.images:  # every inlined picture decodes
        from PIL import Image

        header, _, data = uri.partition(",")
        assert header.endswith(";base64"), header
        Image.open(io.BytesIO(base64.b64decode(data))).verify()
    return checker


def check_png(data: bytes) -> tuple[int, int]:
    from PIL import Image

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.size


def test_dataset_shows_counts_per_class_and_thumbnails(small_folder):
    ds = Dataset.from_folder(small_folder)
    page = check_html(ds._repr_html_())
    text = " ".join(page.text)
    assert "40 images" in text
    assert re.search(r"cats\s*20", text) and re.search(r"dogs\s*20", text)
    assert len(page.images) == 8  # four of each class
    assert repr(ds).startswith("Dataset(40 images") and len(repr(ds)) < 200


def test_dataset_subsets_get_their_columns_and_a_broken_file_a_placeholder(small_folder, tmp_path):
    train, val = Dataset.from_folder(small_folder).split(0.25, seed=0)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    from littlevision.data.dataset import Item

    ds = Dataset([Item(broken, "cats", "train"), *(train + val)], ["cats", "dogs"])
    page = check_html(ds._repr_html_())
    text = " ".join(page.text)
    assert "train" in text and "validation" in text
    assert "cannot be read" in text  # the first cat is the broken file
    assert len(page.images) == 7


def test_bundle_shows_the_card_figures_and_the_confusion_matrix(tiny_run):
    bundle = Bundle.load(tiny_run)
    page = check_html(bundle._repr_html_())
    text = " ".join(page.text)
    acc = f"{100 * bundle.metrics['accuracy']:.2f}%"
    assert acc in text and "bottleneck" in text and "lite0" in text
    assert "Confusion matrix" in text
    cm = bundle.metrics["confusion"]
    cells = re.findall(r"<td [^>]*background:[^>]*>(\d+)</td>", bundle._repr_html_())
    assert [int(c) for c in cells] == [v for row in cm for v in row]
    plain = repr(bundle)
    assert plain.startswith("Bundle(") and acc in plain and len(plain) < 200
    assert "{" not in plain  # not the card dict


def test_a_run_with_learning_curves_shows_them(tiny_run, tmp_path):
    import shutil

    from littlevision.explain._plots import learning_curves_png

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "learning_curves.png").write_bytes(
        learning_curves_png({"loss": [0.9, 0.5], "val_loss": [0.8, 0.6]})
    )
    page = check_html(Bundle.load(run)._repr_html_())
    assert len(page.images) == 1 and "Learning curves" in " ".join(page.text)


def test_comparison_shows_the_table(tiny_run):
    from littlevision.training.comparison import CompareRow, Comparison

    bundle = Bundle.load(tiny_run)
    row = CompareRow(
        recipe="bottleneck",
        accuracy=bundle.metrics["accuracy"],
        log_loss=bundle.metrics["log_loss"],
        train_s=bundle.card["timings"]["total_s"],
        images_per_s=150.0,
        model_mb=bundle.onnx_path.stat().st_size / 1e6,
        run=str(tiny_run),
        image_size=bundle.image_size,
        backbone="lite0",
        tutorial_accuracy=0.90,
    )
    data = bundle.card["data"]
    result = Comparison([row], bundle.labels, data["n_train"], data["n_val"], 0, "2 cores", True)
    html = result._repr_html_()
    page = check_html(html)
    text = " ".join(page.text)
    assert f"{100 * row.accuracy:.2f}%" in text and "~90% (VGG16 features)" in text
    assert html.count("<tr>") == 2  # header + one recipe
    assert repr(result).startswith("Comparison(bottleneck ") and len(repr(result)) < 120


def test_doctor_report_summary_is_self_contained_too(small_folder):
    from littlevision.doctor import examine

    report = examine(small_folder, skip=["label_issues", "outliers"])
    page = check_html(report._repr_html_())
    assert f"{report.n_images} images" in " ".join(page.text)


@pytest.fixture(scope="module")
def photos(small_folder) -> list[np.ndarray]:
    from littlevision.data.decode import load_image

    files = (
        sorted((small_folder / "cats").iterdir())[:2]
        + sorted((small_folder / "dogs").iterdir())[:1]
    )
    return [load_image(f) for f in files]


def test_gradcam_result_is_a_picture_not_an_array(tiny_run, photos):
    from littlevision.explain import gradcam

    result = gradcam(tiny_run, photos)
    plain = repr(result)
    assert plain.startswith("GradCAMResult(3 images, 224x224 maps") and len(plain) < 200
    assert "array" not in plain
    width, height = check_png(result._repr_png_())
    assert width > height  # three panels side by side
    bundle = result._repr_mimebundle_()
    assert set(bundle) == {"image/png", "text/html", "text/plain"}
    page = check_html(bundle["text/html"])
    assert len(page.images) == 1
    assert base64.b64decode(page.images[0].partition(",")[2]) == bundle["image/png"]


def test_gradcam_without_images_still_draws_the_maps(tiny_run, photos):
    from littlevision.explain import gradcam
    from littlevision.explain._gradcam import GradCAMResult

    r = gradcam(tiny_run, photos[:1], upsample=False)
    bare = GradCAMResult(r.heatmaps, r.probabilities, r.class_indices, r.layer)
    check_png(bare._repr_png_())
    check_html(bare._repr_html_())


def test_feature_maps_show_the_image_and_each_layer(tiny_run, photos):
    from littlevision.explain import FeatureMaps, feature_maps

    maps = feature_maps(tiny_run, photos[0])
    assert isinstance(maps, FeatureMaps) and isinstance(maps, list) and len(maps) == 3
    assert maps.image is not None and maps.image.shape == (224, 224, 3)
    plain = repr(maps)
    assert plain.startswith("FeatureMaps([FeatureMap(#") and "array" not in plain
    _, tall = check_png(maps._repr_png_())
    _, one = check_png(maps[0]._repr_png_())
    assert tall > 2 * one  # the image and three layers against one layer
    page = check_html(maps._repr_html_())
    assert len(page.images) == 1 and "3 layers" in " ".join(page.text)
    check_html(maps[-1]._repr_html_())
    assert "array" not in repr(maps[0])
