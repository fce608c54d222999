"""The HTML report: one self-contained file (thumbnails inlined as base64 JPEG), readable
offline and attachable to an email or a CI artifact.

Each finding shows its images: duplicate and leak groups side by side, suspected label issues
with the label given and the one predicted (with confidence), broken files as a labelled
placeholder. Thumbnails are decoded one at a time through the project's decoder, so the page
costs memory for one image, whatever the dataset's size.
"""

from __future__ import annotations

import base64
import io
import os
from html import escape
from pathlib import Path

from littlevision._io import write_text
from littlevision.doctor.registry import get_check
from littlevision.doctor.report import SEVERITIES, Finding, Report
from littlevision.errors import UserError

_COLOURS = {"error": "#c0392b", "warning": "#b9770e", "info": "#2471a3"}
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;
background:#fafafa}h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 4px}
.muted{color:#666}.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;
font-size:12px;margin-right:6px;vertical-align:middle}table{border-collapse:collapse;margin:8px 0}
td,th{padding:3px 10px;border-bottom:1px solid #e3e3e3;text-align:left}
.finding{background:#fff;border:1px solid #e3e3e3;border-radius:8px;padding:10px 12px;
margin:10px 0}.cards{display:flex;flex-wrap:wrap;gap:10px;margin-top:8px}
.card{width:170px;font-size:12px;word-break:break-all}.card img,.ph{width:160px;height:160px;
object-fit:contain;background:#eee;border-radius:4px;display:block}.ph{display:flex;
align-items:center;justify-content:center;text-align:center;color:#900;font-size:12px;padding:6px;
box-sizing:border-box}.pred{font-weight:600}.grid{display:flex;flex-wrap:wrap;gap:10px}
.vs{align-self:center;font-size:20px;color:#999}code{background:#f0f0f0;padding:0 3px}
"""


def thumbnail_uri(path: str | os.PathLike[str], side: int = 160) -> str | None:
    """A ``data:image/jpeg;base64,...`` thumbnail (aspect kept, at most ``side`` px), or
    ``None`` when the file cannot be decoded."""
    from PIL import Image

    from littlevision.data.decode import DecodeError, load_image, probe

    try:
        info = probe(path)
        # Decode small (JPEG draft makes this cheap), then restore the aspect ratio from the header.
        square = load_image(path, size=2 * side)
    except (DecodeError, OSError, ValueError):
        return None
    w, h = info.width, info.height
    if info.exif_orientation in (5, 6, 7, 8):
        w, h = h, w
    scale = side / max(w, h, 1)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    img = Image.fromarray(square).resize(size, Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class _Thumbs:
    """Thumbnails by relative path, each made once per page."""

    def __init__(self, root: Path, side: int):
        self.root, self.side, self._cache = root, side, {}

    def card(self, rel: str, caption: str = "", extra: str = "") -> str:
        if rel not in self._cache:
            path = self.root / rel
            self._cache[rel] = thumbnail_uri(path, self.side) if path.is_file() else None
        uri = self._cache[rel]
        if uri:
            img = f'<img src="{uri}" alt="{escape(rel)}" loading="lazy">'
        else:
            img = '<div class="ph">cannot be shown<br>(broken, missing or moved)</div>'
        lines = [f"<div>{escape(rel)}</div>"]
        if caption:
            lines.append(f'<div class="muted">{escape(caption)}</div>')
        if extra:
            lines.append(extra)
        return f'<div class="card">{img}{"".join(lines)}</div>'


def _badge(severity: str) -> str:
    return f'<span class="badge" style="background:{_COLOURS[severity]}">{severity}</span>'


def _member_caption(finding: Finding, rel: str) -> str:
    for m in finding.details.get("members", []):
        if m.get("file") == rel:
            bits = [b for b in (m.get("label"), m.get("subset")) if b]
            keep = " · kept by --fix" if finding.details.get("keep") == rel else ""
            return " · ".join(bits) + keep
    return ""


def _finding_html(f: Finding, thumbs: _Thumbs, family: str, max_files: int = 24) -> str:
    parts = [f'<div class="finding"><div>{escape(f.message)}</div>']
    if f.check == "label_issues":
        d = f.details
        extra = (
            f"<div>labelled <b>{escape(str(d.get('label')))}</b></div>"
            f'<div class="pred">looks like {escape(str(d.get("predicted")))} '
            f"({float(d.get('confidence', 0)):.0%})</div>"
        )
        parts.append(f'<div class="cards">{thumbs.card(f.files[0], extra=extra)}</div>')
    elif f.files and family != "listing":
        shown = f.files[:max_files]
        sep = '<div class="vs">≈</div>' if f.check == "near_duplicates" else ""
        cards = sep.join(thumbs.card(p, _member_caption(f, p)) for p in shown)
        parts.append(f'<div class="cards">{cards}</div>')
        if len(f.files) > max_files:
            parts.append(f'<div class="muted">and {len(f.files) - max_files} more</div>')
    elif f.files:  # listings: CSV rows without a file, files without a row... (often thousands)
        listed = "".join(f"<li>{escape(p)}</li>" for p in f.files[:200])
        more = f"<li>... and {len(f.files) - 200} more</li>" if len(f.files) > 200 else ""
        parts.append(
            f"<details><summary>{len(f.files)} names</summary><ul>{listed}{more}</ul></details>"
        )
    if f.quarantine:
        parts.append(
            f'<div class="muted">--fix moves: {escape(", ".join(f.quarantine[:6]))}'
            f"{' ...' if len(f.quarantine) > 6 else ''}</div>"
        )
    parts.append("</div>")
    return "".join(parts)


def summary_html(report: Report) -> str:
    """A small HTML table of counts per check (what Jupyter shows for a Report)."""
    s = report.summary()
    rows = "".join(
        f"<tr><td>{_badge(v['severity'])}</td><td>{escape(k)}</td><td>{v['findings']}</td>"
        f"<td>{v['files']}</td></tr>"
        for k, v in s["by_check"].items()
    )
    sev = s["by_severity"]
    head = (
        f"<p><b>{report.n_images} images</b> in {escape(report.root)}: {sev['error']} errors, "
        f"{sev['warning']} warnings, {sev['info']} info</p>"
    )
    if not rows:
        return head + "<p>Nothing wrong found.</p>"
    return (
        head
        + "<table><tr><th></th><th>check</th><th>findings</th><th>files</th></tr>"
        + rows
        + "</table>"
    )


def render_html(report: Report, *, max_per_check: int = 60, thumb_side: int = 160) -> str:
    """The whole page as a string.

    Args:
        report: What :func:`~littlevision.doctor.examine` found.
        max_per_check: Findings shown per check (the JSON has them all).
        thumb_side: Thumbnail size in pixels.
    """
    root = Path(report.root)
    thumbs = _Thumbs(root, thumb_side)
    sections = []
    for check in dict.fromkeys(f.check for f in report.findings):
        found = report.by_check(check)
        try:
            spec = get_check(check)
            title, advice, family = spec.title, spec.advice, spec.family
        except UserError:
            title, advice, family = check, "", ""
        body = "".join(_finding_html(f, thumbs, family) for f in found[:max_per_check])
        if len(found) > max_per_check:
            body += (
                f'<p class="muted">... and {len(found) - max_per_check} more findings '
                "(see the JSON report).</p>"
            )
        sections.append(
            f'<h2 id="{escape(check)}">{_badge(found[0].severity)}{escape(title)} '
            f'<span class="muted">({len(found)})</span></h2><p class="muted">'
            f"<code>{escape(check)}</code> {escape(advice)}</p>{body}"
        )
    counts = "".join(f"<tr><td>{escape(k)}</td><td>{v}</td></tr>" for k, v in report.counts.items())
    toc = "".join(
        f'<li><a href="#{escape(c)}">{escape(c)}</a> ({len(report.by_check(c))})</li>'
        for c in dict.fromkeys(f.check for f in report.findings)
    )
    sev = report.summary()["by_severity"]
    total = report.timings.get("total")
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>Data doctor: {escape(root.name)}</title><style>{_CSS}</style></head><body>"
        f"<h1>Data doctor: {escape(str(root))}</h1>"
        f"<p>{report.n_images} images, {len(report.checks)} checks"
        f"{f' in {total:.1f} s' if total is not None else ''}: "
        + ", ".join(f"{_badge(s)}{sev[s]}" for s in SEVERITIES)
        + "</p>"
        f"<table><tr><th>class</th><th>images</th></tr>{counts}</table>"
        f"<ul>{toc}</ul>{''.join(sections) or '<p>Nothing wrong found.</p>'}"
        "</body></html>"
    )


def write_html(report: Report, path: str | os.PathLike[str], **options) -> str:
    """Write :func:`render_html` to ``path`` (atomically); returns the path as a string."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, render_html(report, **options))
    return str(path)
