"""``examine``: run the doctor's checks on a dataset and return a :class:`Report`.

One pass decodes every image once at a small size (:mod:`.scan`); embeddings come from the
shared :class:`~littlevision.features.Embedder` and its on-disk cache (so a doctor run before
``train`` makes training's embedding step free, and the reverse); then each registered check
reads what it needs from a :class:`~littlevision.doctor.context.Context`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from littlevision.doctor.config import DoctorConfig
from littlevision.doctor.context import Context
from littlevision.doctor.registry import get_check, list_checks
from littlevision.doctor.report import SEVERITIES, Report
from littlevision.doctor.scan import scan
from littlevision.progress import Reporter, default_reporter


def select_checks(checks: Iterable[str] | None = None, skip: Iterable[str] = ()) -> list[str]:
    """Check names to run, in report order: ``checks`` (all when ``None``) minus ``skip``.

    Raises:
        UserError: A name is not a registered check.
    """
    chosen = list_checks() if checks is None else [get_check(n).name for n in checks]
    skipped = {get_check(n).name for n in skip}
    order = {n: i for i, n in enumerate(list_checks())}
    return sorted((n for n in dict.fromkeys(chosen) if n not in skipped), key=order.__getitem__)


def _data_root(dataset, root) -> Path:
    if root is not None:
        return Path(root).absolute()
    if getattr(dataset, "root", None) is not None:
        return Path(dataset.root).absolute()
    paths = [str(Path(p).absolute()) for p in dataset.paths]
    return Path(os.path.commonpath(paths)) if paths else Path.cwd()


def resolves_inside(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> bool:
    """Whether ``path``'s real path (every symlink followed) is inside ``root``'s real path."""
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))


def _without_links_outside(dataset, root: Path):
    """The dataset without the items whose real path leaves ``root``, and those paths.

    The doctor's symlink policy (docs/doctor.md): a symlinked file or folder that stays inside
    DATA is followed; one that leads out of it is reported (``links_outside``), never examined
    as part of DATA, and never moved.
    """
    if not hasattr(dataset, "filter"):
        return dataset, []
    real_root = os.path.realpath(root)
    outside = [
        Path(it.path)
        for it in dataset
        if not Path(os.path.realpath(it.path)).is_relative_to(real_root)
    ]
    if not outside:
        return dataset, []
    gone = set(outside)
    return dataset.filter(lambda it: Path(it.path) not in gone), outside


def examine(
    data,
    *,
    labels: str | os.PathLike[str] | None = None,
    root: str | os.PathLike[str] | None = None,
    checks: Iterable[str] | None = None,
    skip: Iterable[str] = (),
    config: DoctorConfig | None = None,
    reporter: Reporter | None = None,
    embedder=None,
) -> Report:
    """Find what is wrong with a set of labelled images.

    Args:
        data: A :class:`~littlevision.data.dataset.Dataset`, or a folder / CSV path opened with
            :func:`~littlevision.data.source.open_dataset`.
        labels: A labels CSV, when ``data`` is the images folder it describes.
        root: The folder report paths are relative to and ``--fix`` quarantines beside
            (default: the dataset's root).
        checks: Names of the checks to run (default: all registered, see
            :func:`~littlevision.doctor.list_checks`).
        skip: Names of checks not to run (e.g. ``["label_issues"]`` for a quicker pass).
        config: Thresholds and resources.
        reporter: Receives progress (bars in a notebook, silent elsewhere, by default).
        embedder: An :class:`~littlevision.features.Embedder` to reuse (default: a new one for
            ``config.backbone``, sharing the on-disk cache).

    Returns:
        The :class:`Report`; nothing on disk is changed.

    Raises:
        UserError: The data cannot be opened, or a check name is unknown.
    """
    started = time.perf_counter()
    reporter = reporter or default_reporter()
    config = config or DoctorConfig()
    names = select_checks(checks, skip)  # a typo fails before any work
    if not config.embeddings:  # a model-free pass: what cannot work without embeddings is off
        names = [n for n in names if not get_check(n).needs & {"embeddings", "labels"}]
    if isinstance(data, str | os.PathLike):
        from littlevision.data.source import open_dataset

        dataset = open_dataset(data, labels)
    else:
        dataset = data
    specs = [get_check(n) for n in names]
    needs = frozenset().union(*(s.needs for s in specs)) if specs else frozenset()
    data_root = _data_root(dataset, root)
    dataset, outside = _without_links_outside(dataset, data_root)
    timings: dict[str, float] = {}

    t = time.perf_counter()
    with reporter.stage("scan images", total=len(dataset)) as stage:
        records = scan(
            list(dataset),
            data_root,
            config.scan_size,
            max_pixels=config.max_pixels,
            workers=config.workers,
            progress=stage.advance,
        )
    timings["scan"] = time.perf_counter() - t

    ctx = Context(
        dataset=dataset,
        root=data_root,
        config=config,
        records=records,
        reporter=reporter,
        outside=outside,
    )
    if config.embeddings and needs & {"embeddings", "similarity", "labels"}:
        t = time.perf_counter()
        ctx.features, ctx.feature_rows = _embed(records, config, embedder, reporter)
        timings["embed"] = time.perf_counter() - t

    findings = []
    t = time.perf_counter()
    with reporter.stage("run checks", total=len(specs)) as stage:
        for spec in specs:
            t_check = time.perf_counter()
            findings.extend(spec.run(ctx))
            timings[f"check:{spec.name}"] = time.perf_counter() - t_check
            stage.advance(1)
    timings["checks"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - started
    rank = {n: i for i, n in enumerate(names)}
    findings.sort(key=lambda f: (SEVERITIES.index(f.severity), rank.get(f.check, len(rank))))
    reviewed = 0
    if config.honour_reviews:  # what a person kept in `littlevision review` is not news
        from littlevision.review.journal import drop_reviewed

        findings, reviewed = drop_reviewed(findings, data_root)
    counts = dataset.counts() if hasattr(dataset, "counts") else {}
    return Report(
        root=str(data_root),
        n_images=len(records),
        classes=list(dataset.classes),
        counts=dict(counts),
        findings=findings,
        checks=names,
        timings={k: round(v, 3) for k, v in timings.items()},
        reviewed=reviewed,
    )


def _embed(
    records, config: DoctorConfig, embedder, reporter: Reporter
) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised embeddings of the decodable images and their record indices."""
    ok = [r for r in records if r.ok]
    if embedder is None:
        from littlevision.features import Embedder
        from littlevision.models.quantize import resolve_precision

        embedder = Embedder(config.backbone, precision=resolve_precision(config.precision))
    with reporter.stage("embed images", total=len(ok)) as stage:
        result = embedder.embed_paths([r.path for r in ok], progress=stage.advance)
    rows = np.array([ok[i].index for i in result.ok_indices], dtype=np.int64)
    feats = np.asarray(result.features, dtype=np.float32)
    norms = np.linalg.norm(feats, axis=1, keepdims=True) if len(feats) else np.ones((0, 1))
    return feats / np.maximum(norms, 1e-12), rows
