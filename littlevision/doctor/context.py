"""What every check reads: the dataset, the scan's per-image records, embeddings, settings.

Checks never decode or embed by themselves; :func:`~littlevision.doctor.examine` does that once
and hands them this object. Results that several checks share (the near-duplicate graph, the
out-of-fold probabilities) are computed on first use and memoised with :meth:`Context.shared`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from littlevision.doctor.config import DoctorConfig
from littlevision.doctor.scan import ImageRecord
from littlevision.progress import NULL, Reporter

T = TypeVar("T")


@dataclass
class Context:
    """Inputs of the checks.

    Attributes:
        dataset: The :class:`~littlevision.data.dataset.Dataset` examined.
        root: The data folder; report paths are relative to it.
        config: Thresholds.
        records: One :class:`~littlevision.doctor.scan.ImageRecord` per dataset item, in order.
        features: L2-normalised embeddings ``[M, D]`` float32 of the images that decoded, or
            ``None`` when no selected check needs them.
        feature_rows: int64 ``[M]``: the record index of each row of ``features``.
        reporter: Receives progress of long checks.
        outside: Listed files whose real path is outside the data folder's real path (reached
            through a symlinked file or folder). They are left out of ``dataset`` and
            ``records`` (the doctor never examines nor moves them) and reported by the
            ``links_outside`` check.
    """

    dataset: Any
    root: Path
    config: DoctorConfig
    records: list[ImageRecord]
    features: np.ndarray | None = None
    feature_rows: np.ndarray | None = None
    reporter: Reporter = NULL
    outside: list[Path] = field(default_factory=list)
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    def shared(self, key: str, compute: Callable[[], T]) -> T:
        """``compute()``'s result, computed once per run and shared by every check."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    @property
    def ok_records(self) -> list[ImageRecord]:
        """Records of the images that decoded."""
        return [r for r in self.records if r.error is None]

    @property
    def has_subsets(self) -> bool:
        """Whether the data has both a train and a validation part (the tutorial layout)."""
        subsets = {r.subset for r in self.records}
        return "train" in subsets and "validation" in subsets
