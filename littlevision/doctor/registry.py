"""Doctor checks by name, timm-style: a new check is one decorated function.

A check is a function ``(ctx: Context) -> list[Finding]`` registered with its name, severity and
advice. :func:`~littlevision.doctor.examine` runs the registered checks, and computes the costly
inputs (embeddings) only when a selected check ``needs`` them, so a quick file-only run stays
quick. A duplicate name is an error, never a silent overwrite.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from littlevision.doctor.report import SEVERITIES, Finding
from littlevision.errors import UserError

if TYPE_CHECKING:
    from littlevision.doctor.context import Context

FIX_LEVELS: tuple[str, ...] = ("errors", "all")
"""``--fix`` quarantines the files of checks whose ``fix`` is ``"errors"``; ``--fix all`` both."""

NEEDS: frozenset[str] = frozenset({"embeddings", "similarity", "labels"})
"""Costly inputs a check may ask for: ``embeddings`` (it cannot work without them),
``similarity`` (it uses embeddings when there are, the perceptual hash alone otherwise),
``labels`` (out-of-fold label probabilities, themselves made from embeddings)."""

# The modules that register the built-in checks, one per family, in report order.
BUILTIN_FAMILIES: tuple[str, ...] = (
    "files",
    "duplicates",
    "labels",
    "outliers",
    "quality",
    "balance",
    "listing",
    "formats",
)


@dataclass(frozen=True)
class CheckSpec:
    """A registered check.

    Attributes:
        name: Unique name, used in the JSON and on the command line.
        severity: ``"error"``, ``"warning"`` or ``"info"``.
        family: The module that defines it (``"duplicates"``...).
        title: A short heading for people (``"Exact duplicates"``).
        advice: What the user should do about it, in one sentence.
        needs: Costly inputs it uses (a subset of :data:`NEEDS`).
        fix: ``"errors"`` or ``"all"``: the ``--fix`` level that quarantines its
            ``Finding.quarantine`` files; ``None`` when it is never fixed automatically.
        func: The function computing the findings.
    """

    name: str
    severity: str
    family: str
    title: str
    advice: str
    needs: frozenset[str]
    fix: str | None
    func: Callable[[Context], list[Finding]]

    def finding(
        self, files: Iterable[str], message: str, *, quarantine: Iterable[str] = (), **details: Any
    ) -> Finding:
        """A :class:`Finding` of this check (its name and severity filled in)."""
        return Finding(
            check=self.name,
            severity=self.severity,
            files=list(files),
            message=message,
            quarantine=list(quarantine),
            details=details,
        )

    def run(self, ctx: Context) -> list[Finding]:
        return list(self.func(ctx))


_CHECKS: dict[str, CheckSpec] = {}


def register_check(
    name: str,
    *,
    severity: str,
    title: str,
    advice: str,
    needs: Iterable[str] = (),
    fix: str | None = None,
):
    """Decorator registering ``func(ctx) -> list[Finding]`` as the check ``name``.

    Raises:
        ValueError: ``name`` is already registered, or an argument is not one of its choices.
    """
    if severity not in SEVERITIES:
        raise ValueError(f"Expected severity in {SEVERITIES}. Received: severity={severity!r}")
    needs = frozenset(needs)
    if unknown := needs - NEEDS:
        raise ValueError(f"Expected needs within {sorted(NEEDS)}. Received: {sorted(unknown)}")
    if fix is not None and fix not in FIX_LEVELS:
        raise ValueError(f"Expected fix in {FIX_LEVELS} or None. Received: fix={fix!r}")

    def add(func: Callable[[Context], list[Finding]]):
        if name in _CHECKS:
            raise ValueError(
                f"A doctor check named '{name}' is already registered "
                f"(by {_CHECKS[name].func.__module__})."
            )
        family = func.__module__.rsplit(".", 1)[-1]
        _CHECKS[name] = CheckSpec(name, severity, family, title, advice, needs, fix, func)
        return func

    return add


def unregister_check(name: str) -> None:
    """Remove a check (for tests and plugins that replace one on purpose)."""
    _CHECKS.pop(name, None)


def list_checks(severity: str | None = None, family: str | None = None) -> list[str]:
    """Registered check names in report order (worst severity first, then family order)."""
    _load_builtin()
    order = {fam: i for i, fam in enumerate(BUILTIN_FAMILIES)}
    specs = sorted(
        _CHECKS.values(),
        key=lambda s: (SEVERITIES.index(s.severity), order.get(s.family, len(order))),
    )
    return [
        s.name
        for s in specs
        if (severity is None or s.severity == severity) and (family is None or s.family == family)
    ]


def get_check(name: str) -> CheckSpec:
    """The :class:`CheckSpec` registered as ``name``.

    Raises:
        UserError: No check has that name (the message lists them).
    """
    _load_builtin()
    if name not in _CHECKS:
        raise UserError(f"Unknown doctor check '{name}'. Known checks: {', '.join(list_checks())}.")
    return _CHECKS[name]


def _load_builtin() -> None:
    """Import the family modules, whose decorators fill the registry (once: imports are cached)."""
    for family in BUILTIN_FAMILIES:
        importlib.import_module(f"littlevision.doctor.{family}")
