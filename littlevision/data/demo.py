"""The embedded demo dataset: scikit-learn's scanned handwritten digits, as a class-folder tree.

``make demo`` must work on a fresh clone with no download and no shared data, on real images
rather than noise. scikit-learn ships 1797 real 8x8 scans of handwritten digits (the UCI "optical
recognition of handwritten digits" set); written out as PNGs in ``0/`` ... ``9/`` they go through
exactly the path a user's own photos take: folder listing, safe decoding, doctor, training.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from littlevision._io import atomic_path

__all__ = ["DIGITS_COUNT", "write_digits_folder"]

DIGITS_COUNT = 1797
"""Number of images :func:`write_digits_folder` writes (all of ``load_digits``)."""

# Images per digit in load_digits, so "is it complete?" needs no slow scikit-learn import.
_PER_DIGIT = (178, 182, 177, 183, 181, 182, 181, 179, 174, 180)


def write_digits_folder(dest: str | os.PathLike[str], size: int = 32) -> Path:
    """Write scikit-learn's handwritten digits as grayscale PNGs, one folder per digit.

    Ink is dark on white, like a scan of paper. Files are named after their index in
    ``load_digits`` (``dest/3/digit_0003.png``), so the tree is the same on every machine. It is
    idempotent: files already there are kept, so a second call is nearly free, and a call that
    was interrupted is completed. Each file is written under a hidden temporary name and then
    renamed, so an interruption never leaves a half-written PNG that would look complete.

    Args:
        dest: The folder to write (created if needed); ``dest/0/`` ... ``dest/9/``.
        size: Side of the PNGs; the 8x8 scans are upscaled (bicubic) so that they survive a
            model's resize to its input size without looking like blocks.

    Returns:
        ``dest`` as a Path, ready for ``Dataset.from_folder``.

    Raises:
        ValueError: ``size`` is smaller than 8.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"Expected size >= 8 (the scans are 8x8). Received: size={size!r}")
    root = Path(dest)
    targets = [root / str(d) for d in range(10)]
    if all(
        folder.is_dir() and sum(1 for _ in folder.glob("digit_*.png")) == n
        for folder, n in zip(targets, _PER_DIGIT, strict=True)
    ):
        return root
    from sklearn.datasets import load_digits  # slow import: only when something is missing

    digits = load_digits()
    for folder in targets:
        folder.mkdir(parents=True, exist_ok=True)
    for i, (scan, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        name = f"digit_{i:04d}.png"
        out = targets[int(label)] / name
        if out.is_file():
            continue
        ink = np.rint(255.0 - scan * (255.0 / 16.0)).astype(np.uint8)  # 0..16 ink -> paper white
        image = Image.fromarray(ink, "L").resize((size, size), Image.Resampling.BICUBIC)
        with atomic_path(out) as tmp:
            image.save(tmp, format="PNG")
    return root
