"""Batch prediction and embedding on Ray Data, with the same results as the local path.

The pipeline is the local one spread over actors: Ray Data holds the list of files, each actor
decodes its batch with :mod:`littlevision.data.decode` and runs the model with its own ONNX
Runtime session, and the driver writes the rows as they arrive, in input order. Ray's
streaming executor keeps only a few blocks in flight, so memory stays flat however many files
there are; the model travels once through the object store, so the nodes need no copy of the
run folder (the images themselves must be readable by every node: a shared filesystem, or
``s3://``/``gs://`` URIs read with pyarrow).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from littlevision._io import atomic_path
from littlevision.bundle import Bundle
from littlevision.errors import UserError
from littlevision.inference import PredictionCsv
from littlevision.onnx_contract import ONNX_INPUT
from littlevision.progress import NULL, Reporter

#: Paths per Ray Data block: small enough to stream and balance, big enough to amortise the
#: per-block scheduling (a few ms) over many images.
BLOCK_ROWS = 256


@dataclass
class RayPredictSummary:
    """What :func:`predict_files` did.

    Attributes:
        output: The CSV or Parquet file written.
        n_files: Files asked for.
        n_predicted: Rows written (the files that decoded).
        failures: One :class:`~littlevision.data.decode.DecodeError` per file that did not decode,
            in input order, as in :attr:`littlevision.inference.Predictions.failures`.
        seconds: Wall time of the pipeline, actor start-up included (Ray start-up excluded).
        num_actors: Model actors used.
        threads_per_actor: ONNX Runtime threads of each actor.
        batch_size: Images per ONNX Runtime call.
        precision: Which model produced the rows: ``int8`` (model.int8.onnx) or ``fp32``.
    """

    output: Path
    n_files: int
    n_predicted: int
    failures: list = field(default_factory=list)
    seconds: float = 0.0
    num_actors: int = 0
    threads_per_actor: int = 0
    batch_size: int = 0
    precision: str = "fp32"

    @property
    def images_per_s(self) -> float:
        return self.n_files / self.seconds if self.seconds > 0 else float("inf")


# -- the actor ------------------------------------------------------------------------------


class OnnxBatchActor:
    """One ONNX Runtime session; decodes a batch of paths and runs the model on it.

    Ray Data creates one instance per actor (``map_batches(OnnxBatchActor, ...)``) and calls it
    with batches ``{"index": int64 [n], "path": str [n]}``.

    Args:
        model: The ONNX file's bytes, or ``[ObjectRef]`` to them.
        image_size: S of the model's uint8 [N, S, S, 3] input.
        threads: ONNX Runtime intra-op threads, and decoding threads.
        flip: Mirror the images left-right first (the embedder's ``flip``).
        input_name: The model's input.
    """

    def __init__(
        self,
        model: Any,
        image_size: int,
        threads: int = 1,
        flip: bool = False,
        input_name: str = ONNX_INPUT,
    ) -> None:
        import ray

        from littlevision.inference import make_session

        if isinstance(model, list):  # [ObjectRef] from the driver
            model = ray.get(model[0])
        # make_session wants a path: one short-lived file keeps the session options in one place.
        fd, tmp = tempfile.mkstemp(suffix=".onnx")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(model)
            self.session = make_session(tmp, threads)
        finally:
            os.unlink(tmp)
        self.image_size = int(image_size)
        self.threads = int(threads)
        self.flip = flip
        self.input_name = input_name

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        paths = [str(p) for p in batch["path"]]
        images, ok, reasons, words = _decode(paths, self.image_size, self.threads)
        if self.flip and len(images):
            images = images[:, :, ::-1]
        values = (
            self.session.run(None, {self.input_name: np.ascontiguousarray(images)})[0]
            if len(images)
            else None
        )
        n = len(paths)
        width = values.shape[1] if values is not None else self._width()
        out = np.zeros((n, width), np.float32)
        if values is not None:
            out[ok] = values
        ok_mask = np.zeros(n, bool)
        ok_mask[ok] = True
        return {
            "index": np.asarray(batch["index"], np.int64),
            "ok": ok_mask,
            "values": out,
            "reason": np.asarray(reasons, object),
            "words": np.asarray(words, object),
        }

    def _width(self) -> int:
        dim = self.session.get_outputs()[0].shape[-1]
        if isinstance(dim, int):
            return dim
        probe = np.zeros((1, self.image_size, self.image_size, 3), np.uint8)
        return int(self.session.run(None, {self.input_name: probe})[0].shape[1])


def _decode(paths: list[str], size: int, workers: int):
    """Decode like the local path; ``scheme://`` URIs are read with pyarrow's filesystems."""
    from littlevision.data.decode import DecodeError, decode_many, load_image

    reasons = [""] * len(paths)
    words = [""] * len(paths)
    if not any("://" in p for p in paths):
        result = decode_many(paths, size, workers=workers)
        failed = sorted(set(range(len(paths))) - set(result.ok_indices.tolist()))
        for i, error in zip(failed, result.failures, strict=True):
            reasons[i], words[i] = error.reason, error.words
        return result.images, result.ok_indices, reasons, words
    images, ok = [], []
    for i, p in enumerate(paths):
        try:
            source = _read_uri(p) if "://" in p else p
            images.append(load_image(source, size))
            ok.append(i)
        except DecodeError as error:
            reasons[i], words[i] = error.reason, error.words
        except OSError as error:
            reasons[i], words[i] = "unreadable", f"it could not be read ({error})"
    stack = np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)
    return stack, np.asarray(ok, np.int64), reasons, words


def _read_uri(uri: str) -> bytes:
    from pyarrow import fs

    filesystem, path = fs.FileSystem.from_uri(uri)
    with filesystem.open_input_file(path) as f:
        return f.read()


# -- the pipeline -----------------------------------------------------------------------------


def _source_names(paths: Sequence[str | os.PathLike]) -> list[str]:
    """The strings the local CLI writes (``str(Path(p))``); URIs are kept as they are."""
    return [p if isinstance(p, str) and "://" in p else str(Path(p)) for p in paths]


@contextlib.contextmanager
def _streaming_context(ray) -> Iterator[None]:
    """Rows in input order, no progress bars of Ray's own; restored afterwards."""
    ctx = ray.data.DataContext.get_current()
    saved = (ctx.execution_options.preserve_order, ctx.enable_progress_bars)
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    # Without a terminal Ray Data logs its progress at INFO instead, and says at WARNING that
    # bars are off: the library never prints. Real failures still raise.
    data_log = logging.getLogger("ray.data")
    level = data_log.level
    data_log.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        ctx.execution_options.preserve_order, ctx.enable_progress_bars = saved
        data_log.setLevel(level)


def _run_actors(
    ray,
    names: list[str],
    model_bytes: bytes,
    image_size: int,
    *,
    plan,
    batch_size: int,
    flip: bool = False,
) -> Iterator[dict[str, np.ndarray]]:
    """Yield the actors' output batches, in input order, as they complete."""
    if batch_size < 1:
        raise UserError(f"Expected batch_size >= 1. Received: batch_size={batch_size}")
    # A dataset keeps a copy of the DataContext made when it is created: set it first.
    with _streaming_context(ray):
        rows = [{"index": i, "path": p} for i, p in enumerate(names)]
        n = len(rows)
        # Enough blocks for every actor to have work, none longer than BLOCK_ROWS.
        blocks = max(-(-n // BLOCK_ROWS), min(n, 2 * plan.num_actors))
        ds = ray.data.from_items(rows, override_num_blocks=blocks)
        # The model goes through the object store once; wrapped in a list so that Ray hands the
        # reference (not a copy) to each actor, which fetches it in its constructor.
        model_ref = [ray.put(model_bytes)]
        ds = ds.map_batches(
            OnnxBatchActor,
            fn_constructor_kwargs={
                "model": model_ref,
                "image_size": image_size,
                "threads": plan.threads_per_actor,
                "flip": flip,
            },
            batch_size=batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=plan.num_actors),
            num_cpus=plan.threads_per_actor,
        )
        yield from ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=2)


def _failure(name: str, reason: str, words: str):
    from littlevision.data.decode import DecodeError

    path = None if "://" in name else Path(name)
    return DecodeError(path, reason, words or "it could not be decoded")


class _ParquetRows:
    """Same columns as the CSV, full float32 precision, one row group per batch."""

    def __init__(self, path: Path, labels: list[str]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa = pa
        self.labels = labels
        fields = [
            pa.field("path", pa.string()),
            pa.field("label", pa.string()),
            pa.field("score", pa.float32()),
        ]
        fields += [pa.field(name, pa.float32()) for name in labels]
        self.schema = pa.schema(fields)
        self.writer = pq.ParquetWriter(str(path), self.schema)

    def write(self, names: list[str], probs: np.ndarray) -> None:
        if not names:
            return
        probs = probs.astype(np.float32, copy=False)
        columns = [
            self.pa.array(names, self.pa.string()),
            self.pa.array([self.labels[i] for i in probs.argmax(axis=1)], self.pa.string()),
            self.pa.array(probs.max(axis=1)),
        ]
        columns += [self.pa.array(probs[:, j]) for j in range(len(self.labels))]
        self.writer.write_table(self.pa.Table.from_arrays(columns, schema=self.schema))

    def close(self) -> None:
        self.writer.close()


def predict_files(
    bundle: Bundle | str | os.PathLike,
    paths: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    *,
    address: str | None = None,
    batch_size: int = 32,
    num_actors: int | None = None,
    threads_per_actor: int | None = None,
    reporter: Reporter = NULL,
    precision: str = "auto",
) -> RayPredictSummary:
    """Predict labels for many files on Ray; write the local ``predict`` CSV (or Parquet).

    Args:
        bundle: A run folder (or loaded :class:`~littlevision.bundle.Bundle`).
        paths: Image files (already listed: the CLI's ``collect_images`` does that), or
            ``s3://``/``gs://``/... URIs readable by pyarrow on every node.
        output: ``.csv`` for the CSV of ``littlevision predict`` (``path,label,score`` and one
            column per class, 6 decimals), ``.parquet`` for the same columns as float32.
        address: A Ray cluster to join; ``None`` starts a local Ray (or uses the one this
            process already has).
        batch_size: Images per ONNX Runtime call.
        num_actors: Model actors (default: the cluster's CPUs / ``threads_per_actor``).
        threads_per_actor: ONNX Runtime threads per actor (default 1: see
            :func:`~littlevision.scale.cluster.plan_actors`).
        reporter: Progress, advanced as rows arrive.
        precision: ``auto`` runs the bundle's int8 model when it has one, ``fp32`` the exact
            one (see :meth:`~littlevision.bundle.Bundle.model_file`).

    Returns:
        A :class:`RayPredictSummary`; files that do not decode are listed in ``failures`` and
        left out of the output, as in the local path.

    Raises:
        UserError: Ray is not installed, the bundle is not a run, the output suffix is neither
            ``.csv`` nor ``.parquet``, or there are no paths.
    """
    from littlevision.scale.cluster import plan_actors, ray_session, require_ray

    require_ray("Predicting on Ray")
    bundle = bundle if isinstance(bundle, Bundle) else Bundle.load(bundle)
    output = Path(output)
    suffix = output.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise UserError(f"Expected an output ending in .csv or .parquet. Received: '{output}'")
    names = _source_names(paths)
    if not names:
        raise UserError("Expected at least one image to predict. Received: no paths.")
    labels = list(bundle.labels)
    model_path, chosen = bundle.model_file(precision)
    model_bytes = model_path.read_bytes()
    output.parent.mkdir(parents=True, exist_ok=True)
    failures: list = []
    n_written = 0
    # atomic_path: no half-written output left behind (Ctrl-C included)
    with ray_session(address) as ray, atomic_path(output) as tmp:
        plan = plan_actors(ray, num_actors, threads_per_actor)
        start = time.perf_counter()
        rows = PredictionCsv(tmp, labels) if suffix == ".csv" else _ParquetRows(tmp, labels)
        try:
            with reporter.stage("predict (ray)", total=len(names)) as stage:
                for batch in _run_actors(
                    ray, names, model_bytes, bundle.image_size, plan=plan, batch_size=batch_size
                ):
                    ok = batch["ok"]
                    index = batch["index"]
                    rows.write([names[i] for i in index[ok]], batch["values"][ok])
                    n_written += int(ok.sum())
                    for i, reason, words in zip(
                        index[~ok], batch["reason"][~ok], batch["words"][~ok], strict=True
                    ):
                        failures.append(_failure(names[i], str(reason), str(words)))
                    stage.advance(len(index))
        finally:
            rows.close()
        seconds = time.perf_counter() - start
    return RayPredictSummary(
        output=output,
        n_files=len(names),
        n_predicted=n_written,
        failures=failures,
        seconds=seconds,
        num_actors=plan.num_actors,
        threads_per_actor=plan.threads_per_actor,
        batch_size=batch_size,
        precision=chosen,
    )


def embed_paths_ray(
    embedder_args: dict[str, Any] | Any,
    paths: Sequence[str | os.PathLike],
    *,
    flip: bool = False,
    address: str | None = None,
    batch_size: int = 64,
    num_actors: int | None = None,
    threads_per_actor: int | None = None,
    reporter: Reporter = NULL,
):
    """:meth:`littlevision.features.Embedder.embed_paths` on Ray, through the same cache.

    Files are hashed and looked up in the embedding cache here, as locally; only the misses go
    to the actors, and their vectors are written to the cache here too, so the cache needs to
    be on this machine only. A later local ``train``/``doctor`` then finds every vector cached.

    Args:
        embedder_args: Keyword arguments of :class:`~littlevision.features.Embedder`
            (``{"backbone": "lite0", "image_size": None, "use_cache": True}``), or an Embedder.
        paths: Image files.
        flip: Embed the left-right mirror images (the cache keeps them apart).
        address, batch_size, num_actors, threads_per_actor, reporter: as :func:`predict_files`.

    Returns:
        :class:`~littlevision.features.Embeddings`, as ``embed_paths`` returns.

    Raises:
        UserError: Ray is not installed or the backbone is unknown.
    """
    from littlevision.features import Embedder
    from littlevision.scale.cluster import plan_actors, ray_session, require_ray

    require_ray("Embedding on Ray")
    embedder = embedder_args if isinstance(embedder_args, Embedder) else Embedder(**embedder_args)
    cache = embedder.cached_views(paths, (flip,))
    failures: list = []
    with reporter.stage("embed (ray)" + (" (mirrored)" if flip else ""), total=len(paths)) as st:
        if cache.n_cached:
            st.advance(cache.n_cached)
        if cache.todo:
            # Exported here, once, so that no actor ever imports TensorFlow.
            model_bytes = embedder.onnx_path.read_bytes()
            names = [str(p) for p in cache.todo_paths()]
            with ray_session(address) as ray:
                plan = plan_actors(ray, num_actors, threads_per_actor)
                for batch in _run_actors(
                    ray,
                    names,
                    model_bytes,
                    embedder.image_size,
                    plan=plan,
                    batch_size=batch_size,
                    flip=flip,
                ):
                    for j, ok, vec, reason, words in zip(
                        batch["index"],
                        batch["ok"],
                        batch["values"],
                        batch["reason"],
                        batch["words"],
                        strict=True,
                    ):
                        if ok:
                            cache.add(int(j), np.array(vec, np.float32))
                        else:
                            failures.append(_failure(names[int(j)], str(reason), str(words)))
                    st.advance(len(batch["index"]))
    return cache.embeddings(failures)[0]
