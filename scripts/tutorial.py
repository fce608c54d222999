"""The tutorial notebook's chores: execute it, render it to HTML, strip and check its outputs.

    python scripts/tutorial.py check   # exit 1 when docs/tutorial.ipynb carries outputs
    python scripts/tutorial.py strip   # remove outputs and counters in place (before committing)
    python scripts/tutorial.py html    # execute a copy, write docs/tutorial.html (self-contained)

Why outputs are stripped in git: the notebook is source; its figures are megabytes of base64
that would change on every run and bury the diff of one changed sentence. The executed copy
lives in docs/tutorial.html, rendered from a fresh run, for reading without Jupyter. No cell is
exempt: every figure in the tutorial is computed from the reader's own data, so a stored one
would show someone else's photos.

Needs the ``notebook`` extra (``pip install -e '.[notebook]'``; ``check`` and ``strip`` need
only the standard library).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "docs" / "tutorial.ipynb"
HTML = REPO / "docs" / "tutorial.html"


def unstripped_cells(path: Path = NOTEBOOK) -> list[int]:
    """Indices of code cells that carry outputs or an execution count."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    return [
        i
        for i, cell in enumerate(nb["cells"])
        if cell.get("cell_type") == "code"
        and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]


def strip(path: Path = NOTEBOOK) -> int:
    """Remove outputs and execution counts in place; returns how many cells changed."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    changed = 0
    for cell in nb["cells"]:
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs") or cell.get("execution_count") is not None:
            changed += 1
        cell["outputs"], cell["execution_count"] = [], None
        cell.get("metadata", {}).pop("execution", None)
    text = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    Path(path).write_text(text, encoding="utf-8")
    return changed


def execute(path: Path = NOTEBOOK, timeout: int = 1200):
    """Run every cell in a fresh kernel (cwd: the notebook's folder). Raises on a cell error.

    Returns:
        ``(notebook, seconds, cpu_seconds)``: the executed notebook node, the wall time, and the
        CPU time of the kernel and what it ran (the server), which a busy machine does not
        inflate: on 2 idle cores the wall time is at least half of it.
    """
    import resource

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(str(path), as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(Path(path).parent)}},
    )

    def children_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    cpu0, t0 = children_cpu(), time.perf_counter()
    client.execute()  # shuts the kernel down and reaps it, so its CPU time is counted
    return nb, time.perf_counter() - t0, children_cpu() - cpu0


_REMOTE_SCRIPT = re.compile(
    r"<script\b[^>]*https?://[^>]*>\s*</script>"  # <script src="https://...">
    r"|<script\b[^>]*>(?:(?!</script>).)*?https?://(?:(?!</script>).)*</script>",  # import(...)
    re.S,
)


def to_html(nb) -> str:
    """nbconvert's page without what it would fetch (MathJax, require.js, mermaid: unused here),
    so docs/tutorial.html opens offline like littlevision's other reports."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    body, _ = exporter.from_notebook_node(nb)
    # Outputs name the data by its absolute path: write it relative to the checkout instead, so
    # the committed page holds no one's machine paths.
    body = body.replace(str(REPO.parent), "..")
    return _REMOTE_SCRIPT.sub("", body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["check", "strip", "html"])
    parser.add_argument("--notebook", type=Path, default=NOTEBOOK)
    parser.add_argument("--html", type=Path, default=HTML)
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per cell")
    args = parser.parse_args(argv)
    if args.command == "check":
        cells = unstripped_cells(args.notebook)
        if cells:
            print(
                f"{args.notebook} has outputs in cells {cells}: run "
                "`python scripts/tutorial.py strip` before committing."
            )
            return 1
        return 0
    if args.command == "strip":
        print(f"stripped {strip(args.notebook)} cells")
        return 0
    sys.path.insert(0, str(REPO))  # the kernel and the server import this checkout
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p
    )
    nb, seconds, cpu = execute(args.notebook, args.timeout)
    args.html.write_text(to_html(nb), encoding="utf-8")
    load = os.getloadavg()
    print(
        f"executed in {seconds:.0f} s wall, {cpu:.0f} s CPU "
        f"(load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}); "
        f"wrote {args.html} ({args.html.stat().st_size / 1e6:.1f} MB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
