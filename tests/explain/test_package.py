"""The explain package's public surface is explicit, and importing it stays cheap."""

from __future__ import annotations

import subprocess
import sys

import littlevision.explain as explain


def test_every_public_name_resolves():
    assert explain.__all__ == sorted(explain.__all__)
    for name in explain.__all__:
        assert getattr(explain, name) is not None, name


def test_import_loads_neither_tensorflow_nor_matplotlib():
    code = (
        "import sys, littlevision.explain, littlevision.explain.cli; "
        "print('tensorflow' in sys.modules, 'matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
