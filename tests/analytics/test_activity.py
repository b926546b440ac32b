"""The Activity Logs page: the organization's audit trail, filtered from the query string."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditLog
from audit.services import audit_record

URL = reverse("analytics:activity")
HX = {"HX-Request": "true"}


def listed(response) -> list[str]:
    return [f"{e.action}:{e.new_value}" for e in response.context["page"].object_list]


@pytest.fixture
def trail(audit, alice, bob, org_a, member):
    nina = member(user__email="nina@example.com", user__name="Nina North")
    audit(target_user=bob, column="max_inference_tokens", old=200_000, new=300_000)
    audit("user.banned", target_user=nina, column="banned", old=False, new=True)
    audit("policy.changed", actor=None, actor_label="policy", new="standard")
    audit("auth.login", actor=bob, target_user=bob, ip="198.51.100.4")
    return nina


def test_it_lists_the_organizations_trail_newest_first(alice_client, trail):
    response = alice_client.get(URL)

    assert response.status_code == 200
    assert listed(response) == [
        "auth.login:",
        "policy.changed:standard",
        "user.banned:True",
        "allocation.changed:300000",
    ]
    html = response.content.decode()
    assert "200,000 → 300,000" in html and "198.51.100.4" in html
    assert reverse("analytics:user_history", args=[trail.pk]) in html


def test_it_never_shows_another_organizations_rows(carol_client, trail, org_b, carol):
    audit_record(action="org.updated", organization=org_b, actor=carol, new="birds")
    audit_record(action="auth.login_failed", email="ghost@example.com")

    assert listed(carol_client.get(URL)) == ["org.updated:birds"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"actor": "policy"}, ["policy.changed:standard"]),
        ({"actor": "ALICE@example"}, ["user.banned:True", "allocation.changed:300000"]),
        ({"target": "nina"}, ["user.banned:True"]),
        ({"action": "allocation"}, ["allocation.changed:300000"]),
        ({"action": "auth"}, ["auth.login:"]),
        ({"action": "user.banned", "target": "bob"}, []),
    ],
)
def test_it_filters_by_actor_target_and_action(alice_client, trail, query, expected):
    assert listed(alice_client.get(URL, query)) == expected


def test_it_filters_by_date_range_with_both_ends_included(alice_client, audit, org_a):
    now = timezone.now()
    for days, label in [(10, "old"), (5, "start"), (3, "middle"), (1, "end"), (0, "today")]:
        AuditLog.objects.create(
            organization=org_a,
            action="t",
            new_value=label,
            created_at=now - dt.timedelta(days=days),
        )
    start = (now - dt.timedelta(days=5)).date().isoformat()
    end = (now - dt.timedelta(days=1)).date().isoformat()

    response = alice_client.get(URL, {"start": start, "end": end})

    assert listed(response) == ["t:end", "t:middle", "t:start"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"start": "yesterday"}, "Enter a valid date."),
        ({"start": "2026-05-01", "end": "2026-04-01"}, "is before From"),
        ({"action": "drop table"}, "Select a valid choice."),
        ({"end": "9999-12-31"}, None),
    ],
)
def test_bad_filters_say_why_and_list_nothing(alice_client, trail, query, message):
    response = alice_client.get(URL, query)

    assert response.status_code == 200
    if message:
        assert message in response.content.decode()
        assert listed(response) == []


def test_it_pages_fifty_rows_keeping_the_filters_in_the_links(alice_client, org_a):
    AuditLog.objects.bulk_create(
        [AuditLog(organization=org_a, action="export.csv", new_value=str(n)) for n in range(120)]
        + [AuditLog(organization=org_a, action="other") for n in range(10)]
    )

    first = alice_client.get(URL, {"action": "export"})
    third = alice_client.get(URL, {"action": "export", "page": 3})

    assert len(first.context["page"].object_list) == 50
    assert len(third.context["page"].object_list) == 20
    assert "?action=export&amp;page=2" in first.content.decode()


def test_htmx_filtering_answers_only_the_table(alice_client, trail):
    response = alice_client.get(URL, {"target": "nina"}, headers=HX)

    html = response.content.decode()
    assert html.lstrip().startswith('<div id="audit-table"')
    assert "<html" not in html
    assert "user.banned" in html


def test_the_export_link_carries_the_filters(alice_client, trail):
    response = alice_client.get(URL, {"action": "auth", "page": "2"})

    assert reverse("analytics:export", args=["activity"]) + "?action=auth" in (
        response.content.decode()
    )


def test_members_are_refused_and_anonymous_visitors_sent_to_log_in(bob_client, client, trail):
    assert bob_client.get(URL).status_code == 403
    client.logout()
    assert client.get(URL).status_code == 302


def test_its_query_count_does_not_grow_with_the_rows(
    alice_client, org_a, alice, bob, django_assert_max_num_queries
):
    AuditLog.objects.bulk_create(
        [AuditLog(organization=org_a, actor=alice, target_user=bob, action="x") for _ in range(80)]
    )
    # Session, user, membership, sidebar badge, count, page; the session save.
    with django_assert_max_num_queries(10):
        assert alice_client.get(URL).status_code == 200


# The integrity badge ------------------------------------------------------------------------


def test_the_badge_says_intact(alice_client, trail):
    response = alice_client.get(reverse("analytics:integrity"), headers=HX)

    assert "Audit trail intact" in response.content.decode()
    assert "4 entries checked" in response.content.decode()


def test_the_badge_names_the_first_broken_row(alice_client, audit):
    audit()
    edited = audit()
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {AuditLog._meta.db_table} SET old_value = 'x' WHERE id = %s", [edited.pk]
        )

    html = alice_client.get(reverse("analytics:integrity"), headers=HX).content.decode()

    assert f"Audit trail broken at entry {edited.pk} (#2): its content was altered" in html


def test_the_badge_checks_only_the_own_organizations_chain(carol_client, audit, org_b, carol):
    audit()
    edited = audit()
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {AuditLog._meta.db_table} SET old_value = 'x' WHERE id = %s", [edited.pk]
        )
    audit_record(action="org.updated", organization=org_b, actor=carol)

    html = carol_client.get(reverse("analytics:integrity")).content.decode()

    assert "Audit trail intact" in html and "1 entry checked" in html


def test_the_page_loads_the_badge_after_itself(alice_client, trail):
    html = alice_client.get(URL).content.decode()

    assert f'hx-get="{reverse("analytics:integrity")}" hx-trigger="load"' in html


def test_the_unfiltered_trail_takes_its_size_from_the_chain_head_not_a_count(
    alice_client, org_a, alice, bob
):
    AuditLog.objects.bulk_create(
        [AuditLog(organization=org_a, actor=alice, target_user=bob, action="x") for _ in range(60)]
    )

    with CaptureQueriesContext(connection) as captured:
        response = alice_client.get(URL)

    assert response.context["page"].paginator.count == 60
    assert "60 entries" in response.content.decode()
    table = AuditLog._meta.db_table
    assert not [q for q in captured.captured_queries if "COUNT(" in q["sql"] and table in q["sql"]]


def test_a_filtered_trail_counts_only_what_matches(alice_client, trail):
    response = alice_client.get(URL, {"action": "user.banned"})

    assert response.context["page"].paginator.count == 1
    assert "1 entry" in response.content.decode()
