# opsdesk: the two commands are `make demo` and `make test`; everything else is set-up they call.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
VENDOR := opsdesk/web/static/vendor

.PHONY: demo test lint assets services venv clean bench report-packages

demo: venv assets report-packages
	$(BIN)/opsdesk demo

test: venv assets services lint
	$(BIN)/pytest -q

lint: venv
	$(BIN)/ruff check opsdesk tests bench
	$(BIN)/ruff format --check opsdesk tests bench
	$(BIN)/mypy opsdesk

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# Front-end assets come from the npm registry at set-up; they are not committed.
assets: $(VENDOR)/.installed
$(VENDOR)/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)
	cp node_modules/@picocss/pico/css/pico.min.css node_modules/htmx.org/dist/htmx.min.js \
	   node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css $(VENDOR)/
	touch $@

# Debian packages PDF reports need (Pango, HarfBuzz subsetter, Noto CJK fonts).
report-packages:
	scripts/report-packages.sh

# Debian packages and servers the tests use (chromium, CJK fonts, PostgreSQL).
services:
	scripts/test-services.sh

bench: venv
	@for b in bench/*.py; do $(BIN)/python $$b; done

clean:
	rm -rf $(VENV) node_modules $(VENDOR) var .pytest_cache .mypy_cache .ruff_cache
