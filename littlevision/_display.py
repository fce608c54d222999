"""Rich display in Jupyter: the HTML and PNG that littlevision's objects show themselves as.

Every piece of HTML here is self-contained (images inlined as ``data:`` URIs, inline styles, no
scripts, no external URL), so a notebook saved, exported with nbconvert or mailed still shows
it. The shapes follow the doctor's summary (:func:`littlevision.doctor.html.summary_html`): a
one-line headline with the count in bold, then a plain table.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

__all__ = ["PictureDisplay", "headline", "img_tag", "table", "thumbnail_strip"]

_TABLE = 'style="border-collapse:collapse;margin:4px 0"'
_CELL = "padding:2px 10px;border-bottom:1px solid #e3e3e3;text-align:{align}"


def headline(bold: str, rest: str = "") -> str:
    """``<p><b>bold</b>rest</p>``, both escaped (``rest`` starts with its own space or comma)."""
    return f"<p><b>{escape(bold)}</b>{escape(rest)}</p>"


def table(head: Sequence[str] | None, rows: Iterable[Sequence[Any]], raw: bool = False) -> str:
    """A plain HTML table (no header row when ``head`` is None); cells are escaped unless
    ``raw`` (then they are trusted HTML)."""

    def cell(tag: str, value: Any, i: int) -> str:
        text = str(value) if raw else escape(str(value))
        return f'<{tag} style="{_CELL.format(align="left" if i == 0 else "right")}">{text}</{tag}>'

    lines = (
        ["<tr>" + "".join(cell("th", h, i) for i, h in enumerate(head)) + "</tr>"] if head else []
    )
    lines += ["<tr>" + "".join(cell("td", v, i) for i, v in enumerate(r)) + "</tr>" for r in rows]
    return f"<table {_TABLE}>{''.join(lines)}</table>"


def img_tag(png: bytes, alt: str, max_width: int | None = None) -> str:
    """An ``<img>`` carrying its PNG inside (a ``data:`` URI)."""
    src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    style = f' style="max-width:{max_width}px;height:auto"' if max_width else ""
    return f'<img src="{src}" alt="{escape(alt)}"{style}>'


def thumbnail_strip(items: Sequence[tuple[Any, str]], side: int = 96) -> str:
    """A row of captioned thumbnails for ``(path, caption)`` pairs; unreadable files show a
    placeholder (decoded with the doctor's thumbnailer, so both look the same)."""
    from littlevision.doctor.html import thumbnail_uri

    cards = []
    for path, caption in items:
        uri = thumbnail_uri(path, side)
        if uri:
            picture = f'<img src="{uri}" alt="{escape(str(caption))}" style="max-height:{side}px">'
        else:
            picture = (
                f'<div style="width:{side}px;height:{side}px;background:#eee;color:#900;'
                'font-size:11px;display:flex;align-items:center;justify-content:center">'
                "cannot be read</div>"
            )
        cards.append(
            f'<figure style="margin:0;text-align:center;font-size:11px">{picture}'
            f"<figcaption>{escape(str(caption))}</figcaption></figure>"
        )
    return f'<div style="display:flex;flex-wrap:wrap;gap:6px;align-items:flex-end">{"".join(cards)}</div>'


def shade(fraction: float) -> str:
    """A blue background for a table cell, darker for larger fractions (0..1)."""
    f = min(max(float(fraction), 0.0), 1.0)
    r, g, b = (round(255 - (255 - c) * f * 0.85) for c in (0x00, 0x72, 0xB2))
    text = "#fff" if f > 0.6 else "#222"
    return f"background:rgb({r},{g},{b});color:{text}"


class PictureDisplay:
    """For results whose answer is a picture: PNG for any front end, HTML = caption + that PNG.

    Subclasses implement :meth:`_display_png` and :meth:`_display_caption`. Jupyter asks for
    the mime bundle once, so the picture is drawn once even though it is offered twice.
    """

    def _display_png(self) -> bytes:
        raise NotImplementedError

    def _display_caption(self) -> str:
        return type(self).__name__

    def _html(self, png: bytes) -> str:
        caption = self._display_caption()
        return f"<div><p>{escape(caption)}</p>{img_tag(png, caption)}</div>"

    def _repr_png_(self) -> bytes:
        return self._display_png()

    def _repr_html_(self) -> str:
        return self._html(self._display_png())

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        png = self._display_png()
        return {"image/png": png, "text/html": self._html(png), "text/plain": repr(self)}


# -- the objects a notebook user holds ---------------------------------------------------------

_MAX_ROWS = 30


def dataset_html(ds, thumbnails: int = 8, side: int = 96) -> str:
    """A Dataset: its repr as a headline, images per class (and subset), a thumbnail strip."""
    from collections import Counter

    text = repr(ds).removeprefix("Dataset(").removesuffix(")")
    n_images, _, rest = text.partition(", ")
    parts = [headline(n_images, f", {rest}" if rest else "")]
    counts = ds.counts()
    subsets = sorted({s for s in ds.subsets if s is not None})
    per = {s: Counter(i.label for i in ds if i.subset == s) for s in subsets}
    rows = [
        [name, count, *(per[s].get(name, 0) for s in subsets)] for name, count in counts.items()
    ]
    if len(rows) > _MAX_ROWS:
        rows = rows[:_MAX_ROWS] + [
            [f"... and {len(rows) - _MAX_ROWS} more classes", ""] + [""] * len(subsets)
        ]
    if rows:
        parts.append(table(["class", "images", *subsets], rows))
    # A few images of each class, so one glance shows what the classes look like.
    per_class = max(1, thumbnails // max(1, len(counts)))
    picks: list[tuple[Any, str]] = []
    seen: Counter = Counter()
    for item in ds:
        if len(picks) >= thumbnails:
            break
        key = item.label
        if seen[key] < per_class:
            seen[key] += 1
            picks.append((item.path, item.label if item.label is not None else "(unlabelled)"))
    if picks:
        parts.append(thumbnail_strip(picks, side))
    return "<div>" + "".join(parts) + "</div>"


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * float(x):.2f}%"


def confusion_html(confusion: Sequence[Sequence[int]], classes: Sequence[str]) -> str:
    """The confusion matrix as a shaded table (rows: true class; shade: share of the row)."""
    n = len(classes)
    if not confusion or n == 0:
        return ""
    if n > _MAX_ROWS:
        return f"<p>Confusion matrix of {n} classes: too large to show here (see report.html).</p>"
    cells = []
    for i, row in enumerate(confusion):
        total = max(sum(row), 1)
        tds = "".join(
            f'<td style="{_CELL.format(align="right")};{shade(v / total)}">{int(v)}</td>'
            for v in row
        )
        cells.append(
            f'<tr><th style="{_CELL.format(align="left")}">{escape(classes[i])}</th>{tds}</tr>'
        )
    head = "".join(f'<th style="{_CELL.format(align="right")}">{escape(c)}</th>' for c in classes)
    return (
        "<p>Confusion matrix (rows: true class, columns: predicted)</p>"
        f'<table {_TABLE}><tr><th style="{_CELL.format(align="left")}">true \\ predicted</th>'
        f"{head}</tr>{''.join(cells)}</table>"
    )


def bundle_summary(bundle) -> str:
    """One line: recipe, backbone, size, classes, accuracy (the plain repr's content)."""
    card = bundle.card
    what = card.get("recipe") or "model"
    if card.get("backbone"):
        what += f" {card['backbone']}"
    what += f" {bundle.image_size} px"
    acc = bundle.metrics.get("accuracy", card.get("metrics", {}).get("accuracy"))
    n = bundle.metrics.get("n", card.get("metrics", {}).get("n"))
    scored = f", validation accuracy {_pct(acc)} on {n} images" if acc is not None else ""
    return f"{what}, {len(bundle.labels)} classes{scored}"


def bundle_html(bundle) -> str:
    """A trained bundle: the card's headline figures, the confusion matrix, the curves."""
    card, metrics = bundle.card, bundle.metrics
    data = card.get("data", {})
    timings = card.get("timings", {})
    figures = [
        ["recipe", card.get("recipe", "-")],
        ["backbone", card.get("backbone") or "none (trained from scratch)"],
        ["image size", f"{bundle.image_size} px"],
        ["classes", ", ".join(bundle.labels[:10]) + (" ..." if len(bundle.labels) > 10 else "")],
        ["training / validation images", f"{data.get('n_train', '-')} / {data.get('n_val', '-')}"],
        ["validation accuracy", _pct(metrics.get("accuracy"))],
        [
            "validation log-loss",
            f"{metrics['log_loss']:.3f}" if metrics.get("log_loss") is not None else "-",
        ],
        ["training time", f"{timings['total_s']:.1f} s" if "total_s" in timings else "-"],
        ["model version", bundle.version],
    ]
    skipped = data.get("skipped") or []
    if skipped:
        figures.append(["unreadable files skipped", len(skipped)])
    parts = [
        headline(bundle.name, f" in {bundle.path}: {bundle_summary(bundle)}"),
        table(None, figures),
        confusion_html(metrics.get("confusion", []), metrics.get("classes", bundle.labels)),
    ]
    curves = bundle.path / "learning_curves.png"
    if curves.is_file():
        parts.append(
            "<p>Learning curves</p>" + img_tag(curves.read_bytes(), "learning curves", 720)
        )
    return "<div>" + "".join(parts) + "</div>"


def comparison_html(result) -> str:
    """A Comparison: the tutorial's table on the user's data (as ``compare.md`` has it)."""
    head, rows = result.head(), result.cells()
    note = (
        f"{result.n_train} training and {result.n_val} validation images; seed {result.seed}; same "
        f"split for every recipe; {result.machine}. Inference: ONNX Runtime, decoding excluded."
    )
    return (
        "<div>"
        + headline(f"{len(result.rows)} recipes", f" on {', '.join(result.classes)}")
        + table(head, rows)
        + f'<p style="color:#666">{escape(note)}</p></div>'
    )
