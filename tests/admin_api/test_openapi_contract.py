"""The admin API against its own OpenAPI document (schemathesis): for generated valid and
invalid requests to every operation, with a key holding every admin scope, no answer is a
500, every status and body is one the document declares, and every body fits its schema.
The document is the one django-ninja generates, fetched from the app as a client would."""

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

schema = schemathesis.openapi.from_wsgi("/api/v1/admin/openapi.json", WSGIHandler())


@pytest.fixture
def _connection_kept():
    """As Django's test client does: the test's transaction outlives each request."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def secret(key_for, settings, _connection_kept):
    settings.ADMIN_API_RATE = "1000000/m"
    return key_for("admin:read", "admin:write")


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_the_api_keeps_its_documented_contract(case, secret, bob):
    # Excluded: `ignored_auth` (the key is valid: tests/admin_api/test_auth.py tries bad
    # ones), and `positive_data_acceptance`: some schema-valid requests are refused on purpose
    # (a made-up cursor, a custom period without its dates, an unknown action filter).
    case.call_and_validate(
        headers={"Authorization": f"Bearer {secret}"},
        excluded_checks=[ignored_auth, positive_data_acceptance],
    )
