"""An unreachable database answers 503 with Retry-After wherever the request meets it: in the
session or authentication middleware before any view, or in a view. The real outage (a
PostgreSQL cluster stopped and started under the running app) is tests/test_database_outage.py.
"""

from unittest import mock

import pytest
from django.db import OperationalError
from django.test import Client
from psycopg_pool import PoolTimeout

SESSION_LOAD = "django.contrib.sessions.backends.db.SessionStore.load"


@pytest.fixture
def signed_in(alice):
    client = Client(raise_request_exception=False)  # as a server does: an answer, not a raise
    client.force_login(alice)
    return client


@pytest.mark.parametrize(
    "failure",
    [
        OperationalError("connection to server at 127.0.0.1 failed: Connection refused"),
        PoolTimeout("couldn't get a connection after 2.00 sec"),
    ],
)
@pytest.mark.django_db
def test_a_database_down_before_the_view_answers_a_503_page_with_retry_after(signed_in, failure):
    with mock.patch(SESSION_LOAD, side_effect=failure):
        response = signed_in.get("/panel/users/")
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response["Cache-Control"] == "no-store"
    assert "Temporarily unavailable" in response.content.decode()


@pytest.mark.django_db
def test_a_database_down_is_asked_once_per_request_not_again_on_the_way_out(signed_in, alice):
    with mock.patch(SESSION_LOAD, side_effect=OperationalError("gone")) as load:
        response = signed_in.get("/panel/users/")
    assert response.status_code == 503
    assert load.call_count == 1  # each attempt waits for the pool's timeout
    assert signed_in.get("/panel/users/").status_code == 200  # still signed in afterwards


@pytest.mark.django_db
def test_a_database_down_under_the_api_answers_json_503(signed_in):
    with mock.patch(SESSION_LOAD, side_effect=OperationalError("server closed the connection")):
        response = signed_in.get("/api/v1/users/bob@example.com/balance")
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response.json()["error"] == "database_unavailable"
    assert response.json()["detail"]


@pytest.mark.django_db
def test_a_database_down_in_a_view_answers_503(signed_in):
    with mock.patch(
        "tokens.views.users.selectors.pending_summary", side_effect=OperationalError("gone")
    ):
        response = signed_in.get("/panel/users/")
    assert response.status_code == 503 and response["Retry-After"]


@pytest.mark.django_db
def test_the_503_page_carries_the_security_headers(signed_in):
    with mock.patch(SESSION_LOAD, side_effect=OperationalError("gone")):
        response = signed_in.get("/panel/users/")
    assert response.status_code == 503
    assert response["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_any_other_failure_still_answers_the_500_page(signed_in):
    with mock.patch(SESSION_LOAD, side_effect=RuntimeError("a bug")):
        response = signed_in.get("/panel/users/")
    assert response.status_code == 500
    assert "Retry-After" not in response
    assert "Something went wrong" in response.content.decode()
