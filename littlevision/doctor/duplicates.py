"""The same image more than once: exact copies, near copies, train/validation leaks, and one
image filed under two classes.

"The same image" is byte-identical content (content hash) or a near copy (see
:mod:`.neighbours`: resized, re-encoded, slightly cropped or brightened). Each group is one
finding listing every member, so a user sees the whole story of one picture at once.
"""

from __future__ import annotations

from collections import defaultdict

from littlevision.doctor.context import Context
from littlevision.doctor.neighbours import connected_groups, neighbours
from littlevision.doctor.registry import get_check, register_check
from littlevision.doctor.report import Finding
from littlevision.doctor.scan import ImageRecord

_SUBSET_RANK = {"train": 0, None: 1, "validation": 2}


def _keeper(members: list[ImageRecord]) -> ImageRecord:
    """The copy a fix keeps: a training copy first (validation must stay unseen), then the
    oldest file (copies are made later), then the shortest, alphabetically first path (the
    original, not ``copy (2).jpg``)."""
    return min(members, key=lambda r: (_SUBSET_RANK.get(r.subset, 1), r.mtime, len(r.rel), r.rel))


def exact_groups(ctx: Context) -> list[list[int]]:
    """Record indices of byte-identical decodable files, grouped (groups of 2 or more)."""

    def compute() -> list[list[int]]:
        by_hash: dict[str, list[int]] = defaultdict(list)
        for r in ctx.records:
            if r.ok and r.hash:
                by_hash[r.hash].append(r.index)
        return sorted(g for g in by_hash.values() if len(g) > 1)

    return ctx.shared("exact_groups", compute)


def same_image_groups(ctx: Context) -> list[list[int]]:
    """Groups of records showing the same picture: exact copies and near copies, joined."""

    def compute() -> list[list[int]]:
        edges = [(g[0], other) for g in exact_groups(ctx) for other in g[1:]]
        edges += [tuple(p) for p in neighbours(ctx).pairs.tolist()]
        return connected_groups(edges)

    return ctx.shared("same_image_groups", compute)


def _names(members: list[ImageRecord], limit: int = 4) -> str:
    shown = ", ".join(r.rel for r in members[:limit])
    return shown + (f" and {len(members) - limit} more" if len(members) > limit else "")


def _member_details(members: list[ImageRecord]) -> list[dict]:
    return [{"file": r.rel, "label": r.label, "subset": r.subset} for r in members]


@register_check(
    "exact_duplicates",
    severity="error",
    fix="errors",
    title="Exact duplicates",
    advice="Keep one copy of each: duplicates over-weight those images and can leak "
    "between training and validation.",
)
def exact_duplicates(ctx: Context) -> list[Finding]:
    """Byte-identical files; a fix keeps one copy (a training copy when there is one)."""
    spec = get_check("exact_duplicates")
    out = []
    for group in exact_groups(ctx):
        members = [ctx.records[i] for i in group]
        keep = _keeper(members)
        others = [r.rel for r in members if r is not keep]
        out.append(
            spec.finding(
                [r.rel for r in members],
                f"{len(members)} byte-identical copies of one image: {_names(members)}.",
                quarantine=others,
                keep=keep.rel,
                hash=keep.hash,
                members=_member_details(members),
            )
        )
    return out


@register_check(
    "near_duplicates",
    severity="warning",
    title="Near duplicates",
    advice="Check these look-alikes: resized or re-encoded copies count twice in "
    "training and inflate validation scores.",
    needs=("similarity",),
)
def near_duplicates(ctx: Context) -> list[Finding]:
    """Resized, re-encoded, slightly cropped or brightened copies (not byte-identical)."""
    spec = get_check("near_duplicates")
    nb = neighbours(ctx)
    pair_info = {
        (int(a), int(b)): (c, h)
        for (a, b), c, h in zip(
            nb.pairs.tolist(), nb.cosine.tolist(), nb.hamming.tolist(), strict=True
        )
    }
    out = []
    for group in connected_groups(list(pair_info)):
        members = [ctx.records[i] for i in group]
        in_group = [(a, b, c, h) for (a, b), (c, h) in pair_info.items() if a in group]
        best = max((c for *_, c, _ in in_group if c == c), default=None)  # c == c: not NaN
        pairs = [
            {
                "a": ctx.records[a].rel,
                "b": ctx.records[b].rel,
                "cosine": None if c != c else round(c, 4),
                "hash_distance": h,
            }
            for a, b, c, h in in_group[:20]
        ]
        out.append(
            spec.finding(
                [r.rel for r in members],
                f"{len(members)} images are near-identical copies of one picture: {_names(members)}.",
                max_cosine=None if best is None else round(best, 4),
                pairs=pairs,
                members=_member_details(members),
            )
        )
    return out


@register_check(
    "leakage",
    severity="error",
    fix="errors",
    title="The same image in training and validation",
    advice="Remove the validation copies: a model is scored on images it trained on, "
    "so validation accuracy is too optimistic.",
    needs=("similarity",),
)
def leakage(ctx: Context) -> list[Finding]:
    """Groups of the same picture (exact or near) with members in both train and validation."""
    if not ctx.has_subsets:
        return []
    spec = get_check("leakage")
    exact = {i for g in exact_groups(ctx) for i in g}
    out = []
    for group in same_image_groups(ctx):
        members = [ctx.records[i] for i in group]
        subsets = {r.subset for r in members}
        if not {"train", "validation"} <= subsets:
            continue
        val = [r.rel for r in members if r.subset == "validation"]
        kind = (
            "exact"
            if all(i in exact for i in group) and len({r.hash for r in members}) == 1
            else "near"
        )
        out.append(
            spec.finding(
                [r.rel for r in members],
                f"The same image ({'byte-identical' if kind == 'exact' else 'near-identical'}) is in "
                f"training and validation: {_names(members)}.",
                quarantine=val,
                kind=kind,
                members=_member_details(members),
            )
        )
    return out


@register_check(
    "conflicting_labels",
    severity="error",
    fix="errors",
    title="The same image under two classes",
    advice="Decide which class is right and keep one copy there: contradictory "
    "labels teach the model nothing.",
    needs=("similarity",),
)
def conflicting_labels(ctx: Context) -> list[Finding]:
    """Groups of the same picture whose copies carry different labels.

    A fix sets every copy aside: which label is right cannot be known without a person.
    """
    spec = get_check("conflicting_labels")
    out = []
    for group in same_image_groups(ctx):
        members = [ctx.records[i] for i in group]
        labels = sorted({r.label for r in members if r.label is not None})
        if len(labels) < 2:
            continue
        out.append(
            spec.finding(
                [r.rel for r in members],
                f"The same image is labelled {' and '.join(repr(x) for x in labels)}: "
                f"{_names(members)}.",
                quarantine=[r.rel for r in members],
                labels=labels,
                members=_member_details(members),
            )
        )
    return out
