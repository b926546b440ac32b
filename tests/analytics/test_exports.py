"""CSV exports: streamed, named after the organization, safe in Excel, audited, tenant-scoped."""

import datetime as dt

import pytest
from django.utils import timezone

from analytics.exports import neutralise
from audit.models import AuditLog
from audit.services import audit_record
from tests.analytics.downloads import download_csv, export_url
from tests.factories import (
    DailyUsageFactory,
    MonthlyUsageFactory,
    PlatformModelFactory,
    UsageEventFactory,
    utc_today,
)

# Pinned mid-month: rows laid out around "today" and the export's ranges must read the same
# day.
pytestmark = pytest.mark.usefixtures("mid_month")


@pytest.fixture
def usage(org_a, org_b, bob, dave):
    today = utc_today()
    UsageEventFactory(organization=org_a, user=bob, tokens=111, model="gpt-4o")
    UsageEventFactory(
        organization=org_a,
        user=bob,
        tokens=222,
        model="=HYPERLINK(1)",
        created_at=timezone.now() - dt.timedelta(days=40),
    )
    UsageEventFactory(organization=org_b, user=dave, tokens=999)
    DailyUsageFactory(organization=org_a, user=bob, tokens=111, day=today)
    DailyUsageFactory(organization=org_b, user=dave, tokens=999, day=today)


def test_the_usage_events_export_streams_the_period_with_a_dated_name(alice_client, usage):
    response, rows = download_csv(alice_client, "usage-events")

    today = utc_today()
    assert response["Content-Disposition"] == (
        f'attachment; filename="acme-agency-usage-events-{today:%Y-%m-%d}.csv"'
    )
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert rows[0] == ["Time (UTC)", "User email", "Kind", "Model", "Model name", "Tokens"]
    assert [r[1:] for r in rows[1:]] == [
        ["bob@example.com", "inference", "gpt-4o", "gpt-4o", "111"]
    ]


def test_usage_exports_name_each_model_as_the_catalogue_displays_it(alice_client, usage):
    PlatformModelFactory(name="gpt-4o", display_name="GPT-4o Omni")
    _, events = download_csv(alice_client, "usage-events")
    _, daily = download_csv(alice_client, "daily-usage", {"range": "7"})

    assert [r[3:5] for r in events[1:]] == [["gpt-4o", "GPT-4o Omni"]]
    assert [r[4:6] for r in daily[1:]] == [["gpt-4o", "GPT-4o Omni"]]


def test_a_custom_range_includes_both_ends_and_neutralises_formulas(alice_client, usage):
    start = (utc_today() - dt.timedelta(days=60)).isoformat()
    _, rows = download_csv(
        alice_client, "usage-events", {"range": "custom", "start": start, "end": utc_today()}
    )

    assert [r[3] for r in rows[1:]] == ["'=HYPERLINK(1)", "gpt-4o"]


def test_daily_usage_per_user(alice_client, usage):
    _, rows = download_csv(alice_client, "daily-usage", {"range": "7"})

    assert rows[0][:3] == ["Day", "User email", "User name"]
    assert rows[1:] == [
        [
            utc_today().isoformat(),
            "bob@example.com",
            "Bob Member",
            "inference",
            "gpt-4o",
            "gpt-4o",
            "111",
            "1",
        ]
    ]


def test_the_user_table_export_applies_the_current_filters(alice_client, alice, bob, org_a, member):
    member(user__name="=cmd|' /C calc'!A0", user__email="evil@example.com")
    MonthlyUsageFactory(organization=org_a, user=bob, used=190_000)

    _, everyone = download_csv(alice_client, "users")
    _, near = download_csv(alice_client, "users", {"near_limit": "on"})
    _, admins = download_csv(alice_client, "users", {"role": "admin", "q": "ali"})

    assert [r[0] for r in everyone[1:]] == ["'=cmd|' /C calc'!A0", "Alice Admin", "Bob Member"]
    assert [r[1] for r in near[1:]] == ["bob@example.com"]
    assert near[1][6] == "190000"
    assert [r[1] for r in admins[1:]] == ["alice@example.com"]


def test_the_activity_export_applies_the_filters_and_only_the_organizations_rows(
    alice_client, audit, bob, org_b, carol
):
    audit(target_user=bob, old=1, new=2, details_note="+SUM(A1)")
    audit("user.banned", target_user=bob)
    audit_record(action="user.banned", organization=org_b, actor=carol)

    _, rows = download_csv(alice_client, "activity", {"action": "allocation"})

    assert [r[3] for r in rows[1:]] == ["allocation.changed"]
    assert rows[1][9] == '{"details_note": "+SUM(A1)"}'
    assert len(rows[1][12]) == 64  # the row's hash, to compare with verify_audit


def test_token_requests_export(alice_client, bob, org_a):
    from tokens.models import TokenRequest

    TokenRequest.objects.create(
        organization=org_a, user=bob, kind="inference", amount=5000, reason="@work", current_max=1
    )

    _, rows = download_csv(alice_client, "token-requests")

    assert rows[1][1:5] == ["bob@example.com", "inference", "5000", "'@work"]


def test_every_export_is_audited(alice_client, alice, org_a, usage):
    download_csv(alice_client, "daily-usage", {"range": "90"})

    entry = AuditLog.objects.get(action="export.csv")
    assert (entry.organization, entry.actor, entry.new_value) == (org_a, alice, "daily-usage")
    assert entry.details == {"query": "range=90"}
    assert entry.ip == "127.0.0.1"


@pytest.mark.parametrize(
    ("what", "query", "message"),
    [
        ("usage-events", {"range": "custom", "start": "2026-05-02", "end": "2026-05-01"}, "swap"),
        ("usage-events", {"range": "custom", "start": "last week", "end": "2026-05-01"}, "valid"),
        ("daily-usage", {"range": "custom", "start": "2000-01-01", "end": "2026-01-01"}, "366"),
        ("daily-usage", {"range": "custom", "start": "1066-10-14", "end": "1066-10-14"}, "2000"),
        ("daily-usage", {"range": "custom", "start": "2026-01-01"}, "both"),
        ("daily-usage", {"range": "1000"}, "valid choice"),
        ("users", {"paid": "maybe"}, "paid"),
        ("activity", {"end": "2026-13-01"}, "valid date"),
        ("activity", {"start": "2026-02-01", "end": "2026-01-01"}, "before"),
    ],
)
def test_bad_queries_answer_400_saying_why_and_audit_nothing(
    alice_client, usage, what, query, message
):
    response = alice_client.get(export_url(what), query)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not AuditLog.objects.filter(action="export.csv").exists()


def test_unknown_parameters_are_ignored_and_another_orgs_ids_change_nothing(
    alice_client, usage, org_b, dave
):
    _, rows = download_csv(
        alice_client, "usage-events", {"organization": org_b.pk, "user": dave.pk, "x": "1"}
    )

    assert [r[1] for r in rows[1:]] == ["bob@example.com"]


def test_an_unknown_export_is_404(alice_client):
    assert alice_client.get(export_url("passwords")).status_code == 404


def test_carol_downloads_only_her_organizations_rows(carol_client, usage):
    _, rows = download_csv(carol_client, "usage-events")
    response, daily = download_csv(carol_client, "daily-usage")

    assert [r[1] for r in rows[1:]] == ["dave@example.com"]
    assert [r[1] for r in daily[1:]] == ["dave@example.com"]
    assert "bureau-of-birds-daily-usage-" in response["Content-Disposition"]


def test_members_cannot_export(bob_client, usage):
    for what in ["users", "usage-events", "daily-usage", "activity"]:
        assert bob_client.get(export_url(what)).status_code == 403


def test_an_export_of_many_rows_streams_in_chunks_with_a_constant_query_count(
    alice_client, bob, org_a, django_assert_max_num_queries
):
    from tokens.models import DailyUsage

    DailyUsage.objects.bulk_create(
        DailyUsage(
            organization=org_a,
            user=bob,
            kind="inference",
            model=f"m{n}",
            day=utc_today(),
            tokens=n + 1,
            events=1,
        )
        for n in range(4500)
    )
    with django_assert_max_num_queries(16):
        response = alice_client.get(export_url("daily-usage"))
        chunks = list(response.streaming_content)

    assert len(chunks) >= 2  # the header, then blocks of rows as they come
    assert sum(chunk.count(b"\n") for chunk in chunks) == 4501


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1+1", "'-1+1"),
        ("-SUM(A1)", "'-SUM(A1)"),
        ("-1", "-1"),  # a plain number is data: it stays a number in Excel
        ("-750000", "-750000"),
        ("-2.5", "-2.5"),
        ("-1.", "'-1."),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("plain", "plain"),
        (-5, -5),
        (None, ""),
        (True, "yes"),
    ],
)
def test_cells_a_spreadsheet_would_evaluate_are_neutralised(value, expected):
    assert neutralise(value) == expected


def test_negative_numbers_in_the_activity_export_stay_numbers(alice_client, audit, bob):
    """Activity values are stored as text: a reclaimed -750000 came out as "'-750000"."""
    audit(target_user=bob, column="max_inference_tokens", old=-750_000, new="=HYPERLINK(1)")

    _, rows = download_csv(alice_client, "activity", {})

    header, *body = rows
    row = dict(zip(header, next(r for r in body if "max_inference_tokens" in r), strict=True))
    assert (row["Old"], row["New"]) == ("-750000", "'=HYPERLINK(1)")
