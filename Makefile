# Two entry points for a fresh machine: `make example` and `make test` (see README).
# The example needs only the Python package; the tests also need the pinned npm tools
# (solc, anvil, js-ipfs) from tools/package-lock.json.
VENV ?= .venv
PY := $(VENV)/bin/python
TOOLS := tools/node_modules/.installed

.PHONY: example test lint check-contracts docs check-docs

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,examples,export]'
	touch $@

$(TOOLS): tools/package.json tools/package-lock.json
	cd tools && npm ci --no-audit --no-fund --loglevel=error
	touch $@

example: $(VENV)/.installed
	bash examples/breast-cancer/run.sh $(WORKDIR)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

check-contracts: $(VENV)/.installed $(TOOLS)
	$(PY) scripts/compile_contracts.py --check

docs: $(VENV)/.installed
	$(PY) -m typer proml_cli._cli.app utils docs --name proml --output docs/cli.md

check-docs: docs
	git diff --exit-code docs/cli.md

test: lint check-contracts check-docs $(TOOLS)
	$(PY) -m pytest
