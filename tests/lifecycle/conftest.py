"""A retrained run shared by the lifecycle tests: tiny_run + 20 real corrections, retrained once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def add_feedback(run: Path, source: Path, per_class: int, start: int, swap: bool = False) -> None:
    """Copy real photos from a tutorial-layout folder into ``run/feedback/<label>/``.

    ``swap`` labels every cat a dog and every dog a cat: corrections that are all wrong.
    """
    classes = sorted(p.name for p in (source / "train").iterdir())
    for cls in classes:
        files = sorted((source / "train" / cls).iterdir(), key=lambda p: p.name)
        label = classes[1 - classes.index(cls)] if swap else cls
        out = run / "feedback" / label
        out.mkdir(parents=True, exist_ok=True)
        for f in files[start : start + per_class]:
            shutil.copy2(f, out / f.name)


@pytest.fixture(scope="session")
def retrained(tiny_run, cats_dogs_dir, tmp_path_factory):
    """(run folder with versions 1 and 2, the RetrainResult): do not modify, copy it."""
    from littlevision.lifecycle import retrain

    run = Path(shutil.copytree(tiny_run, tmp_path_factory.mktemp("retrained") / "run"))
    add_feedback(run, cats_dogs_dir, per_class=10, start=20)
    result = retrain(run)
    return run, result


@pytest.fixture
def retrained_copy(retrained, tmp_path) -> Path:
    run, _ = retrained
    return Path(shutil.copytree(run, tmp_path / "run", symlinks=True))
