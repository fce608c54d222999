"""CPU time per image of the serving and embedding hot paths, for an A/B of two checkouts.

Run it once per side, alternating, with ``PYTHONPATH`` pointing at each checkout::

    PYTHONPATH=/path/to/before python scripts/ab_hot_paths.py before --embed
    PYTHONPATH=/path/to/after  python scripts/ab_hot_paths.py after --embed

CPU time, not wall time: on a shared machine under load only CPU time per image compares.
Prints one JSON line: the micro-batcher's own cost per image (a model that costs nothing),
and with ``--embed`` decode + embed + cache write, then the all-cached path, per image.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("LITTLEVISION_DATASETS", "../shared/datasets")) / "cats-vs-dogs"


class _Free:
    def predict_array(self, images: np.ndarray) -> np.ndarray:
        return np.zeros((len(images), 2), np.float32)


async def batcher_us_per_image(n: int = 20_000) -> float:
    from littlevision.serving.batcher import MicroBatcher

    batcher = MicroBatcher(max_batch=4, max_wait_ms=0.0, max_queue=10_000, lanes=2)
    await batcher.start()
    one, model = np.zeros((8, 8, 3), np.uint8), _Free()
    for _ in range(20):  # warm-up
        await asyncio.gather(*(batcher.submit(model, one) for _ in range(64)))
    start, done = time.process_time(), 0
    while done < n:
        await asyncio.gather(*(batcher.submit(model, one) for _ in range(64)))
        done += 64
    cpu = time.process_time() - start
    await batcher.stop()
    return cpu / done * 1e6


def embed_ms_per_image(n: int = 128) -> dict[str, float]:
    os.environ["LITTLEVISION_CACHE"] = tempfile.mkdtemp(prefix="lv-ab-cache-")
    from littlevision.features import Embedder

    files = sorted((DATA / "validation").rglob("*.jpg"))[:n]
    embedder = Embedder("lite0", use_cache=True)
    _ = embedder.session  # export and load outside the timing
    start = time.process_time()
    embedder.embed_paths(files)
    fresh = (time.process_time() - start) / len(files) * 1e3
    cached = []
    for _ in range(5):
        start = time.process_time()
        embedder.embed_paths(files)
        cached.append((time.process_time() - start) / len(files) * 1e3)
    return {"embed_cpu_ms": fresh, "cached_cpu_ms_min": min(cached)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("side", help="a name for this checkout, echoed in the output")
    p.add_argument("--embed", action="store_true", help="also time the embedding paths")
    a = p.parse_args()
    out: dict = {"side": a.side, "batcher_cpu_us": asyncio.run(batcher_us_per_image())}
    if a.embed:
        out.update(embed_ms_per_image())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
