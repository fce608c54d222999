"""Where littlevision keeps what it computes once: converted weights and image embeddings."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def cache_dir(*parts: str) -> Path:
    """Return (and create) a folder under the cache root.

    The root is ``$LITTLEVISION_CACHE`` when set, else the user's cache directory, so tests and CI
    can point it at a temporary folder.
    """
    root = os.environ.get("LITTLEVISION_CACHE") or platformdirs.user_cache_dir("littlevision")
    path = Path(root).expanduser().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
