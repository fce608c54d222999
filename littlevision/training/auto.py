"""``--recipe auto``: the best (backbone, recipe) for the user's data within a time budget.

Which backbone pays off depends on the data (on a 120-breed dog set Lite2 beat Lite0 by nine
points; on five cat breeds by half a point), so it is measured on the data, not guessed. The
search runs the cheap candidates first and the dear ones only while the budget allows:

1. the bottleneck recipe on each backbone, smallest first: one embedding pass over the training
   split (and its mirrors) per backbone, through the same content-hash cache as ``doctor`` and
   ``train``, so a warm cache makes each candidate cost seconds. A candidate whose estimated
   cost does not fit the budget left is skipped, and the record says so (Lite0 is always run:
   the result is never worse-founded than today's default);
2. fine-tuning the best backbone, only where the quick checks say it can pay: many training
   images per class (below that it memorises them; measured +0.7 points for 82 s on 6 photos
   per class) and cross-validated errors left to win, and only when its estimated cost fits.

Every candidate is scored by cross-validation on the TRAINING split (out-of-fold predictions of
the linear head, or for fine-tuning one held-out fold of the training split); the validation
split is only touched after the choice, by the winner, for the reported figures, so the choice
cannot overfit it. The most accurate candidate leads; any candidate within the noise of the
leader (a paired standard error of the per-image differences) counts as a tie, and a tie goes
to the fastest model at inference. Every candidate's figures, cost and inference speed, and the
sentence that says why the winner won, go to ``card.json`` (``recipe_info.auto``) and the report.

Ctrl-C during the search keeps the best candidate finished so far and writes it as a complete
bundle (the record says the search was interrupted); a second Ctrl-C stops everything.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from littlevision.errors import UserError
from littlevision.metrics import log_loss
from littlevision.progress import NULL, Reporter
from littlevision.training.base import FitResult, Recipe, class_weights
from littlevision.training.registry import create_recipe, register_recipe

__all__ = [
    "DEFAULT_BUDGET_S",
    "Auto",
    "Candidate",
    "Choice",
    "Search",
    "choose_recipe",
    "parse_budget",
    "pick_winner",
]

#: Default search budget. Cold (nothing cached) on 1,000 images the three bottleneck candidates
#: fit in it on 2 cores; warm they take seconds (docs/recipes.md).
DEFAULT_BUDGET_S = 150.0
#: Backbones searched, cheapest first.
DEFAULT_BACKBONES = ("lite0", "lite1", "lite2")
#: Below this many training images in the smallest class, fine-tuning is not tried.
MIN_PER_CLASS_FINETUNE = 20
#: In the budgeted search, fine-tuning is a candidate only from this many images per class:
#: below it the bottleneck head on a bigger backbone buys more per second (issue #18's dog set:
#: fine-tuned Lite0 +0.7 points for 82 s, Lite2 bottleneck +9 points for 41 s).
MIN_PER_CLASS_FINETUNE_SEARCH = 300
#: Below this many validation images, the quick check cannot tell recipes apart.
MIN_VALIDATION = 20
#: From this many images per class, training from scratch is considered.
MIN_PER_CLASS_SCRATCH = 1000
#: Fine-tuning's measured cost: seconds per training image for lite0 at 288 px on 2 cores
#: (cats-vs-dogs: 2,000 images in ~3 min), scaled by each backbone's inference speed.
FINETUNE_S_PER_IMAGE_LITE0 = 0.09
#: Seconds kept back from the budget for the winner's final model, validation figures and bundle.
RESERVE_S = 15.0


@dataclass(frozen=True)
class Choice:
    """The recipe ``auto`` picked and the sentence that explains it."""

    recipe: str
    why: str


def choose_recipe(counts: dict[str, int], n_val: int, bottleneck_accuracy: float | None) -> Choice:
    """Whether fine-tuning (or scratch) can pay, from the data's size and a measured accuracy.

    Args:
        counts: Training images per class.
        n_val: Images the accuracy was measured on (auto: the cross-validated training images).
        bottleneck_accuracy: The bottleneck model's accuracy (None: not measured).

    Returns:
        A :class:`Choice`.
    """
    smallest = min(counts.values()) if counts else 0
    n_classes = max(len(counts), 2)
    chance = 1.0 / n_classes
    if smallest < MIN_PER_CLASS_FINETUNE:
        return Choice(
            "bottleneck",
            f"the smallest class has {smallest} training images "
            f"(< {MIN_PER_CLASS_FINETUNE}): fine-tuning would memorise them, a linear "
            "classifier on frozen features is the safe choice",
        )
    if n_val < MIN_VALIDATION or bottleneck_accuracy is None:
        return Choice(
            "bottleneck",
            f"only {n_val} validation images: too few to check that "
            "fine-tuning does better, so the simplest model is kept",
        )
    pct = f"{100 * bottleneck_accuracy:.1f}%"
    if bottleneck_accuracy >= 1.0:
        return Choice(
            "bottleneck",
            f"the bottleneck model is already right on all {n_val} "
            "validation images: nothing is left for fine-tuning to win",
        )
    if bottleneck_accuracy < chance + 0.25 * (1 - chance) and smallest >= MIN_PER_CLASS_SCRATCH:
        return Choice(
            "scratch",
            f"pretrained features barely separate the classes ({pct} vs "
            f"{100 * chance:.0f}% by chance) and every class has >= {smallest} images: "
            "a network trained from scratch can learn features of its own",
        )
    return Choice(
        "finetune",
        f"the bottleneck model gets {pct} on {n_val} validation images and "
        f"every class has >= {smallest} training images: fine-tuning the backbone's top "
        "blocks (from a bottleneck head, kept if no epoch beats it) can do better",
    )


def parse_budget(text: str | float | int | None) -> float:
    """Seconds from ``"150"``, ``"90s"``, ``"5m"``, ``"2m30s"`` or ``"1h"``.

    Raises:
        UserError: The text is not a positive duration.
    """
    if text is None:
        return DEFAULT_BUDGET_S
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        s = text.strip().lower().replace(" ", "")
        match = re.fullmatch(
            r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?:in)?)?(?:(\d+(?:\.\d+)?)s?)?", s
        )
        if not s or not match or not any(match.groups()):
            raise UserError(
                f"--budget must be a duration such as 90s, 5m or 2m30s. Received: {text!r}."
            )
        h, m, sec = (float(g) if g else 0.0 for g in match.groups())
        seconds = 3600 * h + 60 * m + sec
    if not seconds > 0:
        raise UserError(f"--budget must be more than 0 seconds. Received: {text!r}.")
    return seconds


class _OutOfBudget(Exception):
    """A candidate ran past the budget: stop it, keep what it cached."""


@dataclass
class Candidate:
    """One (backbone, recipe) the search ran or skipped, with what it measured and cost.

    Attributes:
        backbone: Backbone name.
        recipe: ``bottleneck`` or ``finetune``.
        status: ``done``, ``skipped`` (with ``note`` saying why), ``stopped`` (ran out of
            budget) or ``interrupted`` (Ctrl-C).
        cv_accuracy: Out-of-fold accuracy on the training split (fine-tuning: on one held-out
            fold of it).
        cv_log_loss: Out-of-fold log-loss, same images.
        cv_images: How many training images those figures are on.
        cost_s: Wall seconds the candidate took (embedding, cross-validation, training).
        estimated_s: What the search expected it to take before starting it.
        images_per_s: Inference speed of the backbone (ONNX Runtime, batches of 16, this
            machine, decoding excluded).
        image_size: Input side.
        note: Why it was skipped, or what it did.
    """

    backbone: str
    recipe: str
    status: str = "pending"
    cv_accuracy: float | None = None
    cv_log_loss: float | None = None
    cv_images: int = 0
    cost_s: float = 0.0
    estimated_s: float | None = None
    images_per_s: float | None = None
    image_size: int | None = None
    note: str = ""
    correct: np.ndarray | None = field(default=None, repr=False)  # [N_train] 1/0/NaN

    @property
    def label(self) -> str:
        return f"{self.backbone} {self.recipe}"

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "correct"}
        for key in ("cv_accuracy", "cv_log_loss", "cost_s", "estimated_s", "images_per_s"):
            if out[key] is not None:
                out[key] = round(float(out[key]), 5 if key.startswith("cv") else 2)
        return out


@dataclass
class Search:
    """What the search did: every candidate, the winner and why, the budget and its use."""

    candidates: list[Candidate]
    winner: int
    why: str
    budget_s: float
    spent_s: float
    interrupted: bool = False

    @property
    def best(self) -> Candidate:
        return self.candidates[self.winner]

    def to_dict(self) -> dict[str, Any]:
        return {
            "chosen": self.best.recipe,
            "backbone": self.best.backbone,
            "why": self.why,
            "chosen_by": "cross-validation on the training split (validation split untouched)",
            "budget_s": round(self.budget_s, 1),
            "search_s": round(self.spent_s, 1),
            "interrupted": self.interrupted,
            "candidates": [c.to_dict() for c in self.candidates],
        }


def _paired(a: Candidate, b: Candidate) -> tuple[float, float, int]:
    """Mean per-image accuracy difference a - b on the images both were scored on, its SE, n."""
    both = ~(np.isnan(a.correct) | np.isnan(b.correct))
    d = a.correct[both] - b.correct[both]
    n = int(both.sum())
    if n == 0:
        return 0.0, math.inf, 0
    se = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf
    return float(d.mean()), max(se, 1.0 / n), n


def pick_winner(candidates: list[Candidate]) -> tuple[int, str]:
    """The leader by cross-validated accuracy; within its noise, the fastest model.

    Candidates are compared on the training images both were scored on (paired). A candidate
    whose accuracy is within one paired standard error of the leader's ties with it, and ties
    go to the higher inference speed.

    Args:
        candidates: With ``status == "done"``, ``correct`` and ``images_per_s`` set for some.

    Returns:
        (index of the winner in ``candidates``, the sentence that says why).

    Raises:
        ValueError: No candidate is done.
    """
    done = [i for i, c in enumerate(candidates) if c.status == "done"]
    if not done:
        raise ValueError("Expected at least one finished candidate. Received: none.")
    leader = done[0]
    for i in done[1:]:
        diff, _, _ = _paired(candidates[i], candidates[leader])
        better_loss = (candidates[i].cv_log_loss or math.inf) < (
            candidates[leader].cv_log_loss or math.inf
        )
        if diff > 0 or (diff == 0 and better_loss):
            leader = i
    lead = candidates[leader]
    ties = []
    for i in done:
        diff, se, _ = _paired(candidates[i], lead)
        if i == leader or -diff <= se:
            ties.append(i)
    winner = max(ties, key=lambda i: (candidates[i].images_per_s or 0.0, -i))
    win = candidates[winner]
    others = [candidates[i] for i in done if i != winner]
    acc = f"{100 * win.cv_accuracy:.1f}%" if win.cv_accuracy is not None else "?"
    why = f"{win.label}: cross-validated accuracy {acc} on {win.cv_images} training images"
    if not others:
        return winner, why + " (the only candidate that fit the budget)"
    if winner != leader:
        diff, se, n = _paired(lead, win)
        return winner, (
            f"{why}, within the noise of the most accurate, {lead.label} "
            f"({100 * lead.cv_accuracy:.1f}%, +{100 * diff:.1f} points, paired SE "
            f"{100 * se:.1f} on {n} images), and faster at inference "
            f"({win.images_per_s:.0f} vs {lead.images_per_s:.0f} img/s)"
        )
    parts = []
    for o in others:
        diff, se, _ = _paired(win, o)
        parts.append(
            f"{o.label} {100 * o.cv_accuracy:.1f}%"
            + (f" (+{100 * diff:.1f} points, {diff / se:.1f} SE)" if diff > 0 else "")
        )
    tied = [candidates[i] for i in ties if i != winner]
    tail = (
        f"; tied within noise with {', '.join(t.label for t in tied)}, and the fastest of them"
        if tied
        else ""
    )
    return winner, f"{why}, the most accurate (vs {'; '.join(parts)}){tail}"


def cross_validate_head(
    features: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    n_classes: int,
    seed: int = 0,
    cs: int = 9,
) -> tuple[np.ndarray, float]:
    """Out-of-fold probabilities of the bottleneck's linear head, its strength chosen as it is.

    The same standardisation, folds (images and their mirrors kept together), class weights
    and regularisation grid as :func:`~littlevision.training.bottleneck.fit_linear_head`; the
    strength with the lowest mean held-out log-loss is the one whose out-of-fold predictions
    are returned.

    Args:
        features: [N, D] features (images, then their mirrors).
        y: [N] class indices.
        groups: [N] image index of each row (a mirror has its image's).
        n_classes: C.
        seed: Seed for the folds.
        cs: Regularisation strengths tried.

    Returns:
        (probabilities [N, C] out of fold, NaN rows where no fold could hold them out; the
        chosen C).
    """
    from sklearn.model_selection import StratifiedGroupKFold
    from threadpoolctl import threadpool_limits

    from littlevision.training.linear import fit_softmax, predict_proba

    present = np.unique(y)
    mu = features.mean(axis=0)
    sigma = features.std(axis=0) + 1e-6
    z = ((features - mu) / sigma).astype(np.float32)
    local = np.searchsorted(present, y)
    weights = class_weights(y, n_classes)
    sw = (
        np.ones(len(y), np.float32)
        if not weights
        else np.array([weights[int(c)] for c in y], np.float32)
    )
    images = np.unique(groups, return_index=True)[1]
    n_images = len(images)
    min_count = np.bincount(y[images])[present].min()
    folds = int(min(5 if n_images <= 1000 else 3, min_count))
    grid = sorted(np.logspace(-4, 0, cs))
    oof = np.full((len(grid), len(y), n_classes), np.nan, np.float32)
    if folds < 2 or len(present) < 2:
        return oof[0], 0.01
    cv = StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(z, local, groups)
    with threadpool_limits(1):
        for train_idx, test_idx in cv:
            fit = None
            for j, c in enumerate(grid):
                fit = fit_softmax(
                    z[train_idx], local[train_idx], len(present), c, sw[train_idx], init=fit
                )
                probs = np.zeros((len(test_idx), n_classes), np.float32)
                probs[:, present] = predict_proba(fit, z[test_idx])
                oof[j, test_idx] = probs
    losses = [log_loss(y, oof[j]) for j in range(len(grid))]
    best = int(np.argmin(losses))
    return oof[best], float(grid[best])


def _decode_probe(paths, size: int, n: int = 8) -> np.ndarray:
    from littlevision.data.decode import decode_many

    images = decode_many(list(paths)[:n], size).images
    if len(images) == 0:
        images = np.random.default_rng(0).integers(0, 256, (n, size, size, 3), np.uint8)
    if len(images) < n:
        images = np.resize(images, (n, *images.shape[1:]))
    return images


def _speed(run, images: np.ndarray, repeats: int = 2) -> float:
    """Images per second of ``run(images)`` after one warm-up call."""
    run(images)
    t0 = time.perf_counter()
    for _ in range(repeats):
        run(images)
    return repeats * len(images) / max(time.perf_counter() - t0, 1e-9)


def _n_uncached(embedder, paths) -> int:
    """How many of ``paths`` (or their mirrors) miss the embedding cache: what a pass costs."""
    return len(embedder.cached_views(paths, (False, True)).todo)


@register_recipe("auto")
class Auto(Recipe):
    """Search (backbone x recipe) within a time budget; keep the best by cross-validation.

    Args:
        backbone: Set to the winner's backbone by ``fit`` (``train`` passes its default in).
        backbones: Backbones to search, cheapest first (comma-separated or a sequence).
        budget: Seconds, or a duration (``"5m"``), for the search.
        image_size: Input side for every candidate (each backbone's own when None).
        epochs: Passed to fine-tuning when it is tried.
        seed: Seed for the folds and every recipe.
        resume: Accepted for ``train --resume``; embeddings are cached, so a re-run resumes.
    """

    def __init__(
        self,
        backbone: str | None = None,
        backbones: str | tuple[str, ...] | list[str] | None = None,
        budget: str | float | None = None,
        image_size: int | None = None,
        epochs: int | None = None,
        seed: int = 0,
        resume: bool = False,
    ):
        self.backbone = backbone
        self.backbones = backbones
        self.budget = budget
        self.image_size = image_size
        self.epochs = epochs
        self.seed = seed
        self.resume = resume

    @property
    def model_backbone_(self) -> str | None:
        """The backbone inside the chosen model (the search's winner)."""
        return getattr(self, "chosen_backbone_", None) or self.backbone

    def _backbones(self) -> list[str]:
        from littlevision.models import list_backbones

        names = self.backbones or DEFAULT_BACKBONES
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",") if n.strip()]
        known = list_backbones()
        for name in names:
            if name not in known:
                raise UserError(f"Unknown backbone '{name}'. Known backbones: {', '.join(known)}.")
        return list(dict.fromkeys(names))

    def _fit(self, train, val, reporter: Reporter = NULL, output=None) -> FitResult:
        budget = parse_budget(self.budget)
        search = self.search(train, budget, reporter)
        best = search.best
        reporter.log(f"auto: chose {search.why}")
        self.chosen_backbone_ = best.backbone
        self.chosen_ = best.recipe
        params: dict[str, Any] = {"backbone": best.backbone, "seed": self.seed}
        if self.image_size:
            params["image_size"] = self.image_size
        if best.recipe == "finetune":
            result = self._finetuned_
            result = self._final_finetune(result, val, reporter)
        else:
            reporter.log(f"auto: building the {best.label} model on the whole training split")
            chosen = create_recipe("bottleneck", **params)
            chosen.fit(train, val, reporter=reporter, output=output)
            result = chosen.result
        y = val.y[result.val_indices]
        accuracy = float((result.val_probabilities.argmax(axis=1) == y).mean()) if len(y) else None
        result.timings = {"search_s": search.spent_s, **result.timings}
        result.info = {
            **result.info,
            "auto": {
                **search.to_dict(),
                "counts_train": train.counts(),
                "n_val": int(len(y)),
                "validation_accuracy": accuracy,
                "validation_log_loss": log_loss(y, result.val_probabilities),
            },
        }
        return result

    # -- the search ---------------------------------------------------------------------------

    def search(self, train, budget_s: float, reporter: Reporter = NULL) -> Search:
        """Run the candidates on the training split only; see the module docstring.

        Ctrl-C (KeyboardInterrupt) ends the search with the best candidate finished so far;
        before any has finished it propagates.
        """
        t0 = time.perf_counter()
        self._budget_s_ = budget_s
        names = self._backbones()
        candidates = [Candidate(b, "bottleneck") for b in names]
        interrupted = False

        def left() -> float:
            return budget_s - (time.perf_counter() - t0)

        try:
            for i, cand in enumerate(candidates):
                self._run_bottleneck(cand, train, left, reporter, always=(i == 0))
            self._maybe_finetune(candidates, train, left, reporter)
        except KeyboardInterrupt:
            interrupted = True
            for c in candidates:
                if c.status in ("pending", "running"):
                    c.status = "interrupted" if c.status == "running" else "skipped"
                    c.note = c.note or "the search was interrupted (Ctrl-C)"
            if not any(c.status == "done" for c in candidates):
                raise
            reporter.log("auto: interrupted: keeping the best model found so far")
        winner, why = pick_winner(candidates)
        if interrupted:
            why += " (search interrupted by Ctrl-C; the best finished candidate is kept)"
        return Search(candidates, winner, why, budget_s, time.perf_counter() - t0, interrupted)

    def _estimate(self, cand: Candidate, embedder, n_missing: int) -> float:
        """Seconds a bottleneck candidate should take, from the first one's measured speed.

        Speed scales with the backbone's multiply-adds (BackboneSpec); a backbone whose ONNX
        file is not cached yet also pays its export (measured ~10 s for Lite0 on 2 cores).
        """
        from littlevision.cache import cache_dir
        from littlevision.models import get_backbone_spec

        spec = get_backbone_spec(cand.backbone)
        ref_speed, ref_macs = self._reference_
        macs = spec.relative_cost(embedder.image_size)
        speed = ref_speed * ref_macs / macs if macs and ref_macs else ref_speed
        exported = any(cache_dir("onnx").glob(f"{embedder.key}-features.onnx"))
        export = 0.0 if exported else 12.0 * max(macs / ref_macs, 1.0) if ref_macs else 12.0
        # each missing image: decoded once, the backbone run on it and its mirror; then the CV
        # the cross-validation costs what the first candidate's did (same rows and classes)
        cv = getattr(self, "_cv_s_", 4.0)
        return export + n_missing * (2.0 / speed + 0.004) + 0.002 * len(self._paths_) + cv

    def _run_bottleneck(self, cand: Candidate, train, left, reporter, always: bool) -> None:
        from littlevision.features import Embedder
        from littlevision.models import get_backbone_spec

        started = time.perf_counter()
        embedder = Embedder(cand.backbone, self.image_size)
        cand.image_size = embedder.image_size
        cand.status = "running"
        missing = _n_uncached(embedder, train.paths)
        budget_left = left() - RESERVE_S
        if not always:
            self._paths_ = train.paths
            cand.estimated_s = self._estimate(cand, embedder, missing)
            reporter.log(
                f"auto: {cand.label}: {missing} of {len(train)} training images to embed, "
                f"est. {cand.estimated_s:.0f} s, {max(left(), 0):.0f} s of budget left"
            )
            if cand.estimated_s > budget_left:
                cand.status = "skipped"
                cand.note = (
                    f"estimated {cand.estimated_s:.0f} s ({missing} images to embed), "
                    f"{max(budget_left, 0):.0f} s of budget left"
                )
                cand.cost_s = time.perf_counter() - started
                reporter.log(f"auto: skipped {cand.label}: {cand.note}")
                return
        else:
            reporter.log(
                f"auto: {cand.label} first (always run): {missing} of {len(train)} training "
                f"images to embed, {max(left(), 0):.0f} s of budget left"
            )
        cand.status = "running"
        with reporter.stage(f"auto: {cand.backbone}: inference speed"):
            probe = _decode_probe(train.paths, embedder.image_size)
            cand.images_per_s = _speed(embedder.embed_array, probe)
        if always:
            spec = get_backbone_spec(cand.backbone)
            self._reference_ = (cand.images_per_s, spec.relative_cost(embedder.image_size))
        try:
            with reporter.stage(
                f"auto: {cand.backbone}: embed train (and mirrored)", total=len(train)
            ) as st:

                def advance(n: int) -> None:
                    st.advance(n)
                    if not always and left() < RESERVE_S / 3:
                        raise _OutOfBudget  # the estimate was wrong (a busier machine)

                plain, mirrored = embedder.embed_paths_and_mirrors(train.paths, progress=advance)
        except _OutOfBudget:
            cand.status = "stopped"
            cand.cost_s = time.perf_counter() - started
            cand.note = (
                f"ran out of budget while embedding (estimated {cand.estimated_s:.0f} s, took "
                f"{cand.cost_s:.0f} s); what it embedded is cached for the next run"
            )
            reporter.log(f"auto: stopped {cand.label}: {cand.note}")
            return
        feats = np.concatenate([plain.features, mirrored.features])
        y = np.concatenate([train.y[plain.ok_indices], train.y[mirrored.ok_indices]])
        groups = np.concatenate([plain.ok_indices, mirrored.ok_indices])
        t_cv = time.perf_counter()
        with reporter.stage(f"auto: {cand.backbone}: cross-validate the head"):
            oof, c = cross_validate_head(feats, y, groups, len(train.classes), self.seed)
        if always:
            self._cv_s_ = time.perf_counter() - t_cv
        rows = np.arange(len(plain.ok_indices))  # the images themselves, not their mirrors
        probs, yy = oof[rows], y[rows]
        scored = ~np.isnan(probs).any(axis=1)
        correct = np.full(len(train), np.nan)
        correct[plain.ok_indices[scored]] = (probs[scored].argmax(axis=1) == yy[scored]).astype(
            float
        )
        cand.correct = correct
        cand.cv_images = int(scored.sum())
        cand.cv_accuracy = float(np.nanmean(correct)) if cand.cv_images else None
        cand.cv_log_loss = log_loss(yy[scored], probs[scored])
        cand.cost_s = time.perf_counter() - started
        cand.status = "done" if cand.cv_images else "skipped"
        cand.note = f"linear head, C={c:g}, {len(np.unique(groups[: len(rows)]))} images + mirrors"
        reporter.log(
            f"auto: {cand.label}: cross-validated accuracy "
            f"{100 * (cand.cv_accuracy or 0):.1f}%, log-loss {cand.cv_log_loss or 0:.3f}, "
            f"{cand.images_per_s:.0f} img/s, {cand.cost_s:.0f} s ({max(left(), 0):.0f} s left)"
        )

    def _maybe_finetune(self, candidates: list[Candidate], train, left, reporter) -> None:
        done = [c for c in candidates if c.status == "done"]
        if not done:
            return
        lead = candidates[pick_winner(candidates)[0]]
        counts = train.counts()
        smallest = min(counts.values())
        cand = Candidate(lead.backbone, "finetune", image_size=lead.image_size)
        candidates.append(cand)
        reasons = []
        # With the default budget fine-tuning must earn its minutes on data size alone; a
        # budget the user raised buys it from MIN_PER_CLASS_FINETUNE images per class.
        generous = self._budget_s_ > DEFAULT_BUDGET_S
        least = MIN_PER_CLASS_FINETUNE if generous else MIN_PER_CLASS_FINETUNE_SEARCH
        if smallest < least:
            reasons.append(
                f"the smallest class has {smallest} training images (< {least}): "
                + (
                    "fine-tuning would memorise them"
                    if generous
                    else "a bigger backbone's features pay more per second than fine-tuning "
                    "on so few (a --budget above the default tries it from "
                    f"{MIN_PER_CLASS_FINETUNE} per class)"
                )
            )
        elif (lead.cv_accuracy or 0) >= 1.0:
            reasons.append("the bottleneck head makes no cross-validated error: nothing to win")
        cand.images_per_s = lead.images_per_s
        speed0 = next((c.images_per_s for c in done if c.backbone == "lite0"), None)
        ratio = (speed0 / lead.images_per_s) if (speed0 and lead.images_per_s) else 1.0
        # + ~45 s that do not scale with the images: building the network in Keras, exporting
        # its frozen bottom to ONNX, decoding at the fine-tuning size (measured on 2 cores)
        cand.estimated_s = FINETUNE_S_PER_IMAGE_LITE0 * len(train) * 0.8 * ratio + 45.0
        if not reasons and cand.estimated_s > left() - RESERVE_S:
            reasons.append(
                f"estimated {cand.estimated_s:.0f} s, {max(left() - RESERVE_S, 0):.0f} s of "
                "budget left (raise --budget to try it)"
            )
        if reasons:
            cand.status = "skipped"
            cand.note = reasons[0]
            reporter.log(f"auto: skipped {cand.label}: {cand.note}")
            return
        self._run_finetune(cand, lead, train, left, reporter)

    def _run_finetune(self, cand: Candidate, lead: Candidate, train, left, reporter) -> None:
        """Fine-tune on the training split less one held-out fold; score on that fold."""
        from sklearn.model_selection import StratifiedKFold

        started = time.perf_counter()
        cand.status = "running"
        reporter.log(
            f"auto: trying {cand.label} on 80% of the training split, scored on the other 20% "
            f"(est. {cand.estimated_s:.0f} s, {max(left(), 0):.0f} s of budget left)"
        )
        folds = StratifiedKFold(5, shuffle=True, random_state=self.seed)
        inner, held = next(folds.split(np.zeros(len(train)), train.y))
        params: dict[str, Any] = {"backbone": cand.backbone, "seed": self.seed}
        if self.image_size:
            params["image_size"] = self.image_size
        if self.epochs:
            params["epochs"] = self.epochs
        recipe = create_recipe("finetune", **params)
        recipe.fit(train[inner], train[held], reporter=reporter)
        result = recipe.result
        rows = held[result.val_indices]
        yy = train.y[rows]
        correct = np.full(len(train), np.nan)
        correct[rows] = (result.val_probabilities.argmax(axis=1) == yy).astype(float)
        cand.correct = correct
        cand.cv_images = len(rows)
        cand.cv_accuracy = float(correct[rows].mean()) if len(rows) else None
        cand.cv_log_loss = log_loss(yy, result.val_probabilities)
        cand.image_size = result.image_size
        if lead.images_per_s and lead.image_size:  # same network, more pixels (288 px for lite0)
            cand.images_per_s = lead.images_per_s * (lead.image_size / result.image_size) ** 2
        cand.cost_s = time.perf_counter() - started
        cand.status = "done" if len(rows) else "skipped"
        cand.note = f"trained on {len(inner)} training images, scored on the other {len(held)}"
        self._finetuned_ = result
        reporter.log(
            f"auto: {cand.label}: held-out accuracy {100 * (cand.cv_accuracy or 0):.1f}% "
            f"({lead.label} on the same images: "
            f"{100 * float(np.nanmean(lead.correct[rows])):.1f}%), {cand.cost_s:.0f} s"
        )

    def _final_finetune(self, result: FitResult, val, reporter) -> FitResult:
        """The fine-tuned model's probabilities on the real validation split."""
        from littlevision.data.decode import decode_many

        with reporter.stage("auto: validate the fine-tuned model", total=len(val)):
            decoded = decode_many(val.paths, result.image_size)
            probs = result.model.predict(decoded.images.astype(np.float32), verbose=0)
        result.val_probabilities = np.asarray(probs)
        result.val_indices = np.asarray(decoded.ok_indices, dtype=np.int64)
        result.skipped = list(result.skipped) + list(decoded.failures)
        return result
