"""Living models: versions of a run, retraining from feedback behind a gate, rollback.

See docs/lifecycle.md for the loop, the gate's rule and the layout on disk.
"""

from __future__ import annotations

from littlevision.lifecycle._retrain import (
    RetrainResult,
    RollbackResult,
    VersionInfo,
    retrain,
    rollback,
    versions,
)
from littlevision.lifecycle.gate import GateRule

__all__ = [
    "GateRule",
    "RetrainResult",
    "RollbackResult",
    "VersionInfo",
    "retrain",
    "rollback",
    "versions",
]
