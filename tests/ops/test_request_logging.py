"""Structured logs: one JSON object a line, the request id on each line written while a
request is served, and an access line per request."""

import io
import json
import logging
import re
from unittest import mock

import pytest
from django.test import Client

from asksage_admin.lib import health
from asksage_admin.lib.access_log import access_logged
from asksage_admin.lib.request_id import bind_request_id, unbind_request_id
from asksage_admin.ops.logging import logging_config


@pytest.fixture
def log_lines():
    """The JSON lines the production formatter writes, from any logger, during the test."""
    formatter_conf = dict(
        logging_config(level="INFO", log_format="json")["formatters"]["structured"]
    )
    formatter = formatter_conf.pop("()")(**formatter_conf)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


def failing_check():
    raise health.NotReady("stalled")


@pytest.mark.django_db
def test_every_line_logged_while_serving_a_request_carries_its_id(client, log_lines):
    with mock.patch.dict(health._checks, {"tasks": failing_check}):
        response = client.get("/readyz")
    lines = log_lines()
    assert {line["logger"] for line in lines} >= {"asksage_admin.lib.health", "asksage.access"}
    assert {line["request_id"] for line in lines} == {response["X-Request-ID"]}
    logging.getLogger("after").warning("outside any request")
    assert "request_id" not in log_lines()[-1]


@pytest.mark.django_db
def test_a_well_formed_incoming_request_id_is_kept_and_echoed(client, log_lines):
    response = client.get("/accounts/login/", HTTP_X_REQUEST_ID="lb-7f3a.0001:edge")
    assert response["X-Request-ID"] == "lb-7f3a.0001:edge"
    assert log_lines()[-1]["request_id"] == "lb-7f3a.0001:edge"


@pytest.mark.parametrize(
    "incoming", ['forged\n{"level": "critical"}', "a" * 129, "has space", "", "-leading"]
)
def test_a_malformed_incoming_request_id_is_replaced_by_a_fresh_one(client, incoming):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=incoming)
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


@pytest.mark.django_db
def test_the_access_line_names_the_view_without_the_query_string_and_the_signed_in_user(
    alice, log_lines
):
    client = Client()
    client.force_login(alice)
    response = client.get("/panel/users/?q=secret-sally@example.com")
    access = [line for line in log_lines() if line["logger"] == "asksage.access"]
    assert len(access) == 1
    line = access[0]
    assert line["event"] == "request" and line["level"] == "info"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/panel/users/", 200)
    assert line["view"] == response.resolver_match.view_name
    assert line["user_id"] == alice.pk
    assert line["duration_ms"] >= 0 and "timestamp" in line
    assert "secret-sally" not in json.dumps(line)


def test_the_access_line_takes_the_client_address_behind_trusted_proxies(
    client, settings, log_lines
):
    settings.TRUSTED_PROXY_COUNT = 1
    client.get(
        "/no/such/page/", HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.9", REMOTE_ADDR="10.0.0.2"
    )
    settings.TRUSTED_PROXY_COUNT = 0
    client.get(
        "/no/such/page/", HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.9", REMOTE_ADDR="10.0.0.2"
    )
    access = [line for line in log_lines() if line["logger"] == "asksage.access"]
    assert [line["client_ip"] for line in access] == ["203.0.113.9", "10.0.0.2"]
    assert [line["status"] for line in access] == [404, 404]


def test_access_log_off_writes_no_access_line(client, settings, log_lines):
    settings.ACCESS_LOG = False
    client.get("/no/such/page/")
    assert not [line for line in log_lines() if line["logger"] == "asksage.access"]


def test_code_outside_the_middleware_writes_the_same_access_line_with_its_request_id(log_lines):
    """What the usage API's fast path (ahead of Django's middleware) calls."""
    request_id, tokens = bind_request_id("gateway-7")
    try:
        access_logged(
            method="POST",
            path="/api/v1/usage",
            view="api:usage",
            status=402,
            seconds=0.0042,
            client_ip="10.0.0.5",
        )
    finally:
        unbind_request_id(tokens)
    line = log_lines()[-1]
    assert line["request_id"] == request_id == "gateway-7"
    assert (line["logger"], line["status"], line["duration_ms"]) == ("asksage.access", 402, 4.2)
