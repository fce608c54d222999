"""Lazy package exports (PEP 562), shared by every package that keeps its import cheap."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(
    package: str, namespace: dict, exports: dict[str, str]
) -> tuple[Callable, Callable]:
    """Return ``(__getattr__, __dir__)`` for ``package``, importing each name on first use.

    Args:
        package: The package's ``__name__`` (for error messages).
        namespace: The package's ``globals()``; a resolved name is cached there.
        exports: Public name -> module that defines it.
    """
    public = sorted(exports)

    def __getattr__(name: str):
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module '{package}' has no attribute '{name}'")

    def __dir__() -> list[str]:
        return list(namespace.get("__all__", public))

    return __getattr__, __dir__
