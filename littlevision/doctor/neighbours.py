"""Which images look alike: one blocked similarity pass shared by duplicates and outliers.

Two signals, because each misses what the other sees: the embedding cosine survives crops and
colour shifts (a perceptual hash does not), the perceptual hash survives heavy downscaling of
tiny images (an embedding of a 30-pixel thumbnail drifts). The pass runs over blocks of rows
sized so a block holds about :data:`_BLOCK_CELLS` pairs: memory stays flat as N grows, never
``N x N``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from littlevision.doctor.context import Context
from littlevision.doctor.phash import hamming

_BLOCK_CELLS = 4_000_000  # pairs compared at a time: ~32 MB per temporary, whatever N is


@dataclass
class Neighbours:
    """Near pairs and typicality, in record indices.

    Attributes:
        pairs: int64 ``[P, 2]`` record indices ``(i, j)``, ``i < j``, of images that are near
            duplicates but not byte-identical.
        cosine: float32 ``[P]`` embedding cosine of each pair (NaN without embeddings).
        hamming: int64 ``[P]`` perceptual-hash distance of each pair.
        knn_similarity: float32 ``[M]``: for each row of ``ctx.features``, the mean cosine to its
            ``k`` most similar *other* images (copies of itself excluded); ``None`` without
            embeddings.
        knn_rows: int64 ``[M, k]``: those neighbours (rows of ``ctx.features``), ``-1`` where
            there were fewer than ``k``; ``None`` without embeddings.
    """

    pairs: np.ndarray
    cosine: np.ndarray
    hamming: np.ndarray
    knn_similarity: np.ndarray | None
    knn_rows: np.ndarray | None = None


def neighbours(ctx: Context) -> Neighbours:
    """The shared near-duplicate graph and kNN similarities of a run (computed once)."""
    return ctx.shared("neighbours", lambda: _compute(ctx))


def _hash_ids(hashes: list[str]) -> np.ndarray:
    ids: dict[str, int] = {}
    return np.array([ids.setdefault(h, len(ids)) for h in hashes], dtype=np.int64)


def _compute(ctx: Context) -> Neighbours:
    cfg = ctx.config
    ok = [r for r in ctx.records if r.ok and r.phash is not None]
    if ctx.features is not None:
        rows = [int(i) for i in ctx.feature_rows]
        feats = ctx.features
    else:  # no embeddings asked for: the perceptual hash alone
        rows = [r.index for r in ok]
        feats = None
    by_index = {r.index: r for r in ctx.records}
    hashes = np.array(
        [by_index[i].phash if by_index[i].phash is not None else 0 for i in rows], dtype=np.uint64
    )
    hid = _hash_ids([by_index[i].hash for i in rows])
    m = len(rows)
    k = min(cfg.outlier_k, max(m - 1, 0))
    knn = np.full(m, np.nan, dtype=np.float32) if feats is not None else None
    knn_rows = np.full((m, k), -1, dtype=np.int64) if feats is not None else None
    found_i, found_j, found_cos, found_ham = [], [], [], []
    block = int(np.clip(_BLOCK_CELLS // max(m, 1), 16, 1024))
    for start in range(0, m, block):
        stop = min(start + block, m)
        ham = hamming(hashes[start:stop, None], hashes[None, :])
        same_file = hid[start:stop, None] == hid[None, :]
        if feats is not None:
            sim = feats[start:stop] @ feats.T
            near = (sim >= cfg.near_cosine) | (ham <= cfg.near_hamming)
        else:
            sim = None
            near = ham <= cfg.near_hamming
        upper = np.arange(start, stop)[:, None] < np.arange(m)[None, :]
        bi, bj = np.nonzero(near & upper & ~same_file)
        found_i.append(bi + start)
        found_j.append(bj)
        found_ham.append(ham[bi, bj])
        found_cos.append(sim[bi, bj] if sim is not None else np.full(len(bi), np.nan, np.float32))
        if knn is not None and k > 0:
            # Copies of the image itself (byte-identical or near) say nothing about typicality.
            masked = np.where(same_file | near, -np.inf, sim)
            idx = np.argpartition(-masked, k - 1, axis=1)[:, :k]
            top = np.take_along_axis(masked, idx, axis=1)
            valid = np.isfinite(top)
            knn_rows[start:stop] = np.where(valid, idx, -1)
            total = np.where(valid, top, 0.0).sum(axis=1)
            count = valid.sum(axis=1)
            knn[start:stop] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    rows_arr = np.array(rows, dtype=np.int64)
    ii = np.concatenate(found_i) if found_i else np.zeros(0, np.int64)
    jj = np.concatenate(found_j) if found_j else np.zeros(0, np.int64)
    pairs = (
        np.stack([rows_arr[ii], rows_arr[jj]], axis=1) if len(ii) else np.zeros((0, 2), np.int64)
    )
    return Neighbours(
        pairs=pairs,
        cosine=np.concatenate(found_cos).astype(np.float32)
        if found_cos
        else np.zeros(0, np.float32),
        hamming=np.concatenate(found_ham).astype(np.int64) if found_ham else np.zeros(0, np.int64),
        knn_similarity=knn,
        knn_rows=knn_rows,
    )


def connected_groups(pairs: np.ndarray | list[tuple[int, int]]) -> list[list[int]]:
    """Connected components (of size >= 2) of an undirected graph given by its edges, sorted."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(int(a)), find(int(b))
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for x in parent:
        groups.setdefault(find(x), []).append(x)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)
