"""Real bundles and photos for the explain tests (trained once per session, a few seconds each)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from littlevision.explain import AscentConfig, ReportConfig, write_report

# Light settings so the report tests stay fast; the defaults are measured in the benchmark.
FAST_ASCENT = AscentConfig(steps=4, size=64, octaves=(1.0,))
FAST_REPORT = ReportConfig(
    n_top_losses=4,
    n_correct=4,
    n_filters=2,
    max_class_images=2,
    filter_ascent=FAST_ASCENT,
    class_ascent=FAST_ASCENT,
    strict=True,
)


@pytest.fixture(scope="session")
def explain_run(tiny_run, tmp_path_factory) -> Path:
    """A private copy of the shared bottleneck run (40 photos, 12 validation), safe to write to."""
    dst = tmp_path_factory.mktemp("explain") / "run"
    shutil.copytree(tiny_run, dst)
    return dst


@pytest.fixture(scope="session")
def explainer(explain_run):
    """The cached Grad-CAM explainer of ``explain_run`` (loads TensorFlow once)."""
    from littlevision.explain import get_explainer

    return get_explainer(explain_run)


@pytest.fixture(scope="session")
def keras_model(explainer):
    return explainer.model


@pytest.fixture(scope="session")
def photos(small_folder) -> list[Path]:
    """Two cats and two dogs, full size."""
    return (
        sorted((small_folder / "cats").iterdir())[:2]
        + sorted((small_folder / "dogs").iterdir())[:2]
    )


@pytest.fixture(scope="session")
def photo_arrays(photos) -> list[np.ndarray]:
    from littlevision.data.decode import load_image

    return [load_image(p) for p in photos]


def recipe_available(name: str) -> bool:
    return importlib.util.find_spec(f"littlevision.training.{name}") is not None


@pytest.fixture(scope="session")
def scratch_run(small_folder, tmp_path_factory) -> Path:
    """The tutorial convnet trained from scratch for one epoch (skips while the recipe is absent)."""
    if not recipe_available("scratch"):
        pytest.skip(
            "littlevision.training.scratch is not there yet (another engineer is writing it)"
        )
    from littlevision.training.run import TrainConfig, train

    out = tmp_path_factory.mktemp("explain-scratch") / "run"
    train(small_folder, out, TrainConfig(recipe="scratch", val_split=0.3), epochs=1)
    return out


@pytest.fixture(scope="session")
def fast_report() -> ReportConfig:
    return FAST_REPORT


def _doctor_json(run: Path, small_folder: Path) -> None:
    """A real doctor report (the doctor's own classes) saved in the run folder, if available."""
    try:
        from littlevision.doctor.report import Finding, Report
    except ImportError:
        files = [
            p.relative_to(small_folder).as_posix() for p in sorted(small_folder.rglob("*.jpg"))[:2]
        ]
        data = {
            "root": str(small_folder),
            "findings": [
                {
                    "check": "exact_duplicates",
                    "severity": "warning",
                    "files": files,
                    "message": "2 files are byte-for-byte copies of each other.",
                }
            ],
        }
        (run / "doctor.json").write_text(json.dumps(data), encoding="utf-8")
        return
    files = [
        p.relative_to(small_folder).as_posix() for p in sorted(small_folder.rglob("*.jpg"))[:2]
    ]
    report = Report(
        root=str(small_folder),
        n_images=40,
        classes=["cats", "dogs"],
        counts={"cats": 20, "dogs": 20},
        checks=["exact_duplicates"],
        findings=[
            Finding(
                "exact_duplicates",
                "warning",
                files,
                "2 files are byte-for-byte copies of each other.",
            )
        ],
    )
    report.to_json(run / "doctor.json")


@pytest.fixture(scope="session")
def report_html(explain_run, small_folder, tmp_path_factory) -> Path:
    _doctor_json(explain_run, small_folder)
    out = tmp_path_factory.mktemp("report") / "out" / "report.html"
    return write_report(explain_run, out, config=FAST_REPORT)
