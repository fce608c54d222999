"""Serve a bundle over HTTP: ``create_app(run_dir, settings)`` for Python, ``serve`` for the CLI.

Importing this package is cheap: FastAPI and the app modules load only when one of these names
is first used.
"""

from __future__ import annotations

from littlevision._lazy import lazy_exports

_EXPORTS = {
    "create_app": "littlevision.serving.app",
    "ServeSettings": "littlevision.serving.settings",
    "serve": "littlevision.serving.cli",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
