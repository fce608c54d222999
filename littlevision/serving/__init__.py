"""Serve a bundle over HTTP: ``create_app(run_dir, settings)`` for Python, ``serve`` for the CLI.

Importing this package is cheap: FastAPI and the app modules load only when one of these names
is first used.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "create_app": "littlevision.serving.app",
    "ServeSettings": "littlevision.serving.settings",
    "serve": "littlevision.serving.cli",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'littlevision.serving' has no attribute '{name}'")


def __dir__() -> list[str]:
    return __all__
