"""Two admins deciding the same request at once: exactly one wins (real threads).

On PostgreSQL the threads overlap and the organization row lock serializes them; on SQLite
the database lock does. Either way the second admin is refused and nothing is granted twice.
"""

import pytest

from tests.concurrency import run_together
from tests.factories import MembershipFactory, max_of
from tokens.models import AllocationBatch, Notification
from tokens.services import requests as request_services

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin2(org_a):
    """A second admin of org A, racing alice."""
    return MembershipFactory(organization=org_a, role="admin").user


@pytest.fixture
def launch_request(bob):
    """bob's pending request for 500K more inference tokens (he has 200K)."""
    return request_services.token_request_create(
        user=bob, kind="inference", amount=500_000, reason="Launch"
    )


def test_two_admins_approving_the_same_request_at_once_grant_it_once(
    org_a, alice, bob, admin2, launch_request
):
    outcomes = run_together(
        lambda: request_services.token_request_approve(
            admin=alice, org=org_a, request_id=launch_request.pk
        ),
        lambda: request_services.token_request_approve(
            admin=admin2, org=org_a, request_id=launch_request.pk
        ),
    )
    assert sorted(o[0] for o in outcomes) == ["ok", "refused"]
    refusal = next(o[1] for o in outcomes if o[0] == "refused")
    assert "already approved" in refusal
    assert max_of(bob) == 700_000
    assert AllocationBatch.objects.filter(source="request").count() == 1


def test_an_approval_racing_a_denial_leaves_one_decision(org_a, alice, bob, admin2, launch_request):
    outcomes = run_together(
        lambda: request_services.token_request_approve(
            admin=alice, org=org_a, request_id=launch_request.pk
        ),
        lambda: request_services.token_request_deny(
            admin=admin2, org=org_a, request_id=launch_request.pk, note="No"
        ),
    )
    assert sorted(o[0] for o in outcomes) == ["ok", "refused"]
    launch_request.refresh_from_db()
    expected = 700_000 if launch_request.status == "approved" else 200_000
    assert max_of(bob) == expected


def test_two_approvals_that_together_exceed_the_pool_cannot_both_pass(org_a, alice, bob):
    carl = MembershipFactory(organization=org_a).user  # 600K allocated → 3.4M unallocated
    first = request_services.token_request_create(
        user=bob, kind="inference", amount=2_000_000, reason="A"
    )
    second = request_services.token_request_create(
        user=carl, kind="inference", amount=2_000_000, reason="B"
    )
    outcomes = run_together(
        lambda: request_services.token_request_approve(admin=alice, org=org_a, request_id=first.pk),
        lambda: request_services.token_request_approve(
            admin=alice, org=org_a, request_id=second.pk
        ),
    )
    assert sorted(o[0] for o in outcomes) == ["ok", "refused"]
    assert "1,400,000 inference tokens are unallocated" in next(
        o[1] for o in outcomes if o[0] == "refused"
    )


def test_a_member_cancelling_while_an_admin_approves_leaves_one_outcome(
    org_a, alice, bob, launch_request
):
    """The request row is locked by both: the loser re-reads the status and is refused, so
    a cancelled request is never granted and an approved one never shows as cancelled."""
    outcomes = run_together(
        lambda: request_services.token_request_approve(
            admin=alice, org=org_a, request_id=launch_request.pk
        ),
        lambda: request_services.token_request_cancel(user=bob, request_id=launch_request.pk),
    )
    assert sorted(o[0] for o in outcomes) == ["ok", "refused"]
    launch_request.refresh_from_db()
    granted = launch_request.status == "approved"
    assert launch_request.status in {"approved", "cancelled"}
    assert max_of(bob) == (700_000 if granted else 200_000)
    assert Notification.objects.filter(recipient=bob).count() == (1 if granted else 0)
