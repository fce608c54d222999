# The first two commands a new user runs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-slow test-all test-lowest check-wheel bench lint format browser-deps clean notebook tutorial-html

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "littlevision needs Python >= 3.11")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)  ## create .venv, install, train/evaluate/predict on the embedded digits dataset
	$(VENV)/bin/littlevision demo

test: $(STAMP)  ## the default, fast test suite (< 10 min on 2 cores)
	$(PY) -m pytest -q

test-slow: $(STAMP)  ## tests that train for real
	$(PY) -m pytest -q -m slow

test-all: $(STAMP)
	$(PY) -m pytest -q -m ''

LOWEST ?= .venv-lowest
test-lowest:  ## the fast tests on the lowest versions pyproject.toml allows (a separate venv)
	test -x $(LOWEST)/bin/python || $(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install -q --upgrade pip uv
	$(LOWEST)/bin/uv pip install -q --python $(LOWEST)/bin/python --resolution lowest-direct -e '.[dev]'
	$(LOWEST)/bin/python -m pytest -q -p no:cacheprovider

check-wheel:  ## build the wheel, install it in a fresh venv, run `littlevision demo` outside the repo
	bash scripts/check_wheel.sh $(PYTHON)

bench: $(STAMP)  ## benchmarks on ../shared/datasets; figures go to docs/benchmarks.md
	$(PY) benchmarks/run_all.py $(BENCH)

lint: $(STAMP)
	$(VENV)/bin/ruff check littlevision tests benchmarks scripts
	$(VENV)/bin/ruff format --check littlevision tests benchmarks scripts

format: $(STAMP)
	$(VENV)/bin/ruff format littlevision tests benchmarks scripts

NB_STAMP := $(VENV)/.notebook-stamp
$(NB_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[dev,notebook]'
	touch $(NB_STAMP)

notebook: $(NB_STAMP)  ## open the tutorial (docs/tutorial.ipynb) in JupyterLab with the project's venv
	$(VENV)/bin/jupyter lab docs/tutorial.ipynb $(if $(filter 0,$(shell id -u)),--allow-root)

tutorial-html: $(NB_STAMP)  ## execute a copy of the tutorial and render docs/tutorial.html
	$(PY) scripts/tutorial.py strip
	$(PY) scripts/tutorial.py html

browser-deps:  ## Debian chromium for the browser tests (needs root)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

clean:
	rm -rf runs demo-data .pytest_cache build *.egg-info
