"""Failures in the middle of a batch save leave nothing half-written."""

from unittest import mock

import pytest
from django.db import OperationalError, connection
from django.test import Client
from django.urls import reverse

from accounts.models import Membership
from analytics.models import AuditLog
from tokens import services
from tokens.models import AllocationBatch, PendingEdit

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
        mock.patch("tokens.services.audit_bulk", side_effect=failure),
        pytest.raises(type(failure)),
    ):
        services.allocation_batch_save(admin=alice, org=org_a, column=INF)
    assert values() == [200_000, 200_000]
    assert not AllocationBatch.objects.exists()
    assert not AuditLog.objects.filter(action="allocation.changed").exists()
    assert PendingEdit.objects.count() == 2  # the admin's edits are still there to retry
    services.allocation_batch_save(admin=alice, org=org_a, column=INF)
    assert values() == [300_000, 400_000]


@pytest.mark.django_db(transaction=True)
def test_pending_edits_survive_a_restart(alice, org_a, pending):
    connection.close()  # what a restart does to the app's connections
    client = Client()
    client.force_login(alice)
    html = client.get(reverse("tokens:users")).content.decode()
    assert "Save Changes — Max Inference Tokens (2)" in html
