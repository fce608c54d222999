"""Errors a user can cause, kept apart from bugs.

The CLI turns a :class:`UserError` into one clear sentence and exit code 2; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user asked for (a missing folder, a single class, a bad bundle)."""


class NotFittedError(UserError, AttributeError):
    """An estimator was used before ``fit``."""
