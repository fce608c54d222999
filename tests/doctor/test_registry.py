"""The check registry: names are unique, every check is documented, and every registered check
runs on real photos (tests generated from the registry: a new check is tested at once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from littlevision.doctor import DoctorConfig, examine, get_check, list_checks, register_check
from littlevision.doctor.registry import FIX_LEVELS, unregister_check
from littlevision.errors import UserError


def test_a_duplicate_name_is_an_error():
    with pytest.raises(ValueError, match="already registered"):
        register_check("blurry", severity="warning", title="t", advice="a")(lambda ctx: [])


def test_unknown_names_are_user_errors_listing_the_known_ones():
    with pytest.raises(UserError, match="blurry"):
        get_check("blury")
    with pytest.raises(UserError):
        examine(".", checks=["nope"])


def test_bad_registrations_are_refused():
    with pytest.raises(ValueError):
        register_check("x_sev", severity="fatal", title="t", advice="a")
    with pytest.raises(ValueError):
        register_check("x_fix", severity="error", title="t", advice="a", fix="sometimes")
    with pytest.raises(ValueError):
        register_check("x_needs", severity="error", title="t", advice="a", needs=["gpu"])


def test_order_is_worst_first_and_families_filter():
    names = list_checks()
    severities = [get_check(n).severity for n in names]
    assert severities == sorted(severities, key=("error", "warning", "info").index)
    assert set(list_checks(severity="error")) >= {"unreadable", "exact_duplicates", "leakage"}
    assert list_checks(family="balance") == ["class_imbalance", "too_few_images"]


def test_a_plugin_check_runs_and_can_be_removed(pets):
    @register_check("plugin_many_dogs", severity="info", title="Dogs", advice="none")
    def many_dogs(ctx):
        spec = get_check("plugin_many_dogs")
        return [spec.finding([r.rel], "a dog") for r in ctx.records if r.label == "dogs"]

    try:
        report = examine(pets, checks=["plugin_many_dogs"])
        assert len(report.findings) == 6
    finally:
        unregister_check("plugin_many_dogs")
    assert "plugin_many_dogs" not in list_checks()


@pytest.mark.parametrize("name", list_checks())
def test_every_registered_check_is_documented(name):
    spec = get_check(name)
    assert spec.title and spec.advice.endswith(".") and spec.func.__doc__
    assert spec.fix in (None, *FIX_LEVELS)


# Checks whose silence on clean data needs classes that mean something (real cats and dogs):
# the suite's sample photos are ten unrelated subjects per class, so a model cannot tell them.
NEEDS_MEANINGFUL_CLASSES = {"label_issues"}


def _clean_report(tutorial: Path, out: Path, embedder):
    import shutil

    for cls in ("cats", "dogs"):
        (out / cls).mkdir(parents=True)
        for f in sorted((tutorial / "train" / cls).glob("*.jpg"))[:8]:
            shutil.copy(f, out / cls / f.name)
    return examine(out, config=DoctorConfig(min_per_class=5), embedder=embedder)


@pytest.fixture(scope="module")
def clean_report(cats_dogs_dir, tmp_path_factory, embedder):
    return _clean_report(cats_dogs_dir, tmp_path_factory.mktemp("clean") / "pets", embedder)


@pytest.fixture(scope="module")
def clean_real_report(real_cats_dogs_dir, tmp_path_factory, embedder):
    return _clean_report(real_cats_dogs_dir, tmp_path_factory.mktemp("real") / "pets", embedder)


@pytest.mark.parametrize("name", [n for n in list_checks() if n not in NEEDS_MEANINGFUL_CLASSES])
def test_every_registered_check_runs_and_finds_nothing_on_clean_photos(clean_report, name):
    assert name in clean_report.checks
    assert not clean_report.by_check(name)


@pytest.mark.parametrize("name", sorted(NEEDS_MEANINGFUL_CLASSES))
def test_label_checks_find_nothing_on_clean_real_cats_and_dogs(clean_real_report, name):
    assert name in clean_real_report.checks
    assert not clean_real_report.by_check(name)


def test_a_model_free_pass_leaves_out_what_needs_a_model(pets):
    report = examine(pets, config=DoctorConfig(embeddings=False))
    assert "embed" not in report.timings
    assert "label_issues" not in report.checks and "outliers" not in report.checks
    assert "near_duplicates" in report.checks  # by perceptual hash
