"""The real thing, end to end: a write enqueues its email in the database task queue, and the
worker process (`manage.py db_worker`, django-tasks-db) picks it up from the test database and
sends it. Runs on SQLite and on PostgreSQL alike (whichever DATABASE_URL the suite runs on).

Transactional: the worker is another process, it sees only committed rows.
"""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from django.tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from tokens.models import EmailDelivery, PeriodicRun
from tokens.services import requests as request_services
from tokens.tasks import reclaim_month_start

EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
ROOT = Path(__file__).resolve().parent.parent
DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def test_database_url() -> str:
    """The test database, as a DATABASE_URL for a child process."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


test_database_url.__test__ = False  # a helper, not a test


def run_worker() -> subprocess.CompletedProcess:
    """One worker process that runs every ready task, then exits (--batch)."""
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": test_database_url(),
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
        "DJANGO_SETTINGS_MODULE": "asksage_admin.settings",
    }
    env.pop("TEST_CLOCK", None)
    command = ["manage.py", "db_worker", "--batch", "--no-reload", "--no-startup-delay"]
    return subprocess.run(
        [sys.executable, *command, "--queue-name", "*"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db(transaction=True)
def test_the_worker_process_sends_the_email_a_write_enqueued(bob, alice, settings):
    settings.TASKS = DATABASE_TASKS
    request_services.token_request_create(
        user=bob, kind="inference", amount=500_000, reason="Big project"
    )
    queued = DBTaskResult.objects.get()
    assert (queued.task_path, queued.status) == ("tokens.mail.send_email", "READY")
    delivery = EmailDelivery.objects.get()
    assert delivery.status == EmailDelivery.Status.PENDING  # nothing sent in the request
    # The worker reads the real clock; this test's may be pinned ahead (TEST_CLOCK).
    EmailDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=EPOCH)

    worker = run_worker()

    assert worker.returncode == 0, worker.stderr
    assert "Token request from Bob Member: 500,000 inference tokens" in worker.stdout
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 1)
    queued.refresh_from_db()
    assert queued.status == TaskResultStatus.SUCCESSFUL


@pytest.mark.django_db(transaction=True)
def test_the_worker_runs_a_periodic_job_enqueued_by_two_schedulers_once(org_a, settings):
    settings.TASKS = DATABASE_TASKS
    reclaim_month_start.enqueue()
    reclaim_month_start.enqueue()

    worker = run_worker()

    assert worker.returncode == 0, worker.stderr
    assert set(DBTaskResult.objects.values_list("status", flat=True)) == {"SUCCESSFUL"}
    run = PeriodicRun.objects.get()
    assert (run.job, run.status) == ("reclaim_idle", "done")
