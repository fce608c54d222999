"""The review's queues: what to look at, in what order, with what beside it.

- ``findings``: the doctor's findings with files, worst first; a duplicate with its twins, a leak
  with its partner, a suspected wrong label with the label the evidence suggests and the nearest
  images of each class. The doctor runs when there is no fresh report for the folder's files.
- ``losses``: with a run, the labelled images the model gets most wrong (highest log-loss).
- ``next``: unlabelled images ranked by :func:`~littlevision.review.ranking.rank_label_next`,
  the model's guess preselected.
- ``all``: every labelled image, by class, to browse.

Each queue is a list of :class:`QueueItem`, plain data the page renders and the actions answer.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from littlevision.progress import NULL, Reporter
from littlevision.review.journal import fingerprint
from littlevision.review.target import DataTarget

QUEUES: dict[str, str] = {
    "findings": "Findings",
    "losses": "Top losses",
    "next": "Label next",
    "all": "All images",
}
MAX_FILES_SHOWN = 12


@dataclass
class FileRef:
    """One image shown in an item.

    Attributes:
        where: ``"data"`` (``path`` relative to the data folder) or ``"inbox"`` (absolute).
        path: Where the file was when the queue was built.
        label: Its class then (``None`` when unlabelled).
        role: A caption (``"copy"``, ``"nearest dogs"``...).
        fp: ``[size, mtime_ns]`` then: an action on a file that changed since is refused.
    """

    where: str
    path: str
    label: str | None = None
    role: str = ""
    fp: list[int] | None = None


@dataclass
class QueueItem:
    """One thing to decide about.

    Attributes:
        key: Stable id (journal records name it in ``item``).
        queue: ``findings``, ``losses``, ``next`` or ``all``.
        title: One sentence saying why it is here.
        files: The images acted on (``target`` is the default one).
        context: Images shown for comparison, never acted on.
        check: The doctor check (``label_issues`` for a top loss: what a keep answers).
        severity: The finding's severity.
        suggested: The class the evidence suggests (preselected on the page).
        score: Loss, uncertainty or confidence, for sorting.
        target: Index in ``files`` of the file an action applies to by default.
    """

    key: str
    queue: str
    title: str
    files: list[FileRef]
    context: list[FileRef] = field(default_factory=list)
    check: str | None = None
    severity: str | None = None
    suggested: str | None = None
    score: float | None = None
    target: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fp(path: Path) -> list[int] | None:
    fp = fingerprint(path)
    return list(fp) if fp else None


def _ref(target: DataTarget, rel: str, label: str | None, role: str = "") -> FileRef:
    return FileRef("data", rel, label, role, _fp(target.root / rel))


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def labels_by_rel(target: DataTarget, dataset) -> dict[str, str | None]:
    return {
        Path(os.path.abspath(p)).relative_to(target.root).as_posix(): lab
        for p, lab in zip(dataset.paths, dataset.labels, strict=True)
    }


# -- the doctor's report, reused while the files are the same ----------------------------------


def listing_fingerprint(target: DataTarget, dataset) -> str:
    """A digest of every file's path, size and mtime, and of the labels: a report made for the
    same digest is fresh."""
    h = hashlib.sha1()
    for p, lab in zip(dataset.paths, dataset.labels, strict=True):
        fp = fingerprint(Path(p))
        h.update(f"{p}\0{lab}\0{fp}\n".encode())
    return h.hexdigest()


def doctor_report(target: DataTarget, dataset, *, quick: bool = False, reporter: Reporter = NULL):
    """The doctor's :class:`~littlevision.doctor.report.Report` of the data folder: the cached
    one when the files have not changed since it was made, else a new examination (keep marks
    are applied either way)."""
    from littlevision.cache import cache_dir
    from littlevision.doctor.config import DoctorConfig
    from littlevision.doctor.examination import examine
    from littlevision.doctor.report import Report
    from littlevision.review.journal import drop_reviewed

    folder = cache_dir("review-reports", _digest(str(target.root)) + ("-quick" if quick else ""))
    digest = listing_fingerprint(target, dataset)
    cached = folder / "report.json"
    try:
        meta = json.loads((folder / "listing.json").read_text())
        if meta.get("fingerprint") == digest and meta.get("root") == str(target.root):
            report = Report.from_json(cached)
            report.findings, dropped = drop_reviewed(report.findings, target.root)
            report.reviewed += dropped
            return report
    except (OSError, ValueError, KeyError, TypeError):
        pass
    report = examine(
        dataset, root=target.root, config=DoctorConfig(embeddings=not quick), reporter=reporter
    )
    try:
        report.to_json(cached)
        (folder / "listing.json").write_text(
            json.dumps({"fingerprint": digest, "root": str(target.root)})
        )
    except OSError:
        pass
    return report


# -- queues --------------------------------------------------------------------------------------


def findings_queue(
    report, target: DataTarget, dataset, neighbours: Neighbours | None = None
) -> list[QueueItem]:
    """One item per finding that names files (dataset-level findings have nothing to act on)."""
    labels = labels_by_rel(target, dataset)
    items = []
    for f in report.findings:
        if not f.files:
            continue
        shown = list(f.files[:MAX_FILES_SHOWN])
        for rel in f.quarantine:  # the file a fix would move is always shown
            if rel not in shown:
                shown[-1] = rel
                break
        members = {m.get("file"): m for m in f.details.get("members", []) if isinstance(m, dict)}
        refs = []
        for rel in shown:
            role = "fix would move" if rel in f.quarantine else ""
            if members.get(rel, {}).get("subset"):
                role = (members[rel]["subset"] + " " + role).strip()
            refs.append(_ref(target, rel, labels.get(rel), role))
        tgt = shown.index(f.quarantine[0]) if f.quarantine and f.quarantine[0] in shown else 0
        suggested = f.details.get("predicted") if isinstance(f.details, dict) else None
        context = []
        if neighbours is not None and f.check == "label_issues":
            context = neighbours.nearest(shown[0], exclude=set(shown))
        items.append(
            QueueItem(
                key=f"finding:{f.check}:{_digest('|'.join(sorted(f.files)))}",
                queue="findings",
                title=f.message,
                files=refs,
                context=context,
                check=f.check,
                severity=f.severity,
                suggested=suggested if suggested in target.classes else None,
                target=tgt,
            )
        )
    return items


def all_queue(target: DataTarget, dataset) -> list[QueueItem]:
    """Every labelled image, by class then name."""
    labels = labels_by_rel(target, dataset)
    order = sorted(labels, key=lambda rel: (str(labels[rel]), rel))
    return [
        QueueItem(
            key=f"img:{rel}",
            queue="all",
            title=rel,
            files=[_ref(target, rel, labels[rel])],
            check="*",
        )
        for rel in order
    ]


def losses_queue(
    run: str | os.PathLike[str],
    target: DataTarget,
    dataset,
    *,
    limit: int = 200,
    reporter: Reporter = NULL,
) -> list[QueueItem]:
    """The ``limit`` labelled images with the highest log-loss under the run's model.

    Raises:
        UserError: ``run`` is not a littlevision run.
    """
    from littlevision.bundle import Bundle
    from littlevision.inference import Predictor

    bundle = Bundle.load(run)
    labels = labels_by_rel(target, dataset)
    index = {c: i for i, c in enumerate(bundle.labels)}
    rels = [rel for rel, lab in labels.items() if lab in index]
    paths = [target.root / rel for rel in rels]
    predictor = Predictor.from_bundle(bundle)
    with reporter.stage("predict (top losses)", total=len(paths)) as stage:
        pred = predictor.predict_paths(paths, progress=stage.advance)
    where = {Path(p): i for i, p in enumerate(pred.paths)}
    scored = []
    for rel, path in zip(rels, paths, strict=True):
        row = where.get(path)
        if row is None:
            continue
        probs = pred.probabilities[row]
        y = index[labels[rel]]
        loss = float(-np.log(max(float(probs[y]), 1e-12)))
        top = int(np.argmax(probs))
        scored.append((loss, rel, top, float(probs[top]), float(probs[y])))
    scored.sort(key=lambda t: -t[0])
    items = []
    for loss, rel, top, p_top, p_label in scored[:limit]:
        guess = bundle.labels[top]
        title = (
            f"{rel} is labelled '{labels[rel]}' ({p_label:.0%}); the model says '{guess}' "
            f"({p_top:.0%})."
        )
        items.append(
            QueueItem(
                key=f"loss:{rel}",
                queue="losses",
                title=title,
                files=[_ref(target, rel, labels[rel])],
                check="label_issues",
                suggested=guess if guess != labels[rel] and guess in target.classes else None,
                score=round(loss, 4),
            )
        )
    return items


def unlabelled_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Every non-hidden file under ``folder`` but JSON sidecars (``serve --collect`` keeps one
    beside each image); what is not an image is left out when embedded."""
    from littlevision.data.dataset import _files_under

    return [f for f in _files_under(Path(os.path.abspath(folder))) if f.suffix.lower() != ".json"]


def next_queue(
    files: list[Path],
    target: DataTarget,
    dataset,
    *,
    run: str | os.PathLike[str] | None = None,
    embedder=None,
    labelled: tuple[np.ndarray, ...] | None = None,
    reporter: Reporter = NULL,
) -> list[QueueItem]:
    """Unlabelled images in label-next order, each with the model's guess preselected.

    The model is the run's when given, else a logistic regression on the labelled images'
    embeddings (what the ``bottleneck`` recipe would learn from them).
    """
    from littlevision.features import Embedder

    if not files:
        return []
    embedder = embedder or Embedder()
    with reporter.stage("embed unlabelled", total=len(files)) as stage:
        emb = embedder.embed_paths(files, progress=stage.advance)
    ok = [files[i] for i in emb.ok_indices]
    pool = emb.features
    classes = list(target.classes)
    if labelled is None:
        labelled = labelled_embeddings(dataset, embedder, reporter)
    labelled_features, labelled_y = labelled[0], labelled[1]
    if run is not None:
        from littlevision.inference import Predictor

        predictor = Predictor.from_bundle(run)
        pred = predictor.predict_paths(ok)
        got = {Path(p): i for i, p in enumerate(pred.paths)}
        probs = np.zeros((len(ok), len(classes)))
        for j, path in enumerate(ok):
            if path in got:
                row = pred.probabilities[got[path]]
                for k, name in enumerate(predictor.labels):
                    if name in classes:
                        probs[j, classes.index(name)] = row[k]
    else:
        probs = fit_probabilities(labelled_features, labelled_y, pool, len(classes))
    from littlevision.review.ranking import margin_uncertainty, rank_label_next

    order = rank_label_next(probs, pool, labelled_features)
    u = margin_uncertainty(probs)
    items = []
    for i in order:
        path = ok[int(i)]
        guess = classes[int(np.argmax(probs[i]))] if probs.shape[1] else None
        items.append(
            QueueItem(
                key=f"next:{path}",
                queue="next",
                title=f"{path.name}: the model guesses '{guess}' ({float(probs[i].max()):.0%}).",
                files=[FileRef("inbox", str(path), None, "", _fp(path))],
                check="*",
                suggested=guess,
                score=round(float(u[i]), 4),
            )
        )
    return items


def labelled_embeddings(dataset, embedder, reporter: Reporter = NULL):
    """``(features [M, D], class index [M], dataset row [M])`` of the labelled images that
    decode."""
    classes = list(dataset.classes)
    with reporter.stage("embed labelled", total=len(dataset)) as stage:
        emb = embedder.embed_paths(dataset.paths, progress=stage.advance)
    y = np.array([classes.index(dataset.labels[i]) for i in emb.ok_indices], dtype=np.int64)
    return emb.features, y, emb.ok_indices


def fit_probabilities(
    labelled: np.ndarray, y: np.ndarray, pool: np.ndarray, n_classes: int
) -> np.ndarray:
    """Probabilities ``[N, K]`` of the pool under a logistic regression on the labelled images
    (L2-normalised embeddings, ``C = 100``: unit-norm features need little regularisation;
    ``C = 1`` leaves the model unsure of everything, 0.28 log-loss at 97% accuracy on
    cats-vs-dogs with 50 photos per class, against 0.08 at C = 100)."""
    from sklearn.linear_model import LogisticRegression

    probs = np.zeros((len(pool), n_classes))
    present = np.unique(y)
    if len(present) < 2:
        probs[:, int(present[0]) if len(present) else 0] = 1.0
        return probs
    model = LogisticRegression(C=100.0, max_iter=3000)
    model.fit(_l2(labelled), y)
    probs[:, model.classes_] = model.predict_proba(_l2(pool))
    return probs


def _l2(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class Neighbours:
    """Nearest labelled images of each class, for a suspected wrong label's context."""

    def __init__(self, target: DataTarget, rels: list[str], labels: list[str], feats: np.ndarray):
        self.target = target
        self.rels = rels
        self.labels = labels
        self.feats = _l2(np.asarray(feats, dtype=np.float32))
        self.row = {rel: i for i, rel in enumerate(rels)}

    def nearest(self, rel: str, k: int = 3, exclude: set[str] = frozenset()) -> list[FileRef]:
        i = self.row.get(rel)
        if i is None:
            return []
        sims = self.feats @ self.feats[i]
        out = []
        for cls in self.target.classes:
            cand = [
                j
                for j in np.argsort(-sims)
                if self.labels[j] == cls and self.rels[j] not in exclude and j != i
            ][:k]
            out += [_ref(self.target, self.rels[j], cls, f"nearest {cls}") for j in cand]
        return out
