"""Each member's lifetime total (Membership.total_used, User Management's "Total usage")
equals the sum of their usage events in the organization, whichever door recorded them: the
Django view (SQLite steps or the PostgreSQL statement) or the fast path (PostgreSQL, batched),
with refusals and retries adding nothing. Backfilled by a migration, rebuilt by the seeds,
checked by `verify_usage_rollup`.

Transactional: the fast path's connections see only committed data.
"""

import datetime as dt
import importlib
from io import StringIO
from types import SimpleNamespace

import pytest
import time_machine
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from accounts.models import Membership
from asksage_admin.lib.months import current_month
from tests.factories import MembershipFactory, set_max
from tests.tokens.test_usage_rollup import URL, headers, report, via_view
from tokens import organizations, partitions
from tokens.models import MonthlyUsage
from tokens.retention import usage_retention_apply
from tokens.rollup import membership_totals_rebuild, usage_total_mismatches
from tokens.services import api_keys as api_key_services

pytestmark = pytest.mark.django_db(transaction=True)

backfill = importlib.import_module("tokens.migrations.0022_membership_total_used_backfill")


@pytest.fixture
def key_a(alice, org_a):
    return api_key_services.api_key_create(actor=alice, org=org_a, name="Gateway")[1]


def total(user) -> int:
    return Membership.objects.get(user=user).total_used


def assert_totals_consistent(org) -> None:
    assert usage_total_mismatches(organization_id=org.pk) == []
    assert usage_total_mismatches(organization_id=org.pk, against="monthly") == []


def test_the_view_adds_each_counted_usage_to_the_members_total_and_nothing_else(
    key_a, org_a, bob, alice
):
    set_max(bob, 1_000, "max_embedding_tokens")
    answers = [
        via_view(key_a, report(tokens=1_000), "a"),
        via_view(key_a, report(kind="embedding", model="embed-3", tokens=300), "b"),
        via_view(key_a, report(tokens=1_000), "a"),  # a retry: answered, not counted
        via_view(key_a, report(kind="embedding", model="embed-3", tokens=800)),  # over the max
        via_view(key_a, report(user="alice@example.com", tokens=2_000)),
    ]

    assert [a.status_code for a in answers] == [200, 200, 200, 402, 200]
    assert (total(bob), total(alice)) == (1_300, 2_000)  # both kinds, this organization
    assert_totals_consistent(org_a)


def test_the_fast_path_keeps_each_total_equal_to_the_events_with_batches_and_retries(
    asgi, key_a, org_a
):
    """Twenty members report at once (batched into few statements on PostgreSQL), twice each;
    then every report is retried at once: nothing is counted twice."""
    members = [MembershipFactory(organization=org_a).user for _ in range(20)]

    def send_all(round_: int):
        return asgi.gather(
            asgi.arequest("POST", URL, report(user=m.email, tokens=10 + i), **headers(key_a, k))
            for i, m in enumerate(members)
            for k in (f"r{round_}-{i}",)
        )

    first, second, retries = send_all(1), send_all(2), send_all(2)

    assert [a.status for a in first + second] == [200] * 40
    assert [a.json()["replayed"] for a in retries] == [True] * 20
    assert [total(m) for m in members] == [2 * (10 + i) for i in range(20)]
    assert_totals_consistent(org_a)


def test_both_doors_add_to_the_same_total(asgi, key_a, org_a, bob):
    assert asgi.request("POST", URL, report(tokens=400), **headers(key_a)).status == 200
    assert via_view(key_a, report(tokens=600)).status_code == 200

    assert total(bob) == 1_000
    assert_totals_consistent(org_a)


def test_a_member_who_leaves_and_comes_back_finds_their_total_as_it_was(key_a, org_a, bob, sam):
    MembershipFactory(organization=org_a)  # an account keeps at least 2 users
    assert via_view(key_a, report(tokens=700)).status_code == 200
    organizations.membership_remove(actor=sam, membership=Membership.objects.get(user=bob))
    organizations.membership_add(actor=sam, org=org_a, user=bob)

    assert total(bob) == 700
    assert_totals_consistent(org_a)


def test_the_migration_backfills_each_total_from_the_members_monthly_usage(
    org_a, org_b, bob, alice, dave
):
    """Both kinds and every month in the member's organization; none from elsewhere."""
    for org, user, kind, month, used in [
        (org_a, bob, "inference", "2026-01-01", 300),
        (org_a, bob, "embedding", "2026-02-01", 40),
        (org_b, bob, "inference", "2026-01-01", 5_000),  # before bob moved: not org A's
        (org_b, dave, "inference", "2026-02-01", 11),
    ]:
        MonthlyUsage.objects.create(organization=org, user=user, kind=kind, month=month, used=used)

    backfill.backfill(apps, SimpleNamespace(connection=connection))

    assert [total(u) for u in (bob, alice, dave)] == [340, 0, 11]


def test_the_command_names_a_wrong_total_fails_and_repairs_it(key_a, org_a, bob):
    assert via_view(key_a, report(tokens=1_000)).status_code == 200
    Membership.objects.filter(user=bob).update(total_used=999)

    [mismatch] = usage_total_mismatches(organization_id=org_a.pk)
    assert (mismatch.user_id, mismatch.total, mismatch.source) == (bob.pk, 999, 1_000)
    out = StringIO()
    with pytest.raises(CommandError, match="1 member total"):
        call_command("verify_usage_rollup", "--org", org_a.slug, stdout=out)
    assert f"user {bob.pk}: total 999 tokens, events 1,000" in out.getvalue()

    call_command("verify_usage_rollup", "--repair", stdout=StringIO())
    assert total(bob) == 1_000
    assert_totals_consistent(org_a)


def test_the_rebuild_sets_totals_from_monthly_usage_for_the_organizations_given(
    org_a, org_b, bob, dave
):
    month = current_month()
    MonthlyUsage.objects.create(organization=org_a, user=bob, kind="inference", month=month, used=5)
    MonthlyUsage.objects.create(
        organization=org_b, user=dave, kind="inference", month=month, used=7
    )

    assert membership_totals_rebuild(organization_ids=[org_a.pk]) >= 1

    assert (total(bob), total(dave)) == (5, 0)  # seeds hold usage without events: no check here


def test_retention_dropping_old_events_leaves_the_totals_and_the_check_holds(
    key_a, org_a, bob, settings
):
    """ "Total usage" is lifetime: the months whose events retention drops still count (their
    MonthlyUsage stays), and the check reads those months from MonthlyUsage instead."""
    settings.USAGE_RETENTION_MONTHS = 3
    now = dt.datetime(2026, 6, 17, 10, 30, tzinfo=dt.UTC)
    partitions.months_ensure(dt.date(2026, 2, 1), dt.date(2026, 6, 1))
    for moment, tokens in [(dt.datetime(2026, 2, 27, 12, tzinfo=dt.UTC), 300), (now, 100)]:
        with time_machine.travel(moment, tick=False):
            assert via_view(key_a, report(tokens=tokens)).status_code == 200

    with time_machine.travel(now, tick=False):
        assert usage_retention_apply(now=now) == [(dt.date(2026, 2, 1), 1)]
        assert total(bob) == 400
        assert_totals_consistent(org_a)
