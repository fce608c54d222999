"""Progress in Jupyter: run cells in a real kernel and read what the notebook would keep."""

from __future__ import annotations

import json

import pytest

from littlevision.progress import NULL, default_reporter, in_notebook


def test_outside_a_kernel_the_library_stays_quiet():
    assert not in_notebook()
    assert default_reporter() is NULL


def _run_cells(sources: list[str], cwd) -> list[dict]:
    """Execute ``sources`` as one notebook in a fresh kernel; the outputs of each cell."""
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    ).execute()
    return [cell.outputs for cell in nb.cells]


def _texts(output: dict) -> list[str]:
    if output.get("output_type") == "stream":
        return [output["text"]]
    return [v if isinstance(v, str) else json.dumps(v) for v in output.get("data", {}).values()]


def test_bars_in_a_notebook_are_html_updated_in_place_without_escape_codes(
    tiny_run, small_folder, tmp_path
):
    outputs = _run_cells(
        [
            "import littlevision as lv\n"
            f"metrics = lv.evaluate({str(tiny_run)!r}, {str(small_folder)!r})\n"
            "print(f\"accuracy {metrics['accuracy']:.3f} on {metrics['n']} images\")",
            "from littlevision.progress import default_reporter\n"
            "reporter = default_reporter()\n"
            "with reporter.stage('waiting') as stage:\n"
            "    pass\n"
            "reporter.log('all done')\n"
            "type(reporter).__name__",
        ],
        tmp_path,
    )
    every = [text for cell in outputs for out in cell for text in _texts(out)]
    for text in every:
        for bad in ("\x1b", "\r", "\b"):
            assert bad not in text, f"{bad!r} in a cell output: {text[:200]!r}"

    evaluate_cell, reporter_cell = outputs
    bars = [o for o in evaluate_cell if o["output_type"] == "display_data"]
    assert len(bars) == 1, "one bar per stage, updated in place, not one output per update"
    html, plain = bars[0]["data"]["text/html"], bars[0]["data"]["text/plain"]
    assert '<progress value="40" max="40"' in html and "predict · 40/40 · done in" in html
    assert plain.startswith("[" + "#" * 24 + "] predict · 40/40 · done in")
    printed = "".join(o["text"] for o in evaluate_cell if o["output_type"] == "stream")
    assert "on 40 images" in printed

    kinds = [o["output_type"] for o in reporter_cell]
    assert kinds == ["display_data", "stream", "execute_result"]
    assert "waiting · done in" in reporter_cell[0]["data"]["text/plain"]
    assert reporter_cell[1]["text"] == "all done\n"
    assert reporter_cell[2]["data"]["text/plain"] == "'NotebookReporter'"
