"""An approval and a cell edit of the same member at once: both go through, no deadlock.

Found by tests/test_n_servers.py: approving locked the requester's user row FOR UPDATE (the
request was read `select_for_update().select_related("user")`, and PostgreSQL locks every
joined row), then waited for the member's row, which a cell edit held; the cell edit's new
PendingEdit checks its foreign key to that user at commit (Django's constraints are
deferred), so it waited for the approval: PostgreSQL broke the cycle by failing one with
"deadlock detected", a 503 in the panel.
"""

import threading

import pytest
from django.db import connection

from tests.concurrency import run_together, wait_for_lock_waiters
from tests.factories import max_of
from tokens.models import PendingEdit, TokenRequest
from tokens.services import allocations as allocation_services
from tokens.services import requests as request_services

pytestmark = pytest.mark.django_db(transaction=True)


def test_approving_while_the_same_member_s_cell_is_edited_does_not_deadlock(
    monkeypatch, org_a, alice, bob
):
    asked = request_services.token_request_create(
        user=bob, kind="inference", amount=50_000, reason="A bigger project"
    )
    # The order that deadlocked: the cell edit locks the member's row; the approval starts,
    # and waits for that row; only then does the cell edit insert its PendingEdit and commit.
    edit_holds_the_member = threading.Event()
    upsert, create = allocation_services._pending_edit_upsert, PendingEdit.objects.create
    organization_lock = request_services.organization_lock

    def upsert_then_signal(**kwargs):
        edit_holds_the_member.set()
        return upsert(**kwargs)

    def lock_once_the_edit_holds_the_member(org):
        edit_holds_the_member.wait(timeout=10)
        return organization_lock(org)

    def create_once_the_approval_waits(*args, **kwargs):
        wait_for_lock_waiters(1, sqlite_pause=0.3)
        return create(*args, **kwargs)

    if connection.vendor == "postgresql":  # SQLite writes one transaction at a time
        monkeypatch.setattr(allocation_services, "_pending_edit_upsert", upsert_then_signal)
        monkeypatch.setattr(
            request_services, "organization_lock", lock_once_the_edit_holds_the_member
        )
        monkeypatch.setattr(PendingEdit.objects, "create", create_once_the_approval_waits)

    outcomes = run_together(
        lambda: allocation_services.pending_edit_set(
            admin=alice,
            org=org_a,
            membership=bob.membership,
            column="max_inference_tokens",
            value=300_000,
        ),
        lambda: request_services.token_request_approve(admin=alice, org=org_a, request_id=asked.pk),
    )

    assert [outcome[0] for outcome in outcomes] == ["ok", "ok"], outcomes
    assert TokenRequest.objects.get(pk=asked.pk).status == TokenRequest.Status.APPROVED
    assert PendingEdit.objects.get(target=bob).new_value == 300_000
    assert max_of(bob) == 250_000
