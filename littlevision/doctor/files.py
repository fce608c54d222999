"""Files that cannot be used at all: unreadable or empty, cut short, not images, too large.

These come straight from the scan's :class:`~littlevision.data.decode.DecodeError` reasons, so
the doctor calls a file broken exactly when training would fail on it, and never otherwise: a
CMYK JPEG, a 16-bit PNG or a PNG named ``.jpg`` decodes fine and is at most an info.
"""

from __future__ import annotations

from littlevision.doctor.context import Context
from littlevision.doctor.registry import get_check, register_check
from littlevision.doctor.report import Finding


def _broken(ctx: Context, check: str, reasons: set[str]) -> list[Finding]:
    spec = get_check(check)
    out = []
    for rec in ctx.records:
        if rec.error is not None and rec.error.reason in reasons:
            message = f"{rec.rel}: {rec.error.words}."
            out.append(
                spec.finding(
                    [rec.rel],
                    message,
                    quarantine=[rec.rel],
                    reason=rec.error.reason,
                    detail=rec.error.detail,
                    label=rec.label,
                    subset=rec.subset,
                )
            )
    return out


@register_check(
    "unreadable",
    severity="error",
    fix="errors",
    title="Unreadable or empty files",
    advice="Re-copy these files from their source, or remove them.",
)
def unreadable(ctx: Context) -> list[Finding]:
    """Files of zero bytes, or that cannot be opened (permissions, odd colour modes)."""
    return _broken(ctx, "unreadable", {"empty", "unreadable"})


@register_check(
    "truncated",
    severity="error",
    fix="errors",
    title="Truncated or corrupt images",
    advice="The download or copy was cut short: fetch these files again.",
)
def truncated(ctx: Context) -> list[Finding]:
    """Images whose header is fine but whose pixel data stops early or is corrupt."""
    return _broken(ctx, "truncated", {"truncated"})


@register_check(
    "not_an_image",
    severity="error",
    fix="errors",
    title="Files that are not images",
    advice="Move stray files (Thumbs.db, notes, videos) out of the class folders.",
)
def not_an_image(ctx: Context) -> list[Finding]:
    """Files whose content is no image format, whatever their name (Thumbs.db, .txt, ...)."""
    return _broken(ctx, "not_an_image", {"not_image"})


@register_check(
    "decompression_bomb",
    severity="error",
    fix="errors",
    title="Images too large to decode safely",
    advice="Downscale these images (or raise the limit if they are genuine).",
)
def decompression_bomb(ctx: Context) -> list[Finding]:
    """Images whose header claims more pixels than the safety limit (a 'decompression bomb')."""
    return _broken(ctx, "decompression_bomb", {"too_large"})
