# The two set-up commands are `make run` and `make test`; everything else is for developers.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench ci install clean

$(PY):
	@PYTHON=$$(bin/find-python) || exit 1; \
	echo "Creating $(VENV) with $$PYTHON"; \
	"$$PYTHON" -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@echo "Demo mode: DEMO_SKIP_MFA=1 (works only with DEBUG on) lets the demo admins in without an authenticator."
	DEMO_SKIP_MFA=1 $(PY) manage.py runserver 127.0.0.1:8000

test: $(STAMP)
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)  # set DATABASE_URL=postgres://... : the figures in the README are PostgreSQL's
	$(PY) benchmarks/user_table.py
	$(PY) benchmarks/usage_api.py
	$(PY) benchmarks/exports.py

ci:
	bash .ci/run

clean:
	rm -rf $(VENV) staticfiles db.sqlite3
