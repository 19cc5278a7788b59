# Two entry points for a fresh machine: `make example` and `make test` (see README).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: example test lint check-contracts docs check-docs

$(VENV)/.installed: pyproject.toml tools/package-lock.json
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,examples]'
	cd tools && npm ci --no-audit --no-fund --loglevel=error
	touch $@

example: $(VENV)/.installed
	bash examples/breast-cancer/run.sh $(WORKDIR)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

check-contracts: $(VENV)/.installed
	$(PY) scripts/compile_contracts.py --check

docs: $(VENV)/.installed
	$(PY) -m typer proml_cli._cli.app utils docs --name proml --output docs/cli.md

check-docs: docs
	git diff --exit-code docs/cli.md

test: lint check-contracts check-docs
	$(PY) -m pytest
