"""asksage_admin.ops.asgi: the request id, access line and metrics reach the requests that
Django's middleware never sees (the usage API's fast path answers ahead of Django)."""

import io
import json
import logging

import pytest
from django.core.asgi import get_asgi_application

from asksage_admin.lib.request_id import current_request_id
from asksage_admin.ops.asgi import RequestContextASGI
from asksage_admin.ops.logging import logging_config
from tests.asgi import AsgiClient


@pytest.fixture
def log_lines():
    conf = dict(logging_config(level="INFO", log_format="json")["formatters"]["structured"])
    handler = logging.StreamHandler(stream := io.StringIO())
    handler.setFormatter(conf.pop("()")(**conf))
    logging.getLogger().addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logging.getLogger().removeHandler(handler)


async def fast_path(scope, receive, send):
    """Answers as the fast path does, ahead of Django, logging a line of its own."""
    logging.getLogger("tokens.usage_api.fastpath").warning("insufficient tokens")
    headers = [(b"content-type", b"application/json"), (b"x-request-id", b"forged")]
    await send({"type": "http.response.start", "status": 402, "headers": headers})
    await send({"type": "http.response.body", "body": b"{}"})
    assert current_request_id() is not None


@pytest.fixture
def client():
    client = AsgiClient(RequestContextASGI(fast_path))
    yield client
    client.close()


def test_an_answer_outside_django_carries_the_request_id_and_gets_one_access_line(
    client, log_lines
):
    answer = client.request("POST", "/api/v1/usage", "{}", x_request_id="gw-123")
    assert answer.status == 402
    assert answer["x-request-id"] == "gw-123"  # one header, the bound id, not the app's
    assert [n for n, _ in answer.messages[0]["headers"]].count(b"x-request-id") == 1
    lines = log_lines()
    assert {line["request_id"] for line in lines} == {"gw-123"}
    access = [line for line in lines if line["logger"] == "asksage.access"]
    assert len(access) == 1
    assert (access[0]["view"], access[0]["status"], access[0]["path"]) == (
        "api:usage",
        402,
        "/api/v1/usage",
    )


def test_a_malformed_incoming_id_is_replaced_outside_django_too(client):
    answer = client.request("POST", "/api/v1/usage", "{}", x_request_id="bad id\r\nx: y")
    assert len(answer["x-request-id"]) == 32 and " " not in answer["x-request-id"]


@pytest.fixture
def django_client(db):
    """Before log_lines: setting Django up configures logging afresh (dropping its handler)."""
    client = AsgiClient(RequestContextASGI(get_asgi_application()))
    yield client
    client.close()


def test_a_request_django_serves_keeps_the_same_id_and_is_logged_once(django_client, log_lines):
    answer = django_client.request("GET", "/healthz", x_request_id="edge-9")
    assert (answer.status, answer["x-request-id"]) == (200, "edge-9")
    answer = django_client.request("GET", "/no/such/page/", x_request_id="edge-10")
    assert (answer.status, answer["x-request-id"]) == (404, "edge-10")
    access = [line for line in log_lines() if line["logger"] == "asksage.access"]
    # Once each, by Django's middleware: the probe at DEBUG (not kept at INFO), the 404 at INFO.
    assert [(line["view"], line["request_id"]) for line in access] == [("unresolved", "edge-10")]
