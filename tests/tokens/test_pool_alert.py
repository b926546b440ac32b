"""The "unallocated below X" alert: every write that lowers the pool checks it, once a month.

Org A buys 4,000,000 inference tokens; alice and bob hold 200,000 each: 3,600,000 unallocated.
"""

import datetime as dt

import pytest
import time_machine
from django.core import mail

from accounts.models import Membership
from asksage_admin.lib.amounts import parse_tokens
from audit.models import AuditLog
from tests.factories import PurchaseFactory, UserFactory, set_max
from tokens import organizations
from tokens.models import AlertSent, AllocationPolicy
from tokens.services import allocations as allocation_services
from tokens.services import auto_increase as auto_increase_services


@pytest.fixture(autouse=True)
def clock():
    """Mid-March 2026: the alert's month, and the purchases' first month (fixtures run after)."""
    with time_machine.travel(dt.datetime(2026, 3, 15, 12, tzinfo=dt.UTC), tick=True):
        yield


@pytest.fixture
def alert_at(org_a):
    def set_alert(amount: int) -> AllocationPolicy:
        return AllocationPolicy.objects.create(
            organization=org_a, floor_inference=200_000, low_unallocated_alert=amount
        )

    return set_alert


def edit(admin, org, user, value: str) -> None:
    """Confirm a cell as typed (parsed as the cell's form does)."""
    allocation_services.pending_edit_set(
        admin=admin,
        org=org,
        membership=Membership.objects.get(user=user),
        column="max_inference_tokens",
        value=parse_tokens(value),
    )


def pool_mails() -> list:
    return [m for m in mail.outbox if "unallocated" in m.subject]


def test_a_table_save_that_drops_the_pool_below_the_alert_emails_the_admins_once(
    alice, bob, org_a, alert_at, django_capture_on_commit_callbacks
):
    alert_at(3_000_000)
    edit(alice, org_a, bob, "1M")  # 3.6M → 2.8M unallocated
    with django_capture_on_commit_callbacks(execute=True):
        allocation_services.allocation_batch_save(
            admin=alice, org=org_a, column="max_inference_tokens"
        )

    [sent] = pool_mails()
    assert sent.subject == "Acme Agency: only 2,800,000 inference tokens are unallocated"
    assert sent.to == ["alice@example.com"]
    alert = AuditLog.objects.get(action="alert.pool")
    assert (alert.organization, alert.new_value) == (org_a, "2800000")
    assert list(AlertSent.objects.values_list("key", flat=True)) == ["pool:inference"]


def test_a_second_save_below_the_alert_in_the_same_month_sends_nothing_more(
    alice, bob, org_a, alert_at, django_capture_on_commit_callbacks
):
    alert_at(3_000_000)
    with django_capture_on_commit_callbacks(execute=True):
        edit(alice, org_a, bob, "1M")
        allocation_services.allocation_batch_save(
            admin=alice, org=org_a, column="max_inference_tokens"
        )
        edit(alice, org_a, bob, "1.5M")
        allocation_services.allocation_batch_save(
            admin=alice, org=org_a, column="max_inference_tokens"
        )
    assert len(pool_mails()) == 1
    assert AuditLog.objects.filter(action="alert.pool").count() == 1


def test_a_table_save_that_stays_above_the_alert_sends_nothing(
    alice, bob, org_a, alert_at, django_capture_on_commit_callbacks
):
    alert_at(3_000_000)
    edit(alice, org_a, bob, "500k")  # 3.6M → 3.3M
    with django_capture_on_commit_callbacks(execute=True):
        allocation_services.allocation_batch_save(
            admin=alice, org=org_a, column="max_inference_tokens"
        )
    assert pool_mails() == []
    assert not AuditLog.objects.filter(action="alert.pool").exists()
    assert not AlertSent.objects.exists()


def test_an_undo_that_drops_the_pool_below_the_alert_emails_the_admins(
    alice, bob, org_a, alert_at, django_capture_on_commit_callbacks
):
    set_max(bob, 1_000_000)  # 2.8M free
    alert_at(3_000_000)
    edit(alice, org_a, bob, "200k")  # gives 800,000 back: 3.6M, above the alert
    with django_capture_on_commit_callbacks(execute=True):
        saved = allocation_services.allocation_batch_save(
            admin=alice, org=org_a, column="max_inference_tokens"
        )
    assert pool_mails() == []

    with django_capture_on_commit_callbacks(execute=True):
        allocation_services.allocation_batch_undo(admin=alice, org=org_a, batch_id=saved.batch.id)

    [sent] = pool_mails()
    assert sent.subject == "Acme Agency: only 2,800,000 inference tokens are unallocated"
    assert AuditLog.objects.filter(action="alert.pool").count() == 1


def test_a_member_added_by_sales_that_drops_the_pool_below_the_alert_emails_the_admins(
    alice, bob, sam, org_a, alert_at, django_capture_on_commit_callbacks
):
    alert_at(3_500_000)
    newcomer = UserFactory(email="nina@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        organizations.membership_add(actor=sam, org=org_a, user=newcomer)  # 3.6M → 3.4M

    [sent] = pool_mails()
    assert sent.subject == "Acme Agency: only 3,400,000 inference tokens are unallocated"
    assert AuditLog.objects.filter(action="alert.pool").count() == 1


def test_the_periodic_run_alerts_when_a_purchase_that_ended_shrinks_the_pool(
    alice, bob, org_a, alert_at, django_capture_on_commit_callbacks
):
    """A purchase ending lowers the pool at the month's turn, with no write: the cron sees it."""
    set_max(bob, 2_200_000)
    alert_at(2_000_000)
    march = dt.date(2026, 3, 1)
    PurchaseFactory(organization=org_a, start_month=march, end_month=march)  # +2M in March
    with django_capture_on_commit_callbacks(execute=True):
        auto_increase_services.auto_increase_run()
    assert pool_mails() == []  # March: 6M purchased, 2.4M allocated

    april = dt.datetime(2026, 4, 1, 6, tzinfo=dt.UTC)
    with (
        time_machine.travel(april, tick=True),
        django_capture_on_commit_callbacks(execute=True),
    ):
        auto_increase_services.auto_increase_run()
        auto_increase_services.auto_increase_run()
    [sent] = pool_mails()
    assert sent.subject == "Acme Agency: only 1,600,000 inference tokens are unallocated"
    assert AuditLog.objects.filter(action="alert.pool").count() == 1
