"""The public surface is explicit and complete, and importing it stays cheap."""

import importlib
import importlib.util
import inspect
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import littlevision

REPO = Path(__file__).resolve().parents[1]
OPTIONAL = {"littlevision.scale": "ray"}  # its names need the optional extra to resolve


def _public_packages() -> list[str]:
    """littlevision and every sub-package whose name does not start with ``_``."""
    names = ["littlevision"]
    for info in pkgutil.walk_packages(littlevision.__path__, "littlevision."):
        if info.ispkg and not any(p.startswith("_") for p in info.name.split(".")):
            names.append(info.name)
    return names


PACKAGES = _public_packages()


def test_every_public_package_has_an_explicit_all():
    assert "littlevision.training" in PACKAGES
    for name in PACKAGES:
        package = importlib.import_module(name)
        assert isinstance(getattr(package, "__all__", None), list), f"{name} has no __all__"
        assert len(set(package.__all__)) == len(package.__all__), f"{name}: a name twice"


@pytest.mark.parametrize("name", PACKAGES)
def test_every_name_in_all_resolves(name):
    package = importlib.import_module(name)
    if name in OPTIONAL:
        pytest.importorskip(OPTIONAL[name])
    for public in package.__all__:
        assert getattr(package, public) is not None, f"{name}.{public}"


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_complete(name):
    """A public name bound in the package (imported or defined there) is listed in __all__."""
    package = importlib.import_module(name)
    bound = {
        attr
        for attr, value in vars(package).items()
        if not attr.startswith("_")
        and not inspect.ismodule(value)
        and attr not in ("annotations", "lazy_exports")  # __future__, the lazy wiring
    }
    lazy = set(getattr(package, "_EXPORTS", {}))
    missing = (bound | lazy) - set(package.__all__)
    assert not missing, f"{name}.__all__ lacks {sorted(missing)}"


def test_the_names_the_docs_import_are_public():
    """``from littlevision.X import Y`` in README/docs names only what X.__all__ lists."""
    pattern = re.compile(r"from (littlevision(?:\.\w+)*) import (?:\(([^)]*)\)|([^\n(]*))")
    files = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    checked = 0
    for file in files:
        for module, grouped, line in pattern.findall(file.read_text(encoding="utf-8")):
            if module not in PACKAGES:
                continue  # a module, not a package: its own names
            package = importlib.import_module(module)
            names = (grouped or line.split("#")[0]).replace("\n", " ").split(",")
            for public in (n.strip().split(" as ")[0] for n in names):
                if not public:
                    continue
                checked += 1
                if public not in package.__all__:  # else only a sub-module may be named
                    submodule = f"{module}.{public}"
                    assert importlib.util.find_spec(submodule), f"{file.name}: {submodule}"
    assert checked > 5


def test_import_does_not_load_tensorflow():
    code = (
        "import sys, littlevision, littlevision.cli, littlevision.training; "
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", PACKAGES)
def test_no_public_name_is_also_a_submodule(name):
    """Importing ``pkg.x`` binds the module to ``pkg.x``: a public function named like one of
    its package's modules would turn into that module once anything imported it directly."""
    package = importlib.import_module(name)
    modules = {info.name for info in pkgutil.iter_modules(package.__path__)}
    assert not modules & set(package.__all__), f"{name}: {sorted(modules & set(package.__all__))}"


def test_examine_stays_a_function_after_its_module_is_imported():
    code = (
        "import littlevision.doctor.examination, littlevision.training.comparison\n"
        "import littlevision.doctor as d, littlevision.training as t\n"
        "assert callable(d.examine) and callable(t.compare), (d.examine, t.compare)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
