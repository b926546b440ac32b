# The two set-up commands are `make run` and `make test`; everything else is for developers.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-dates nservers lint format bench ci install clean

# The application fails closed: without DEBUG=1 it runs as in production and needs a real
# SECRET_KEY. These developer targets choose the development settings explicitly.
DEV := DEBUG=1
# Dates on which the suite must pass as on any other: the 1st, the 28th to the 31st, a leap
# day and 31 December (`make test-dates` runs the whole suite once at each).
TEST_DATES := 2027-03-01T09:00:00+00:00 2027-02-28T12:00:00+00:00 2028-02-29T12:00:00+00:00 \
	2027-04-30T12:00:00+00:00 2027-01-31T12:00:00+00:00 2026-12-31T22:30:00+00:00

$(PY):
	@PYTHON=$$(bin/find-python) || exit 1; \
	echo "Creating $(VENV) with $$PYTHON"; \
	"$$PYTHON" -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

# The task worker (emails, the policy after usage) and the scheduler (periodic jobs) run in
# the background beside the server and stop with it (Ctrl+C, or the server ending).
run: $(STAMP)
	$(DEV) $(PY) manage.py migrate --noinput
	$(DEV) $(PY) manage.py seed_demo
	@echo "Demo mode: DEBUG=1 and DEMO_SKIP_MFA=1 (works only with DEBUG on) let the demo admins in without an authenticator."
	$(DEV) $(PY) manage.py db_worker --queue-name '*' --no-reload & worker=$$!; \
	$(DEV) $(PY) manage.py crontask --no-heartbeat & scheduler=$$!; \
	trap 'kill $$worker $$scheduler 2>/dev/null; wait $$worker $$scheduler 2>/dev/null' EXIT INT TERM; \
	echo "Task worker (pid $$worker) and scheduler (pid $$scheduler) started; they stop with the server."; \
	$(DEV) DEMO_SKIP_MFA=1 $(PY) manage.py runserver 127.0.0.1:8000

test: $(STAMP)
	$(DEV) $(PY) manage.py collectstatic --noinput -v0
	$(PY) -m pytest -q

test-dates: $(STAMP)
	$(DEV) $(PY) manage.py collectstatic --noinput -v0
	@for when in $(TEST_DATES); do \
		echo "== the suite on $$when"; \
		TEST_CLOCK=$$when $(PY) -m pytest -q || exit 1; \
	done

# Two app servers, two task workers and two schedulers on a PostgreSQL cluster of their own
# (initdb from the postgresql package), driven at once: nothing lost or counted twice.
# `make test` runs it too; this prints its figures. NSERVERS_REPORTS sets the usage reports.
nservers: $(STAMP)
	$(DEV) $(PY) manage.py collectstatic --noinput -v0
	$(PY) -m pytest -q -s -m nservers tests/test_n_servers.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(DEV) $(PY) manage.py makemigrations --check --dry-run

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# `make bench` seeds and measures at 1M and 10M events; `make bench SIZE=1000000` at one size.
# DATABASE_URL names the PostgreSQL server (its databases asksage_bench_* are created on it).
SIZE ?= 1000000 10000000
bench: $(STAMP)
	$(DEV) $(PY) benchmarks/run.py $(foreach size,$(SIZE),--events $(size))

ci:
	bash .ci/run

clean:
	rm -rf $(VENV) staticfiles db.sqlite3
