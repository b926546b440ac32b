"""The Activity badge: checks the entries since its checkpoint and says how far, and when the
last full verification ran."""

import datetime as dt

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.urls import reverse

from audit.models import AuditCheckpoint, AuditLog
from audit.services import audit_record

URL = reverse("analytics:integrity")
HX = {"HX-Request": "true"}
NOON = dt.datetime(2026, 6, 17, 12, 0, tzinfo=dt.UTC)


def badge(client, **headers) -> str:
    response = client.get(URL, headers=headers)
    assert response.status_code == 200
    return response.content.decode()


def tamper(row: AuditLog) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {AuditLog._meta.db_table} SET old_value = 'x' WHERE id = %s", [row.pk]
        )


def test_the_badge_says_up_to_which_entry_and_when_it_was_verified(alice_client, audit):
    for _ in range(3):
        audit()

    with time_machine.travel(NOON, tick=False):
        html = badge(alice_client, **HX)

    assert "Audit trail intact" in html and "verified up to #3 at" in html
    assert '<time datetime="2026-06-17T12:00:00Z"' in html
    assert "3 entries checked" in html


def test_a_second_view_checks_only_the_new_entries(alice_client, audit):
    for _ in range(3):
        audit()
    badge(alice_client, **HX)
    audit()

    html = badge(alice_client, **HX)

    assert "verified up to #4" in html and "1 entry checked" in html


def test_the_badge_says_the_last_full_verification_never_ran_then_when(alice_client, audit):
    audit()
    assert "Last full verification: never" in badge(alice_client, **HX)

    with time_machine.travel(NOON, tick=False):
        call_command("verify_audit")

    html = badge(alice_client, **HX)
    assert 'Last full verification: <time datetime="2026-06-17T12:00:00Z"' in html


def test_tampering_after_the_checkpoint_is_shown_by_the_badge(alice_client, audit, org_a):
    audit()
    badge(alice_client, **HX)
    edited = audit()
    tamper(edited)

    html = badge(alice_client, **HX)

    assert f"Audit trail broken at entry {edited.pk} (#2): its content was altered" in html
    assert AuditCheckpoint.objects.get(key=f"org:{org_a.pk}").seq == 1


def test_a_break_below_the_checkpoint_shows_once_the_full_run_found_it(alice_client, audit):
    _first, edited, _third = audit(), audit(), audit()
    badge(alice_client, **HX)
    tamper(edited)
    assert "Audit trail intact" in badge(alice_client, **HX)  # the badge trusts #1–#3

    with pytest.raises(CommandError):
        call_command("verify_audit")

    for html in (badge(alice_client, **HX), badge(alice_client)):
        assert "is-broken" in html
        assert f"Audit trail broken at entry {edited.pk} (#2): its content was altered" in html


def test_when_capped_the_badge_says_how_far_it_verified(alice_client, audit, monkeypatch):
    monkeypatch.setattr("analytics.views.BADGE_BUDGET", 2)
    for _ in range(5):
        audit()

    html = badge(alice_client, **HX)

    assert "Audit trail verified up to #2" in html
    assert "2 entries checked now; 3 newer not checked yet" in html
    assert "verified up to #4" in badge(alice_client, **HX)
    assert "Audit trail intact" in badge(alice_client, **HX)


def test_another_organizations_full_run_break_is_not_shown(carol_client, audit, org_b, carol):
    audit()
    tamper(audit())
    audit_record(action="org.updated", organization=org_b, actor=carol)
    with pytest.raises(CommandError):
        call_command("verify_audit")

    html = badge(carol_client, **HX)

    assert "Audit trail intact" in html and "is-broken" not in html


@pytest.mark.parametrize("below", [5, 400])
def test_its_query_count_does_not_grow_with_the_entries_below_the_checkpoint(
    alice_client, org_a, alice, below, django_assert_max_num_queries
):
    AuditLog.objects.bulk_create(
        [AuditLog(organization=org_a, actor=alice, action="x") for _ in range(below)]
    )
    call_command("verify_audit")
    AuditLog.objects.bulk_create([AuditLog(organization=org_a, action="x") for _ in range(3)])

    # Session, user, membership; checkpoint, head, new rows, advance; sidebar badge; the
    # session save (savepoint, update, release).
    with django_assert_max_num_queries(11):
        html = badge(alice_client, **HX)

    assert f"verified up to #{below + 3}" in html and "3 entries checked" in html


def test_an_outsiders_badge_never_moves_another_organizations_checkpoint(
    carol_client, audit, org_a, org_b, carol
):
    audit()
    audit_record(action="org.updated", organization=org_b, actor=carol)

    badge(carol_client, **HX)

    assert list(AuditCheckpoint.objects.values_list("key", flat=True)) == [f"org:{org_b.pk}"]


def test_the_header_badge_links_to_the_details_page(alice_client, audit):
    audit()

    assert f'href="{URL}">Details</a>' in badge(alice_client, **HX)
    assert ">Details</a>" not in badge(alice_client)  # the details page itself
