# videomine: every target creates the virtual environment it needs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Two workers match the 2-core CI machine; override with `make test PYTEST_WORKERS=1`.
PYTEST_WORKERS ?= 2

.PHONY: venv demo test test-slow bench lint format clean

venv: $(STAMP)

# torch first and exactly pinned: the local CPU wheel satisfies it; anything looser
# pulls several GB of CUDA packages.
$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -c "import cv2, torch, decord, faiss, luigi; assert hasattr(cv2, 'TrackerKCF_create'), 'cv2 is not the contrib build'"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m tasks.demo

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not gpu" -n $(PYTEST_WORKERS) tests

# The slow tests include a headless-Chromium render of the run report (Debian's chromium).
test-slow: $(STAMP)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(PY) -m pytest -q -m "slow" tests

bench: $(STAMP)
	$(PY) -m benchmarks --update-readme

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy pipeline models data_manifests

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) demo_output bench_output .pytest_cache .mypy_cache .ruff_cache *.egg-info
