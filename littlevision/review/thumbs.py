"""Thumbnails made once, on first request, and cached outside the data folder.

The cache key is the file's identity on disk -- device, inode, size and modification time --
so a relabel (a rename keeps the inode) reuses its thumbnail, an edited file gets a new one, and
no image has to be read to find its thumbnail. Files live under the littlevision cache
(``LITTLEVISION_CACHE``), never in the data folder.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

from littlevision._io import write_bytes

SIZES: tuple[int, ...] = (160, 480)
"""The strip's thumbnails and the large view."""


def make_thumbnail(path: str | os.PathLike[str], side: int) -> bytes | None:
    """JPEG bytes of ``path`` with its longer side at most ``side`` px (aspect kept), or
    ``None`` when the file cannot be decoded."""
    from PIL import Image

    from littlevision.data.decode import DecodeError, load_image, probe

    try:
        info = probe(path)
        # Decode small (JPEG draft makes this cheap), then restore the aspect from the header.
        square = load_image(path, size=min(2 * side, 1024))
    except (DecodeError, OSError, ValueError):
        return None
    w, h = info.width, info.height
    if info.exif_orientation in (5, 6, 7, 8):
        w, h = h, w
    scale = min(1.0, side / max(w, h, 1))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    img = Image.fromarray(square).resize(size, Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=82)
    return buf.getvalue()


class ThumbnailCache:
    """Thumbnails of image files by side, on disk.

    Args:
        folder: Where to keep them (default: ``<littlevision cache>/review-thumbs``).
    """

    def __init__(self, folder: str | os.PathLike[str] | None = None):
        if folder is None:
            from littlevision.cache import cache_dir

            folder = cache_dir("review-thumbs")
        self.folder = Path(folder)
        self.hits = 0
        self.misses = 0

    def key(self, path: Path, side: int) -> str | None:
        try:
            st = path.stat()
        except OSError:
            return None
        ident = f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{side}"
        return hashlib.sha1(ident.encode()).hexdigest()

    def get(self, path: str | os.PathLike[str], side: int = SIZES[0]) -> bytes | None:
        """The thumbnail's JPEG bytes (made now when not cached); ``None`` when undecodable
        or gone."""
        path = Path(path)
        key = self.key(path, side)
        if key is None:
            return None
        entry = self.folder / key[:2] / f"{key}.jpg"
        try:
            data = entry.read_bytes()
            self.hits += 1
            return data
        except OSError:
            pass
        self.misses += 1
        data = make_thumbnail(path, side)
        if data is None:
            return None
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            write_bytes(entry, data)
        except OSError:
            pass  # a read-only cache costs speed, not correctness
        return data
