"""Without Ray: one clear sentence on how to get it, and nothing else needs it."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

from littlevision.errors import UserError

HINT = "pip install 'littlevision[ray]'"


@pytest.fixture
def no_ray(monkeypatch):
    """Make ``import ray`` fail as it does when the extra is not installed."""
    for name in [m for m in sys.modules if m == "ray" or m.startswith("ray.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ray", None)


def _one_sentence(message: str) -> None:
    assert HINT in message
    assert message.count("\n") == 0 and message.rstrip(".").count(". ") == 0, message


def test_every_entry_point_says_how_to_install(no_ray, tmp_path):
    from littlevision.scale import (
        build_application,
        embed_paths_ray,
        predict_files,
        require_ray,
        serve_ray,
    )

    calls = {
        "predict": lambda: predict_files(tmp_path, [tmp_path / "a.jpg"], tmp_path / "o.csv"),
        "embed": lambda: embed_paths_ray({"backbone": "lite0"}, [tmp_path / "a.jpg"]),
        "serve": lambda: serve_ray(tmp_path, 2, blocking=False),
        "serve_app": lambda: build_application(tmp_path, 2),
        "require": lambda: require_ray("--engine ray"),
    }
    for name, call in calls.items():
        with pytest.raises(UserError) as info:
            call()
        _one_sentence(str(info.value))
        assert "ray" in str(info.value).lower(), name


def test_importing_littlevision_never_imports_ray():
    code = (
        "import sys, littlevision.cli, littlevision.scale, littlevision.scale.ray_engine, "
        "littlevision.scale.ray_serve, littlevision.scale.cluster; "
        "print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_deployed_app_is_only_a_folder_and_settings():
    """What ``@serve.ingress`` pickles must pickle; the real app is built in the replica."""
    from littlevision.scale.ray_serve import LazyApp
    from littlevision.serving.settings import ServeSettings

    app = LazyApp("/runs/pets", ServeSettings(max_batch=8), serve_batching=True)
    app._app = object()  # a built app (threads, locks) is never shipped
    copy = pickle.loads(pickle.dumps(app))
    assert copy.run_dir == "/runs/pets" and copy.settings.max_batch == 8 and copy._app is None


def test_public_names_resolve():
    import littlevision.scale as scale

    for name in scale.__all__:
        assert getattr(scale, name) is not None, name


def test_serve_config_builder_needs_a_run_dir():
    from littlevision.scale import app_builder

    with pytest.raises(UserError, match="run_dir"):
        app_builder({"replicas": "2"})
