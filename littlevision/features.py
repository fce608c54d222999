"""Backbone features for image files, computed once.

Training, evaluation and the doctor all need the same thing: a frozen backbone's feature vector
for each image. Decoding and embedding are the slow part, so every vector is cached on disk,
keyed by the file's *content* hash, the backbone, the image size and the preprocessing version:
renaming or moving a file costs nothing, editing it invalidates exactly that entry.

Embedding runs on ONNX Runtime (faster than TensorFlow on a small CPU); the backbone's ONNX file
is itself built once from the Keras model and cached. With ``precision="int8"`` the backbone is
quantised (calibrated on a sample of the images themselves) and runs about twice as fast; its
features live under their own cache key (the int8 file's hash), so fp32 and int8 vectors never
mix.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from littlevision._io import atomic_open, file_sha256
from littlevision.cache import cache_dir

# Bump when decoding, resizing or the backbone graph changes: old cache entries are then ignored.
PREPROCESS_VERSION = 1
FEATURES_OUTPUT = "features"


def content_hash(path: str | os.PathLike) -> str:
    """A short, collision-safe name for a file's bytes (sha256, 32 hex digits)."""
    return file_sha256(path)[:32]


def backbone_key(backbone: str, image_size: int) -> str:
    """Names everything that changes a feature vector: backbone, weights, pixel scaling, size.

    Cached ONNX files and embeddings carry this key, so new weights or new preprocessing never
    meet stale features.
    """
    from littlevision.models import PIXEL_MEAN, PIXEL_STD, imagenet_weights_path

    weights = imagenet_weights_path(backbone).stem if backbone.startswith("lite") else backbone
    digest = hashlib.sha256(f"{weights}|{PIXEL_MEAN}|{PIXEL_STD}".encode()).hexdigest()[:8]
    return f"{backbone}-{image_size}-pv{PREPROCESS_VERSION}-{digest}"


def backbone_onnx(backbone: str, image_size: int) -> Path:
    """Path of the backbone's feature-extractor ONNX model, exported on first use."""
    path = cache_dir("onnx") / f"{backbone_key(backbone, image_size)}-features.onnx"
    if not path.is_file():
        from littlevision.models import create_backbone
        from littlevision.models.onnx_export import export_onnx

        model = create_backbone(
            backbone, input_shape=(image_size, image_size, 3), include_top=False, pooling="avg"
        )
        export_onnx(model, path, image_size, output_name=FEATURES_OUTPUT)
    return path


def int8_backbone_onnx(backbone: str, image_size: int, calibration: np.ndarray, tag: str) -> Path:
    """The backbone's int8 feature extractor calibrated on ``calibration`` images, cached by
    ``tag`` (a digest of those images), so the same data always gets the same int8 model."""
    from littlevision.models.quantize import QUANTIZE_VERSION, quantize_static_int8

    name = f"{backbone_key(backbone, image_size)}-int8q{QUANTIZE_VERSION}-{tag}-features.onnx"
    path = cache_dir("onnx") / name
    if not path.is_file():
        quantize_static_int8(backbone_onnx(backbone, image_size), path, calibration)
    return path


@dataclass
class Embeddings:
    """Features for the files that could be decoded, in the order asked for."""

    features: np.ndarray  # [N_ok, D] float32
    ok_indices: np.ndarray  # indices into the paths that were asked for
    failures: list = field(default_factory=list)  # DecodeError for each unreadable file
    hashes: list[str] = field(default_factory=list)  # content hash of every path asked for
    n_cached: int = 0


class Embedder:
    """Embed image files with a frozen backbone, through the on-disk cache.

    Args:
        backbone: A registered backbone name (``lite0``...).
        image_size: Side the images are resized to; the backbone's own size by default.
        threads: Cores to use (default: all); see :class:`~littlevision.inference.OnnxModel`.
        use_cache: Read and write the embedding cache.
        precision: ``fp32`` (the exact backbone) or ``int8`` (quantised, calibrated on a sample
            of the images: call :meth:`calibrate` first, or the first paths embedded are used).
    """

    def __init__(
        self,
        backbone: str = "lite0",
        image_size: int | None = None,
        threads: int | None = None,
        use_cache: bool = True,
        precision: str = "fp32",
    ):
        from littlevision.models import get_backbone_spec

        if precision not in ("fp32", "int8"):
            raise ValueError(f"Expected precision 'fp32' or 'int8'. Received: {precision!r}")
        self.backbone = backbone
        self.image_size = int(image_size or get_backbone_spec(backbone).image_size)
        self.threads = threads
        self.use_cache = use_cache
        self.precision = precision
        self._model = None
        self._key: str | None = None
        self._onnx: Path | None = None

    @property
    def key(self) -> str:
        """The cache key: backbone, size, preprocessing, and for int8 the int8 model's hash."""
        if self._key is None:
            key = backbone_key(self.backbone, self.image_size)
            if self.precision == "int8":
                if self._onnx is None:
                    raise RuntimeError("An int8 Embedder must be calibrated before it is used.")
                key += f"-int8-{content_hash(self._onnx)[:12]}"
            self._key = key
        return self._key

    @property
    def onnx_path(self) -> Path:
        """The feature extractor this embedder runs (fp32, or int8 once calibrated)."""
        if self._onnx is None:
            if self.precision == "int8":
                raise RuntimeError("An int8 Embedder must be calibrated before it is used.")
            self._onnx = backbone_onnx(self.backbone, self.image_size)
        return self._onnx

    def calibrate(self, paths: Sequence[str | os.PathLike], n: int | None = None) -> Embedder:
        """Make (or find) the int8 backbone, calibrated on ``n`` of ``paths``; no-op for fp32.

        The images are chosen by content hash, not by position, so the same files in any order
        give the same int8 model (and the same cache key). Returns self.
        """
        if self.precision != "int8" or self._onnx is not None:
            return self
        from littlevision.data.decode import decode_many
        from littlevision.models.quantize import CALIBRATION_IMAGES

        n = n or CALIBRATION_IMAGES
        hashed = sorted((content_hash(p), str(p)) for p in map(Path, paths) if p.is_file())
        chosen, images = [], []
        for start in range(0, len(hashed), n):  # skip files that do not decode
            decoded = decode_many([p for _, p in hashed[start : start + n]], self.image_size)
            chosen += [hashed[start + i][0] for i in decoded.ok_indices]
            images.append(decoded.images)
            if len(chosen) >= n:
                break
        if not chosen:
            raise ValueError("Expected at least one readable image to calibrate int8 on.")
        calibration = np.concatenate(images)[:n]
        tag = hashlib.sha256("|".join(chosen[:n]).encode()).hexdigest()[:12]
        self._onnx = int8_backbone_onnx(self.backbone, self.image_size, calibration, tag)
        self._key = None
        self._model = None
        return self

    @property
    def cache_folder(self) -> Path:
        return cache_dir("embeddings", self.key)

    @property
    def model(self):
        """The backbone as an :class:`~littlevision.inference.OnnxModel`, exported on first use."""
        if self._model is None:
            from littlevision.inference import OnnxModel

            self._model = OnnxModel(self.onnx_path, self.threads)
        return self._model

    @property
    def session(self):
        return self.model.session

    def embed_array(self, images: np.ndarray, flip: bool = False) -> np.ndarray:
        """Features [N, D] for uint8 images [N, S, S, 3]; ``flip`` mirrors them left-right first."""
        return self.model.run(_mirror(images) if flip else images)

    def _entry(self, digest: str, variant: str) -> Path:
        return self.cache_folder / digest[:2] / f"{digest}{variant}.npy"

    def _load(self, digest: str, variant: str) -> np.ndarray | None:
        try:
            return np.load(self._entry(digest, variant))
        except (OSError, ValueError):
            return None

    def _store(self, digest: str, variant: str, vector: np.ndarray) -> None:
        entry = self._entry(digest, variant)
        entry.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(entry, "wb") as f:
            np.save(f, vector)

    def embed_paths(
        self,
        paths: Sequence[str | os.PathLike],
        flip: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> Embeddings:
        """Features for image files; unreadable files are reported in ``failures``, not fatal.

        Args:
            paths: Image files.
            flip: Embed the left-right mirror image (a cheap test-time augmentation).
            progress: Called with the number of files just finished.
        """
        return self._embed_views(paths, (flip,), progress)[0]

    def embed_paths_and_mirrors(
        self,
        paths: Sequence[str | os.PathLike],
        progress: Callable[[int], None] | None = None,
    ) -> tuple[Embeddings, Embeddings]:
        """``embed_paths(paths)`` and ``embed_paths(paths, flip=True)``, decoding each file once."""
        plain, mirrored = self._embed_views(paths, (False, True), progress)
        return plain, mirrored

    def _embed_views(self, paths, flips: tuple[bool, ...], progress) -> list[Embeddings]:
        """One :class:`Embeddings` per view (plain or mirrored) of the same files.

        A file missing from the cache in any view is decoded once, and all its views go through
        the model in one call (the mirrors stacked after the originals).
        """
        cache = self.cached_views(paths, flips)
        if progress and cache.n_cached:
            progress(cache.n_cached)

        def views(images: np.ndarray) -> np.ndarray:
            return np.concatenate([_mirror(images) if f else images for f in flips])

        failures = []
        stream = (
            self.model.map_paths(
                cache.todo_paths(),
                self.image_size,
                prepare=views if flips != (False,) else None,
            )
            if cache.todo
            else ()
        )
        for decoded, feats in stream:
            failures.extend(decoded.failures)
            if feats is not None:
                for view, view_feats in enumerate(np.split(feats, len(flips))):
                    for j, vec in zip(decoded.ok_indices, view_feats, strict=True):
                        cache.add(j, vec, view)
            if progress:
                progress(len(decoded.ok_indices) + len(decoded.failures))
        return cache.embeddings(failures)

    def cached_views(
        self, paths: Sequence[str | os.PathLike], flips: tuple[bool, ...] = (False,)
    ) -> CachedViews:
        """Look ``paths`` up in the cache for each view; see :class:`CachedViews`.

        Any engine that computes the missing vectors (this process, Ray actors) goes through it,
        so they all read and fill the same cache the same way. An int8 embedder is calibrated
        on ``paths`` first (when it was not already), so every engine runs the same int8 model.
        """
        paths = [Path(p) for p in paths]
        self.calibrate(paths)
        return CachedViews(self, paths, flips)


class CachedViews:
    """The cache's side of one embedding call: the vectors it had, and the files still to embed.

    A file missing from the cache in any view (plain or mirrored) is in :attr:`todo`: the
    engine embeds all its views and hands each vector to :meth:`add`, which keeps it and stores
    it in the cache; :meth:`embeddings` then gives one :class:`Embeddings` per view.

    Attributes:
        paths: The files, as paths.
        hashes: Their content hashes ("" for a path that is not a file).
        todo: Indices into ``paths`` of the files to embed.
        n_cached: Files whose every view came from the cache.
    """

    def __init__(self, embedder: Embedder, paths, flips: tuple[bool, ...]) -> None:
        self._embedder = embedder
        self._variants = ["-flip" if flip else "" for flip in flips]
        self.paths = [Path(p) for p in paths]
        self.hashes = [content_hash(p) if p.is_file() else "" for p in self.paths]
        self._vectors: list[dict[int, np.ndarray]] = [{} for _ in self._variants]
        self.todo: list[int] = []
        use_cache = embedder.use_cache
        for i, digest in enumerate(self.hashes):
            cached = [
                embedder._load(digest, v) if (use_cache and digest) else None
                for v in self._variants
            ]
            if any(vec is None for vec in cached):
                self.todo.append(i)
            else:
                for view, vec in zip(self._vectors, cached, strict=True):
                    view[i] = vec
        self.n_cached = len(self.paths) - len(self.todo)

    def todo_paths(self) -> list[Path]:
        """The files still to embed, in :attr:`todo` order."""
        return [self.paths[i] for i in self.todo]

    def add(self, j: int, vector: np.ndarray, view: int = 0) -> None:
        """The vector of view ``view`` of the ``j``-th file of :attr:`todo`: kept and cached."""
        i = self.todo[j]
        self._vectors[view][i] = vector
        if self._embedder.use_cache and self.hashes[i]:
            self._embedder._store(self.hashes[i], self._variants[view], vector)

    def embeddings(self, failures: list) -> list[Embeddings]:
        """One :class:`Embeddings` per view, rows in the order of ``paths``."""
        return [self._collect(view, failures) for view in self._vectors]

    def _collect(self, vectors: dict[int, np.ndarray], failures: list) -> Embeddings:
        ok = np.array(sorted(vectors), dtype=np.int64)
        dim = next(iter(vectors.values())).shape[0] if vectors else 0
        features = np.stack([vectors[i] for i in ok]) if len(ok) else np.zeros((0, dim), np.float32)
        return Embeddings(
            features=features.astype(np.float32),
            ok_indices=ok,
            failures=failures,
            hashes=self.hashes,
            n_cached=self.n_cached,
        )


def _mirror(images: np.ndarray) -> np.ndarray:
    """Left-right mirror of uint8 images ``[N, H, W, 3]``."""
    return images[:, :, ::-1]
