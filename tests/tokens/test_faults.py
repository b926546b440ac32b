"""Failures in the middle of a batch save leave nothing half-written."""

from unittest import mock

import pytest
from django.db import OperationalError, connection
from django.test import Client
from django.urls import reverse

from accounts.models import Membership
from audit.models import AuditLog
from tokens.models import AllocationBatch, PendingEdit
from tokens.services import allocations as allocation_services
from tokens.services import api_keys as api_key_services
from tokens.services import distribution as distribution_services
from tokens.services import requests as request_services

INF = "max_inference_tokens"


@pytest.fixture
def pending(alice, bob, org_a):
    for user, value in ((alice, 300_000), (bob, 400_000)):
        PendingEdit.objects.create(
            organization=org_a,
            admin=alice,
            target=user,
            column=INF,
            old_value=200_000,
            new_value=value,
        )


def values():
    return sorted(Membership.objects.values_list(INF, flat=True))


@pytest.mark.parametrize(
    "failure", [RuntimeError("boom"), OperationalError("server closed the connection")]
)
@pytest.mark.django_db(transaction=True)
def test_a_failure_after_the_update_rolls_the_whole_batch_back(alice, org_a, pending, failure):
    with (
        mock.patch("tokens.services.allocations.audit_bulk", side_effect=failure),
        pytest.raises(type(failure)),
    ):
        allocation_services.allocation_batch_save(admin=alice, org=org_a, column=INF)
    assert values() == [200_000, 200_000]
    assert not AllocationBatch.objects.exists()
    assert not AuditLog.objects.filter(action="allocation.changed").exists()
    assert PendingEdit.objects.count() == 2  # the admin's edits are still there to retry
    allocation_services.allocation_batch_save(admin=alice, org=org_a, column=INF)
    assert values() == [300_000, 400_000]


@pytest.mark.django_db(transaction=True)
def test_pending_edits_survive_a_restart(alice, org_a, pending):
    connection.close()  # what a restart does to the app's connections
    client = Client()
    client.force_login(alice)
    html = client.get(reverse("tokens:users")).content.decode()
    assert "Save Changes — Max Inference Tokens (2)" in html


# Approvals, distribution actions and usage records -----------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_failure_in_the_middle_of_an_approval_leaves_nothing_half_written(alice, bob, org_a):
    from tokens.models import TokenRequest

    request = request_services.token_request_create(
        user=bob, kind="inference", amount=300_000, reason="Quarterly reports"
    )
    with (
        mock.patch("tokens.services.requests.audit_record", side_effect=OperationalError("gone")),
        pytest.raises(OperationalError),
    ):
        request_services.token_request_approve(admin=alice, org=org_a, request_id=request.pk)
    request = TokenRequest.objects.get(pk=request.pk)
    assert request.status == "pending" and request.granted is None
    assert values() == [200_000, 200_000]
    assert not AllocationBatch.objects.exists()
    request_services.token_request_approve(admin=alice, org=org_a, request_id=request.pk)
    assert values() == [200_000, 500_000]


@pytest.mark.django_db(transaction=True)
def test_a_failure_in_the_middle_of_a_distribution_action_applies_nothing(alice, bob, org_a):
    with (
        mock.patch("tokens.services.distribution.audit_record", side_effect=RuntimeError("boom")),
        pytest.raises(RuntimeError),
    ):
        distribution_services.distribution_apply(
            admin=alice, org=org_a, kind="inference", action="set", amount=1_000_000
        )
    assert values() == [200_000, 200_000]
    assert not AllocationBatch.objects.exists()
    assert not AuditLog.objects.filter(action__startswith="distribution").exists()


@pytest.mark.django_db(transaction=True)
def test_a_connection_lost_while_recording_usage_records_nothing_and_answers_503(
    client, alice, bob, org_a
):
    from tokens.models import DailyUsage, MonthlyUsage, UsageEvent

    key = api_key_services.api_key_create(actor=alice, org=org_a, name="Gateway")[1]

    def lose_connection_at_the_rollup(execute, sql, params, many, context):
        if "tokens_dailyusage" in sql:
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    body = {"user": bob.email, "kind": "inference", "tokens": 1_000, "model": "gpt-4o"}
    with connection.execute_wrapper(lose_connection_at_the_rollup):
        response = client.post(
            "/api/v1/usage",
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key}",
            HTTP_IDEMPOTENCY_KEY="fault-1",
        )
    assert response.status_code == 503 and response["Retry-After"]
    assert not UsageEvent.objects.exists()
    assert not DailyUsage.objects.exists()
    assert not MonthlyUsage.objects.filter(used__gt=0).exists()
    retry = client.post(
        "/api/v1/usage",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
        HTTP_IDEMPOTENCY_KEY="fault-1",
    )
    assert retry.status_code == 200 and retry.json()["used"] == 1_000
