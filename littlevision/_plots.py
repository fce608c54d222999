"""Charts drawn with matplotlib without pyplot (no global state, no display), as PNG bytes.

The pieces more than one layer draws: the palette, figure -> PNG, and learning curves (a run
folder's ``learning_curves.png`` and the report's chart are the same picture).
"""

from __future__ import annotations

import io

# One palette for all charts: readable for the common colour-vision deficiencies (Okabe-Ito).
BLUE, ORANGE, GREEN, GREY = "#0072B2", "#E69F00", "#009E73", "#999999"


def figure_png(fig, dpi: int = 100) -> bytes:
    """Render a matplotlib Figure (made without pyplot) to PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def learning_curves_png(history: dict[str, list[float]], title: str = "") -> bytes | None:
    """One panel per metric (loss, accuracy...), training and validation curves together.

    Used for ``learning_curves.png`` in a run folder and for the report's chart. Returns None
    when ``history`` holds no per-epoch metric.
    """
    from matplotlib.figure import Figure

    series = {
        k: [float(v) for v in vals]
        for k, vals in history.items()
        if isinstance(vals, list) and vals and all(isinstance(v, (int, float)) for v in vals)
    }
    bases = list(
        dict.fromkeys(
            k.removeprefix("val_")
            for k in series
            if k not in ("lr", "learning_rate", "epoch", "time", "seconds")
        )
    )
    if not bases:
        return None
    fig = Figure(figsize=(4.2 * len(bases), 3.4), layout="constrained")
    axes = fig.subplots(1, len(bases), squeeze=False)[0]
    for ax, base in zip(axes, bases, strict=True):
        for key, colour, label in ((base, BLUE, "training"), (f"val_{base}", ORANGE, "validation")):
            if key in series:
                vals = series[key]
                ax.plot(range(1, len(vals) + 1), vals, "-o", ms=3, color=colour, label=label)
        ax.set_title(base.replace("_", " "), fontsize=11)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    return figure_png(fig)
