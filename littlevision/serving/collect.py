"""``serve --collect``: keep the images the service was unsure about, the next ones to label.

An image is kept when its answer was ``unknown`` (novelty over the threshold) or its score was
below ``collect_below_score``. It is stored once, by content hash, as
``RUN/collected/<sha256>.<ext>`` beside ``<sha256>.json`` (the answer, the version, the time).
Two caps, on the number of images and on the bytes of both files, are checked before anything
is written, under a lock, so they are never exceeded; past them an image is not kept (counted in
``littlevision_collected_total{result="full"}``). Nothing is kept without ``--collect``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from littlevision._io import write_bytes
from littlevision.serving.metrics import Counter

log = logging.getLogger("littlevision.serving")

COLLECT_DIR = "collected"


class Collector:
    """Keeps a bounded, content-hashed sample of uncertain images in ``run_dir/collected``.

    Args:
        run_dir: The run folder.
        max_images: Most images kept (those already there count).
        max_bytes: Most bytes kept, images and their JSON together.
        below_score: Also keep images whose top probability is under it.
    """

    def __init__(
        self, run_dir: str | os.PathLike, max_images: int, max_bytes: int, below_score: float
    ) -> None:
        self.folder = Path(run_dir) / COLLECT_DIR
        self.max_images = int(max_images)
        self.max_bytes = int(max_bytes)
        self.below_score = float(below_score)
        self._lock = threading.Lock()
        self.results = Counter(
            "littlevision_collected_total",
            "Uncertain images offered to --collect, by result (saved, duplicate, full).",
            ("result",),
        )
        self.images, self.bytes = self._scan()

    def _scan(self) -> tuple[int, int]:
        if not self.folder.is_dir():
            return 0, 0
        images = total = 0
        for f in self.folder.iterdir():
            if f.is_file() and not f.name.startswith("."):
                total += f.stat().st_size
                images += f.suffix != ".json"
        return images, total

    def wants(self, answer: dict[str, Any]) -> bool:
        """Whether an answer is uncertain enough to keep its image."""
        return bool(answer.get("unknown")) or float(answer["score"]) < self.below_score

    def add(self, data: bytes, answer: dict[str, Any], version: str) -> str:
        """Keep ``data`` with its answer; returns ``saved``, ``duplicate`` or ``full``."""
        from littlevision.serving.routers.feedback import sniff_extension

        digest = hashlib.sha256(data).hexdigest()
        ext = sniff_extension(data) or "img"
        record = json.dumps(
            {
                "sha256": digest,
                "label": answer["label"],
                "score": answer["score"],
                "unknown": answer.get("unknown"),
                "novelty": answer.get("novelty"),
                "probabilities": answer["probabilities"],
                "model_version": version,
                "time": time.time(),
            },
            indent=1,
        ).encode()
        image, sidecar = self.folder / f"{digest}.{ext}", self.folder / f"{digest}.json"
        with self._lock:
            if image.exists():
                result = "duplicate"
            elif (
                self.images + 1 > self.max_images
                or self.bytes + len(data) + len(record) > self.max_bytes
            ):
                result = "full"
            else:
                self.folder.mkdir(parents=True, exist_ok=True)
                write_bytes(sidecar, record)
                write_bytes(image, data)
                self.images += 1
                self.bytes += len(data) + len(record)
                result = "saved"
        self.results.inc(result=result)
        return result
