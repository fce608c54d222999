"""How the images are spread over classes: strong imbalance, classes with too few images.

Dataset-level findings (no file is wrong), so they are never fixed automatically: the remedy is
more photos, which only the user can take.
"""

from __future__ import annotations

from collections import Counter

from littlevision.doctor.context import Context
from littlevision.doctor.registry import get_check, register_check
from littlevision.doctor.report import Finding


def _usable_counts(ctx: Context) -> dict[str, int]:
    """Decodable images per class, every class listed (a class of broken files counts 0)."""
    counter = Counter(r.label for r in ctx.records if r.ok and r.label is not None)
    return {name: counter.get(name, 0) for name in ctx.dataset.classes}


@register_check(
    "class_imbalance",
    severity="warning",
    title="Strong class imbalance",
    advice="Add images to the small classes if you can; littlevision weights classes "
    "during training, but a model learns little from a handful of examples.",
)
def class_imbalance(ctx: Context) -> list[Finding]:
    """Largest class over smallest above ``config.imbalance_ratio``."""
    counts = {k: v for k, v in _usable_counts(ctx).items() if v > 0}
    if len(counts) < 2:
        return []
    largest = max(counts, key=counts.get)
    smallest = min(counts, key=counts.get)
    ratio = counts[largest] / counts[smallest]
    if ratio <= ctx.config.imbalance_ratio:
        return []
    spec = get_check("class_imbalance")
    return [
        spec.finding(
            [],
            f"'{largest}' has {counts[largest]} images but '{smallest}' only "
            f"{counts[smallest]} ({ratio:.1f} to 1).",
            counts=counts,
            ratio=round(ratio, 2),
        )
    ]


@register_check(
    "too_few_images",
    severity="warning",
    title="Classes with too few images",
    advice="Aim for at least a few dozen images per class; below ten, results are mostly luck.",
)
def too_few_images(ctx: Context) -> list[Finding]:
    """Classes with fewer than ``config.min_per_class`` decodable images (zero included)."""
    spec = get_check("too_few_images")
    limit = ctx.config.min_per_class
    out = []
    for name, n in _usable_counts(ctx).items():
        if n < limit:
            out.append(
                spec.finding(
                    [],
                    f"Class '{name}' has {n} usable image{'s' if n != 1 else ''}"
                    f" (fewer than {limit}).",
                    label=name,
                    count=n,
                )
            )
    return out
