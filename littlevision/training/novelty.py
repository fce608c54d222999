"""Fit a bundle's novelty score at train time, on the features its own model.onnx outputs.

For a frozen backbone (``bottleneck``, or ``auto``/``finetune`` when they keep it) the features
are the embedding cache's, so this costs a cache read. When training changed the backbone
(``finetune``, ``scratch``), the exported model's ``features`` output is run on the images
instead (a seeded sample of at most ``MAX_TRAIN_IMAGES`` training images).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from littlevision.inference import FEATURES_OUTPUT, OnnxModel
from littlevision.models.novelty import NOVELTY_FILE, NoveltyScorer
from littlevision.onnx_contract import ONNX_OUTPUT
from littlevision.progress import NULL, Reporter

MAX_TRAIN_IMAGES = 2000


def _onnx_features(onnx_path: Path, paths, size: int) -> tuple[np.ndarray, np.ndarray]:
    model = OnnxModel(onnx_path)
    feats, ok = [], []
    for batch, out in model.map_paths(
        list(paths), size, outputs=(ONNX_OUTPUT, FEATURES_OUTPUT), post=lambda outs: outs[1]
    ):
        if out is not None:
            feats.append(out)
            ok.extend(batch.ok_indices)
    dim = feats[0].shape[1] if feats else 0
    return (np.concatenate(feats) if feats else np.zeros((0, dim), np.float32)), np.array(ok)


def _cached_features_match(embedder, onnx_path: Path, paths, size: int) -> bool:
    """Whether the model's ``features`` output is the frozen backbone's (checked on 2 images)."""
    probe = list(paths)[:2]
    cached = embedder.embed_paths(probe)
    mine, ok = _onnx_features(onnx_path, probe, size)
    if len(ok) == 0 or len(cached.ok_indices) != len(ok) or mine.shape != cached.features.shape:
        return False
    return bool(np.allclose(mine, cached.features, rtol=1e-3, atol=1e-3))


def fit_novelty(
    output: Path,
    backbone: str | None,
    image_size: int,
    train,
    val,
    rate: float,
    seed: int = 0,
    reporter: Reporter = NULL,
) -> NoveltyScorer:
    """Fit the novelty score of the bundle being written to ``output`` and save novelty.npz.

    Args:
        output: The run folder, whose model.onnx already has the ``features`` output.
        backbone: The backbone name (for the embedding cache), None when there is none.
        image_size: The model's input side.
        train: The training Dataset (the reference).
        val: The validation Dataset (sets the threshold).
        rate: Share of validation images to flag as unknown.
        seed: For the training sample when it is capped.

    Returns:
        The fitted scorer (also written to ``output / novelty.npz``).
    """
    onnx_path = output / "model.onnx"
    with reporter.stage("fit novelty score"):
        train_paths, train_y = list(train.paths), np.asarray(train.y)
        embedder = None
        if backbone:
            from littlevision.features import Embedder

            embedder = Embedder(backbone, image_size)
            if not _cached_features_match(embedder, onnx_path, val.paths, image_size):
                embedder = None
        if embedder is not None:
            tr = embedder.embed_paths(train_paths)
            va = embedder.embed_paths(val.paths)
            tr_feats, tr_ok, va_feats = tr.features, tr.ok_indices, va.features
        else:
            if len(train_paths) > MAX_TRAIN_IMAGES:
                keep = np.sort(
                    np.random.default_rng(seed).choice(
                        len(train_paths), MAX_TRAIN_IMAGES, replace=False
                    )
                )
                train_paths, train_y = [train_paths[i] for i in keep], train_y[keep]
            tr_feats, tr_ok = _onnx_features(onnx_path, train_paths, image_size)
            va_feats, _ = _onnx_features(onnx_path, val.paths, image_size)
        scorer = NoveltyScorer(rate=rate, seed=seed).fit(tr_feats, train_y[tr_ok], va_feats)
        scorer.save(output / NOVELTY_FILE)
    return scorer
