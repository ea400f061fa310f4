# Pillarbox: every target sets up .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,fast]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/pillarbox serve

test: $(STAMP)
	$(BIN)/pytest -q -n auto $(PYTEST_ARGS) || [ $$? -eq 5 ]

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/smtp_load.py
	$(BIN)/python bench/queue_bench.py
	$(BIN)/python bench/pop3_bench.py
	$(BIN)/python bench/imap_bench.py
	$(BIN)/python bench/mime_bench.py

clean:
	rm -rf $(VENV) build *.egg-info
