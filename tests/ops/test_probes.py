"""/healthz and /readyz: what a load balancer asks, answered quickly and without detail."""

import datetime as dt
from unittest import mock

import pytest
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult, get_date_max

from asksage_admin.lib import health


@pytest.fixture(autouse=True)
def _fresh_migrations_check():
    health.forget_migrations_check()
    yield
    health.forget_migrations_check()


def database_down():
    return mock.patch.object(
        BaseDatabaseWrapper,
        "cursor",
        side_effect=OperationalError("connection to 10.0.0.7 refused"),
    )


def test_the_probes_have_their_addresses():
    assert (reverse("ops:healthz"), reverse("ops:readyz")) == ("/healthz", "/readyz")


def test_healthz_answers_ok_without_touching_the_database(client):
    """No django_db mark: any database access would raise (and the client re-raises)."""
    with database_down():
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok"
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_readyz_answers_200_when_the_database_answers_and_migrations_are_applied(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok", "tasks": "ok"},
    }


@pytest.mark.django_db
def test_readyz_answers_503_while_the_database_is_down_and_200_once_it_is_back():
    client = Client(raise_request_exception=False)
    with database_down():
        response = client.get("/readyz")
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "failing", "migrations": "skipped", "tasks": "skipped"},
    }
    assert b"10.0.0.7" not in response.content and b"refused" not in response.content
    assert client.get("/readyz").status_code == 200  # no restart needed


@pytest.mark.django_db
def test_readyz_answers_503_naming_migrations_when_one_is_not_applied(client):
    pending = [(mock.Mock(), False)]
    with mock.patch.object(MigrationExecutor, "migration_plan", return_value=pending):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "migrations": "failing", "tasks": "ok"}


@pytest.mark.django_db
def test_a_good_migrations_answer_is_reused_so_each_probe_costs_two_queries(
    client, django_assert_num_queries
):
    assert client.get("/readyz").status_code == 200
    with (
        mock.patch.object(MigrationExecutor, "migration_plan") as plan,
        django_assert_num_queries(2),  # SELECT 1, and the task queue's oldest due task
    ):
        assert client.get("/readyz").status_code == 200
    plan.assert_not_called()


@pytest.mark.django_db
def test_a_registered_check_that_fails_makes_readyz_503_naming_only_the_check(client):
    def queue_not_stalled():
        raise health.NotReady("oldest task waiting 900 s, secret detail")

    with mock.patch.dict(health._checks, {"tasks": queue_not_stalled}):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["tasks"] == "failing"
    assert b"secret detail" not in response.content


@pytest.mark.django_db
def test_a_registered_check_that_passes_is_listed(client):
    with mock.patch.dict(health._checks):
        health.register_readiness_check("tasks", lambda: None)
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["tasks"] == "ok"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_any_host_over_plain_http_as_a_balancer_asks(client, settings, path):
    """A balancer asks a node by its address, without TLS: no 400 for the host, no redirect."""
    settings.ALLOWED_HOSTS = ["admin.example.gov"]
    settings.SECURE_SSL_REDIRECT = True
    assert client.get(path, HTTP_HOST="10.1.2.3:8000").status_code == 200
    assert client.get("/accounts/login/", HTTP_HOST="10.1.2.3:8000").status_code == 400


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_refuse_other_methods(client, path):
    response = client.post(path)
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


def due_task(*, waited: dt.timedelta) -> DBTaskResult:
    """A task in the database queue, due `waited` ago, that no worker has picked up."""
    task = DBTaskResult.objects.create(
        task_path="tokens.tasks.task_results_prune",
        args_kwargs={"args": [], "kwargs": {}},
        backend_name="default",
        run_after=get_date_max(),
    )
    DBTaskResult.objects.filter(pk=task.pk).update(enqueued_at=timezone.now() - waited)
    return task


@pytest.mark.django_db
def test_readyz_fails_once_a_due_task_waits_past_the_limit_as_when_no_worker_runs(client, settings):
    settings.TASK_QUEUE_STALL_SECONDS = 600
    due_task(waited=dt.timedelta(seconds=30))
    assert client.get("/readyz").status_code == 200  # a worker is merely busy
    stuck = due_task(waited=dt.timedelta(minutes=20))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["tasks"] == "failing"
    assert "worker" not in response.content.decode()  # the reason goes to the log only
    stuck.delete()  # a worker picked it up
    assert client.get("/readyz").status_code == 200


@pytest.mark.django_db
def test_a_task_delayed_on_purpose_counts_from_when_it_falls_due(client, settings):
    settings.TASK_QUEUE_STALL_SECONDS = 600
    later = due_task(waited=dt.timedelta(hours=2))
    DBTaskResult.objects.filter(pk=later.pk).update(
        run_after=timezone.now() + dt.timedelta(minutes=5)  # a retry with backoff
    )
    assert client.get("/readyz").status_code == 200


@pytest.mark.django_db
def test_the_stall_check_can_be_turned_off(client, settings):
    settings.TASK_QUEUE_STALL_SECONDS = 0
    due_task(waited=dt.timedelta(days=1))
    assert client.get("/readyz").status_code == 200
