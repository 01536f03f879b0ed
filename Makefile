# The two commands of the README. Each creates .venv and installs what it needs when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test bench bench-e2e clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU torch for the trainer; on a GPU box install the torch build for your CUDA instead.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[train,dev,bench]'
	touch $(STAMP)

# Run the main job on the embedded default (a demo web archive shipped in jobs/data), then train on it.
demo: $(STAMP)
	$(VENV)/bin/gristmill run jobs/quickstart.yaml
	$(VENV)/bin/gristmill train runs/quickstart/shards --steps 200

test: $(STAMP)
	$(PY) -m pytest -q

# Every bench at quick settings (e2e at 1,000 pages), one table; figures in runs/bench/summary.json.
bench: $(STAMP)
	$(PY) bench/run_all.py --data ../shared/data
	$(PY) bench/decontam.py --data ../shared/data

# gristmill vs datatrove end to end at full size (20,000 pages, all cores): run it on a quiet machine.
E2E_COUNT ?= 20000
bench-e2e: $(STAMP)
	$(PY) bench/e2e.py --count $(E2E_COUNT) --data ../shared/data --json runs/bench/e2e-$(E2E_COUNT).json

clean:
	rm -rf runs .pytest_cache
