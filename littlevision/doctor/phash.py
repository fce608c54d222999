"""A perceptual hash (pHash) in plain numpy, for near-duplicate images.

Two files that show the same picture (resized, re-encoded, slightly cropped or brightened) have
hashes a few bits apart, while different photos differ in about half of the 64 bits. The hash
keeps the signs of the lowest frequencies of a 2-D DCT of a 32x32 grey thumbnail, so fine detail
and compression noise do not move it.
"""

from __future__ import annotations

import functools

import numpy as np

from littlevision.doctor.measures import grey

HASH_BITS = 64
_SIDE = 32  # thumbnail side the DCT runs on
_LOW = 8  # the top-left 8x8 frequencies become the 64 bits


@functools.cache
def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix ``[n, n]``: ``M @ x`` is the DCT of a column ``x``."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m.astype(np.float64)


def _area_resize(g: np.ndarray, side: int) -> np.ndarray:
    """Average-pool a 2-D array to ``[side, side]`` (box filter, works for any input size)."""
    h, w = g.shape
    rows = np.linspace(0, h, side + 1).astype(int)
    cols = np.linspace(0, w, side + 1).astype(int)
    if h < side or w < side:  # upsample by repetition first, so every box holds a pixel
        reps = (-(-side // h), -(-side // w))
        return _area_resize(np.repeat(np.repeat(g, reps[0], axis=0), reps[1], axis=1), side)
    sums = np.add.reduceat(np.add.reduceat(g, rows[:-1], axis=0), cols[:-1], axis=1)
    areas = np.outer(np.diff(rows), np.diff(cols))
    return sums / areas


def phash(image: np.ndarray) -> int:
    """The 64-bit perceptual hash of a uint8 RGB image ``[H, W, 3]`` as a Python int."""
    g = _area_resize(grey(image).astype(np.float64), _SIDE)
    m = _dct_matrix(_SIDE)
    low = (m @ g @ m.T)[:_LOW, :_LOW].ravel()
    bits = low > np.median(low[1:])  # the DC term says nothing about structure
    return int(np.packbits(bits).view(">u8")[0])


def hamming(a: int | np.ndarray, b: int | np.ndarray) -> np.ndarray | int:
    """Number of differing bits between hashes (ints or uint64 arrays, broadcast)."""
    x = np.bitwise_xor(np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64))
    out = np.bitwise_count(x)
    return int(out) if out.ndim == 0 else out.astype(np.int64)
