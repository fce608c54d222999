"""docs/tutorial.ipynb: stripped in git, rendered to docs/tutorial.html, and it runs."""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "docs" / "tutorial.ipynb"
HTML = REPO / "docs" / "tutorial.html"


def _script():
    spec = importlib.util.spec_from_file_location(
        "tutorial_script", REPO / "scripts" / "tutorial.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_notebook_in_git_has_no_outputs():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert len(code) >= 15
    carrying = [i for i, c in enumerate(code) if c["outputs"] or c["execution_count"] is not None]
    assert not carrying, (
        f"code cells {carrying} of docs/tutorial.ipynb carry outputs: "
        "run `python scripts/tutorial.py strip` (docs/tutorial.html holds the executed copy)"
    )


def test_the_check_catches_outputs_and_strip_removes_them(tmp_path):
    script = _script()
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    cell = next(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code")
    nb["cells"][cell]["outputs"] = [
        {"output_type": "stream", "name": "stdout", "text": "Dataset(2800 images)\n"}
    ]
    nb["cells"][cell]["execution_count"] = 1
    copy = tmp_path / "tutorial.ipynb"
    copy.write_text(json.dumps(nb), encoding="utf-8")
    assert script.unstripped_cells(copy) == [cell]
    assert script.main(["check", "--notebook", str(copy)]) == 1
    assert script.strip(copy) == 1
    assert script.unstripped_cells(copy) == []
    stripped = json.loads(copy.read_text(encoding="utf-8"))
    assert [c["source"] for c in stripped["cells"]] == [c["source"] for c in nb["cells"]]


def test_the_rendered_page_is_self_contained_and_matches_the_notebook():
    assert HTML.is_file(), "docs/tutorial.html is missing: `make tutorial-html`"
    page = HTML.read_text(encoding="utf-8")
    fetched = re.findall(r"""(?:src|href)\s*=\s*["']?(https?://[^"' >]+)""", page)
    fetched += re.findall(r"""url\(\s*["']?(https?://[^)"']+)""", page)
    fetched += re.findall(r"""import\(\s*["'](https?://[^"']+)""", page)
    assert not fetched, f"docs/tutorial.html loads {fetched[:3]}"
    assert page.count("data:image/png;base64,") >= 6, "the executed figures are not in the page"
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    headings = [
        line.lstrip("# ").strip()
        for c in nb["cells"]
        if c["cell_type"] == "markdown"
        for line in "".join(c["source"]).splitlines()
        if line.startswith("## ")
    ]
    assert len(headings) >= 10
    from html import unescape

    text = unescape(re.sub(r"<[^>]+>", "", page))
    stale = [h for h in headings if h not in text]
    assert not stale, f"docs/tutorial.html is older than the notebook (missing {stale}): re-render"


@pytest.mark.slow
def test_the_tutorial_runs_top_to_bottom(cats_dogs_dir, tmp_path, monkeypatch):
    """Every cell, in a fresh kernel, on the tutorial's data (cold caches: the worst case)."""
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("LITTLEVISION_TUTORIAL_DATA", str(cats_dogs_dir))
    monkeypatch.setenv("LITTLEVISION_TUTORIAL_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    )
    nb, seconds, cpu = _script().execute(NOTEBOOK, timeout=1200)  # raises CellExecutionError
    load = os.getloadavg()
    print(f"tutorial: {seconds:.0f} s wall, {cpu:.0f} s CPU, load average {load[0]:.1f}")

    texts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error"
            if out["output_type"] == "stream":
                texts.append(out["text"])
            else:
                texts += [v for v in out.get("data", {}).values() if isinstance(v, str)]
    joined = "\n".join(texts)
    for bad in ("\x1b[", "\r", "\b"):
        assert bad not in joined, f"{bad!r} in the notebook's outputs"
    accuracy = re.search(r"littlevision: (\d+\.\d)%", joined)
    assert accuracy and float(accuracy.group(1)) > 90.0
    assert "server stopped, exit code 0" in joined
    assert re.search(r"'label': '(cats|dogs)'", joined)
    assert "Confusion matrix" in joined and "<progress" in joined
    assert (tmp_path / "runs" / "finetune" / "model.onnx").is_file()
