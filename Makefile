# The two commands a newcomer needs: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint bench bench-smoke clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

## Serve the service (http://127.0.0.1:8000), the Stripe stand-in and the demo news site.
run: $(VENV)/.installed
	$(BIN)/python -m demo

## Install the dev extras and run every test.
test: $(VENV)/.dev-installed
	$(BIN)/python -m pytest

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check paywall stripe_standin article_site demo bench tests
	$(BIN)/mypy

## Run every benchmark and write docs/benchmarks.md.
bench: $(VENV)/.dev-installed
	$(BIN)/python -m bench

## A tiny run that only proves the benchmark harness works (CI runs it).
bench-smoke: $(VENV)/.dev-installed
	$(BIN)/python -m bench --smoke

clean:
	rm -rf $(VENV) instance test-artifacts .pytest_cache
