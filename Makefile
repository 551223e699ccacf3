# Two commands on a fresh machine:
#   make up    runs every actor on the embedded default (SQLite + local files under ./data)
#   make test  runs the whole test suite
# Each creates the virtualenv it needs (.venv) on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
XDS_DATA ?= $(CURDIR)/data

.PHONY: up test lint bench clean venv

$(STAMP): setup.cfg pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,postgres,dicom,codecs,web,bench]'
	@touch $(STAMP)

venv: $(STAMP)

up: $(STAMP)
	$(BIN)/xds up --data-dir $(XDS_DATA)

test: $(STAMP)
	bash scripts/install-dicom-tools.sh
	bash scripts/install-browser.sh
	bash scripts/test-services.sh
	$(BIN)/python -m pytest -n 2 --timeout 600 $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .hypothesis
