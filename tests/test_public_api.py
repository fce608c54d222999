"""The public surface is explicit and complete, and importing it stays cheap."""

import subprocess
import sys

import littlevision


def test_every_public_name_resolves():
    for name in littlevision.__all__:
        assert getattr(littlevision, name) is not None, name


def test_import_does_not_load_tensorflow():
    code = "import sys, littlevision, littlevision.cli; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
