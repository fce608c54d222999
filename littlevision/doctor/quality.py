"""Images that decode but show little: tiny, extremely elongated, blank, too dark, overexposed,
very blurry.

Thresholds live in :class:`~littlevision.doctor.config.DoctorConfig`; the measures are the pure
functions of :mod:`.measures`, computed by the scan on one small decode per image. A blank image
is reported once (black: dark, white: overexposed, other colours: blank; never also blurry), a
small one is not judged for blur (its upscaled decode is soft by construction).
"""

from __future__ import annotations

from collections.abc import Callable

from littlevision.doctor.context import Context
from littlevision.doctor.registry import get_check, register_check
from littlevision.doctor.report import Finding
from littlevision.doctor.scan import ImageRecord


def _per_image(
    ctx: Context,
    check: str,
    flag: Callable[[ImageRecord], str | None],
    **extra: Callable[[ImageRecord], object],
) -> list[Finding]:
    spec = get_check(check)
    out = []
    for rec in ctx.records:
        if not rec.ok or rec.info is None:
            continue
        why = flag(rec)
        if why:
            out.append(
                spec.finding(
                    [rec.rel],
                    f"{rec.rel}: {why}.",
                    label=rec.label,
                    width=rec.info.width,
                    height=rec.info.height,
                    **{k: fn(rec) for k, fn in extra.items()},
                )
            )
    return out


def _is_dark(ctx: Context, rec: ImageRecord) -> bool:
    return rec.measures.get("dark_level", 255.0) < ctx.config.dark_level


def _is_overexposed(ctx: Context, rec: ImageRecord) -> bool:
    return rec.measures.get("light_level", 0.0) > ctx.config.light_level


def _is_blank(ctx: Context, rec: ImageRecord) -> bool:
    """Nearly one colour, and that colour neither near-black (dark) nor near-white (overexposed):
    a nearly constant image is reported once, under the most telling name."""
    return (
        rec.measures.get("contrast", 255.0) < ctx.config.blank_contrast
        and not _is_dark(ctx, rec)
        and not _is_overexposed(ctx, rec)
    )


@register_check(
    "tiny",
    severity="warning",
    title="Tiny images",
    advice="Replace them with larger versions if you have them: the model sees them "
    "blown up and blurred.",
)
def tiny(ctx: Context) -> list[Finding]:
    """Images whose shorter side is under ``config.tiny_side`` pixels."""
    limit = ctx.config.tiny_side

    def flag(rec: ImageRecord) -> str | None:
        w, h = rec.info.width, rec.info.height
        return f"only {w}x{h} pixels (under {limit} px on a side)" if min(w, h) < limit else None

    return _per_image(ctx, "tiny", flag)


@register_check(
    "extreme_aspect_ratio",
    severity="warning",
    title="Extreme aspect ratios",
    advice="Crop them closer to square around the subject: they are squashed when "
    "resized for the model.",
)
def extreme_aspect_ratio(ctx: Context) -> list[Finding]:
    """Images more than ``config.max_aspect`` times longer than wide (or the reverse)."""
    limit = ctx.config.max_aspect

    def flag(rec: ImageRecord) -> str | None:
        w, h = rec.info.width, rec.info.height
        ratio = max(w, h) / max(min(w, h), 1)
        return f"{w}x{h} is {ratio:.1f} times longer than wide" if ratio > limit else None

    return _per_image(
        ctx,
        "extreme_aspect_ratio",
        flag,
        aspect_ratio=lambda r: round(
            max(r.info.width, r.info.height) / max(min(r.info.width, r.info.height), 1), 3
        ),
    )


@register_check(
    "blank",
    severity="warning",
    title="Blank images",
    advice="Remove them: a single-colour image carries no information about its class.",
)
def blank(ctx: Context) -> list[Finding]:
    """Nearly constant mid-tone images (luma standard deviation under ``config.blank_contrast``)."""

    def flag(rec: ImageRecord) -> str | None:
        if not _is_blank(ctx, rec):
            return None
        return f"nearly a single colour (contrast {rec.measures['contrast']:.1f} of 255)"

    return _per_image(ctx, "blank", flag, contrast=lambda r: round(r.measures["contrast"], 3))


@register_check(
    "dark",
    severity="warning",
    title="Very dark images",
    advice="Brighten them or take the photos again: the subject is hard to see.",
)
def dark(ctx: Context) -> list[Finding]:
    """Images where 90% of pixels are darker than ``config.dark_level``."""

    def flag(rec: ImageRecord) -> str | None:
        if not _is_dark(ctx, rec):
            return None
        level = rec.measures["dark_level"]
        return f"very dark (90% of pixels under {level:.0f} of 255)"

    return _per_image(ctx, "dark", flag, dark_level=lambda r: round(r.measures["dark_level"], 2))


@register_check(
    "overexposed",
    severity="warning",
    title="Overexposed images",
    advice="Replace them if you can: washed-out photos lose the subject's detail.",
)
def overexposed(ctx: Context) -> list[Finding]:
    """Images where 90% of pixels are brighter than ``config.light_level``."""

    def flag(rec: ImageRecord) -> str | None:
        if not _is_overexposed(ctx, rec):
            return None
        level = rec.measures["light_level"]
        return f"washed out (90% of pixels over {level:.0f} of 255)"

    return _per_image(
        ctx, "overexposed", flag, light_level=lambda r: round(r.measures["light_level"], 2)
    )


@register_check(
    "blurry",
    severity="warning",
    title="Very blurry images",
    advice="Replace them with sharp photos if you can: blur hides what tells classes apart.",
)
def blurry(ctx: Context) -> list[Finding]:
    """Images with almost no fine detail (sharpness under ``config.blur_sharpness``)."""

    def flag(rec: ImageRecord) -> str | None:
        if min(rec.info.width, rec.info.height) < ctx.config.scan_size or (
            rec.measures.get("contrast", 255.0) < ctx.config.blank_contrast
        ):
            return None
        value = rec.measures.get("sharpness", 1.0)
        if value >= ctx.config.blur_sharpness:
            return None
        return f"very blurry (sharpness {value:.3f})"

    return _per_image(ctx, "blurry", flag, sharpness=lambda r: round(r.measures["sharpness"], 5))
