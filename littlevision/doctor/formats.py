"""Things worth knowing that training handles fine: a format that differs from the extension,
EXIF rotation, unusual colour modes, grayscale, several frames.

These are info-level on purpose: littlevision decodes all of them correctly (see
:mod:`littlevision.data.decode`), but other tools a user might feed the same folder to may not.
"""

from __future__ import annotations

from collections.abc import Callable

from littlevision.doctor.context import Context
from littlevision.doctor.registry import get_check, register_check
from littlevision.doctor.report import Finding
from littlevision.doctor.scan import ImageRecord

_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
_MODE_WORDS = {
    "CMYK": "CMYK (print colours)",
    "P": "palette colours",
    "PA": "palette colours with alpha",
    "RGBA": "RGB with transparency",
    "LA": "grey with transparency",
    "RGBa": "RGB with alpha",
    "I;16": "16-bit grey",
    "I;16B": "16-bit grey",
    "I;16L": "16-bit grey",
    "I": "32-bit grey",
    "F": "floating-point grey",
    "1": "1-bit black and white",
    "YCbCr": "YCbCr",
    "LAB": "Lab",
    "HSV": "HSV",
}
_ORIENTATION_WORDS = {
    2: "mirrored",
    3: "rotated 180°",
    4: "flipped upside down",
    5: "mirrored and rotated",
    6: "rotated 90°",
    7: "mirrored and rotated",
    8: "rotated 270°",
}
_GREY_COLOURFULNESS = 1.0  # mean channel difference (0-255) under which an RGB image is grey


def _per_image(
    ctx: Context, check: str, flag: Callable[[ImageRecord], str | None]
) -> list[Finding]:
    spec = get_check(check)
    out = []
    for rec in ctx.records:
        if rec.info is None:
            continue
        why = flag(rec)
        if why:
            out.append(
                spec.finding(
                    [rec.rel], f"{rec.rel}: {why}.", format=rec.info.format, mode=rec.info.mode
                )
            )
    return out


@register_check(
    "extension_mismatch",
    severity="info",
    title="Format differs from the extension",
    advice="Nothing to do for littlevision; rename them if other tools choke.",
)
def extension_mismatch(ctx: Context) -> list[Finding]:
    """Files whose content format is not what their extension says (a PNG named ``.jpg``)."""

    def flag(rec: ImageRecord) -> str | None:
        if rec.info.extension_matches_format:
            return None
        ext = rec.path.suffix or "(no extension)"
        return f"the content is {rec.info.format} but the name ends in {ext}"

    return _per_image(ctx, "extension_mismatch", flag)


@register_check(
    "exif_orientation",
    severity="info",
    title="Rotated by EXIF",
    advice="Nothing to do: littlevision applies the rotation, as photo viewers do.",
)
def exif_orientation(ctx: Context) -> list[Finding]:
    """Photos stored sideways with an EXIF tag saying how to turn them."""

    def flag(rec: ImageRecord) -> str | None:
        o = rec.info.exif_orientation
        if o is None or o == 1:
            return None
        return f"stored {_ORIENTATION_WORDS.get(o, 'turned')} (EXIF orientation {o})"

    return _per_image(ctx, "exif_orientation", flag)


@register_check(
    "unusual_mode",
    severity="info",
    title="Unusual colour modes",
    advice="Nothing to do: they are converted to RGB the same way everywhere.",
)
def unusual_mode(ctx: Context) -> list[Finding]:
    """CMYK, palette, 16-bit, alpha and other non-RGB colour modes."""

    def flag(rec: ImageRecord) -> str | None:
        mode = rec.info.mode
        if mode in ("RGB", "L"):
            return None
        return f"colour mode {mode} ({_MODE_WORDS.get(mode, 'unusual')})"

    return _per_image(ctx, "unusual_mode", flag)


@register_check(
    "grayscale",
    severity="info",
    title="Grayscale images",
    advice="Fine for training; if most images of one class are grey, the model may "
    "learn colour instead of content.",
)
def grayscale(ctx: Context) -> list[Finding]:
    """Images stored in a grey mode, or RGB images without colour."""

    def flag(rec: ImageRecord) -> str | None:
        if rec.info.mode in _GREY_MODES:
            return f"stored in grey (mode {rec.info.mode})"
        if rec.ok and rec.measures.get("colourfulness", 255.0) < _GREY_COLOURFULNESS:
            return "grey content stored as colour"
        return None

    return _per_image(ctx, "grayscale", flag)


@register_check(
    "multi_frame",
    severity="info",
    title="Animations and multi-page files",
    advice="Only the first frame is used; split them if the other frames matter.",
)
def multi_frame(ctx: Context) -> list[Finding]:
    """Animated GIF/WebP and multi-page TIFF files."""

    def flag(rec: ImageRecord) -> str | None:
        n = rec.info.n_frames
        if n <= 1 or rec.info.format == "MPO":  # MPO: a camera JPEG with a preview frame
            return None
        return f"{n} frames (only the first is used)"

    return _per_image(ctx, "multi_frame", flag)
