# The two commands of the README. Each creates .venv and installs what it needs when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU torch for the trainer; on a GPU box install the torch build for your CUDA instead.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[train,dev]'
	touch $(STAMP)

# Run the main job on the embedded default (a demo web archive shipped in jobs/data), then train on it.
demo: $(STAMP)
	$(VENV)/bin/gristmill run jobs/quickstart.yaml
	$(VENV)/bin/gristmill train runs/quickstart/shards --steps 200

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/extraction_eval.py ../shared/data/trafilatura-eval-en
	$(PY) bench/decontam.py --data ../shared/data

clean:
	rm -rf runs .pytest_cache
