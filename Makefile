# The two set-up commands: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
BENCH_ARGS ?=
SERVE_ARGS ?=

.PHONY: demo test matrix lint format typecheck docs bench serve clean check-python

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "django-hooks needs Python 3.11+; run: make PYTHON=python3.11 ...")'

$(BIN)/python: | check-python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,lint]"
	touch $@

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[demo]"
	touch $@

## demo: run the example shop end to end (SQLite, a real Redis, a worker, a verifying receiver)
demo: $(VENV)/.demo-installed
	$(BIN)/python example_project/manage.py demo

## serve: the example shop on http://127.0.0.1:8000 with a worker and the sweep (admin login printed; Ctrl-C stops all)
serve: $(VENV)/.demo-installed
	$(BIN)/python example_project/manage.py serve $(SERVE_ARGS)

## test: the whole suite on SQLite, or on PostgreSQL when DATABASE_URL=postgres://... is set
test: $(VENV)/.test-installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## matrix: the suite in each tox env (Django 5.2 on Python 3.11 and 3.12, 6.0 and 6.1 on 3.12 and 3.13,
## no optional extras) on SQLite; MATRIX_ENVS="py313-django60" runs some (tox.ini lists them)
MATRIX_ENVS ?=
matrix: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[ci]"
	VENV=$(VENV) bash .ci/matrix $(MATRIX_ENVS) -- $(PYTEST_ARGS)

lint: $(VENV)/.test-installed
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .
	$(BIN)/lint-imports

format: $(VENV)/.test-installed
	$(BIN)/python -m ruff check --fix .
	$(BIN)/python -m ruff format .

typecheck: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[typing]"
	$(BIN)/python -m mypy django_hooks

## bench: the performance suite against its references, written to benchmarks/RESULTS.md
bench: $(VENV)/.test-installed
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

## docs: build the documentation site into build/site (warnings are errors)
docs: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --site-dir build/site

clean:
	rm -rf $(VENV) .tox .pytest_cache .ruff_cache .mypy_cache build dist *.egg-info example_project/db.sqlite3

## soak: 100,000 deliveries through a worker SIGKILL and a Redis restart; prints lost (must be 0).
## Several minutes; not part of `make test` or CI. SOAK_ARGS="--events 100" for a shorter run.
.PHONY: soak
soak: $(VENV)/.test-installed
	$(BIN)/python benchmarks/soak.py $(SOAK_ARGS)
