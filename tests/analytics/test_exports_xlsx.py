"""XLSX exports: the same rows as the CSV, typed for Excel, streamed, audited, tenant-scoped."""

import datetime as dt
import io

import openpyxl
import pytest
import time_machine
from django.urls import reverse

from analytics import exports
from audit.models import AuditLog
from tests.analytics.downloads import download_xlsx, export_url, first_sheet, stream
from tests.factories import DailyUsageFactory, MonthlyUsageFactory, UsageEventFactory

NOW = dt.datetime(2026, 3, 16, 10, 30, tzinfo=dt.UTC)
TODAY = NOW.date()


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def usage(org_a, org_b, bob, dave):
    UsageEventFactory(
        organization=org_a,
        user=bob,
        tokens=111,
        model="=HYPERLINK(1)",
        created_at=NOW - dt.timedelta(hours=2),
    )
    UsageEventFactory(organization=org_b, user=dave, tokens=999, created_at=NOW)
    DailyUsageFactory(organization=org_a, user=bob, tokens=111, day=TODAY)
    DailyUsageFactory(organization=org_b, user=dave, tokens=999, day=TODAY)


def test_the_usage_events_xlsx_has_typed_cells_and_formulas_as_plain_text(alice_client, usage):
    response, rows = download_xlsx(alice_client, "usage-events", {"range": "7"})

    assert response["Content-Type"] == exports.XLSX_TYPE
    assert response["Content-Disposition"] == (
        'attachment; filename="acme-agency-usage-events-2026-03-16.xlsx"'
    )
    assert rows == [
        ["Time (UTC)", "User email", "Kind", "Model", "Model name", "Tokens"],
        [
            dt.datetime(2026, 3, 16, 8, 30),
            "bob@example.com",
            "inference",
            "=HYPERLINK(1)",
            "=HYPERLINK(1)",
            111,
        ],
    ]


def test_a_formula_in_a_text_cell_is_stored_as_a_string_never_a_formula(alice_client, usage):
    _, body = stream(alice_client, "usage-events", {"range": "7"}, xlsx=True)
    cell = first_sheet(body)["D2"]

    assert (cell.value, cell.data_type) == ("=HYPERLINK(1)", "s")


def test_the_daily_usage_xlsx_has_dates_as_dates_and_numbers_as_numbers(alice_client, usage):
    _, rows = download_xlsx(alice_client, "daily-usage", {"range": "7"})

    assert rows[1] == [
        dt.datetime(2026, 3, 16),
        "bob@example.com",
        "Bob Member",
        "inference",
        "gpt-4o",
        "gpt-4o",
        111,
        1,
    ]


def test_the_users_xlsx_types_flags_counts_and_an_empty_last_login(alice_client, bob, org_a):
    MonthlyUsageFactory(organization=org_a, user=bob, used=190_000)

    _, rows = download_xlsx(alice_client, "users", {"q": "bob"})

    assert rows[0][-1] == "Last login (UTC)"
    assert rows[1][:7] == ["Bob Member", "bob@example.com", "member", "yes", "no", 200_000, 190_000]
    assert rows[1][-1] is None


def test_negative_audit_values_are_numbers_and_details_are_text(alice_client, audit, bob):
    audit(target_user=bob, column="max_inference_tokens", old=-750_000, new="=1+1", note="+x")

    _, rows = download_xlsx(alice_client, "activity", {"action": "allocation"})

    assert rows[1][6:8] == [-750_000, "=1+1"]
    assert rows[1][9] == '{"note": "+x"}'
    assert rows[1][11] == 1  # the chain position, a number
    assert isinstance(rows[1][0], dt.datetime)


def test_carol_downloads_only_her_organizations_rows_as_xlsx(carol_client, usage):
    _, rows = download_xlsx(carol_client, "usage-events", {"range": "7"})

    assert [r[1] for r in rows[1:]] == ["dave@example.com"]
    assert rows[1][5] == 999


def test_members_cannot_export_xlsx(bob_client, usage):
    assert bob_client.get(export_url("usage-events", xlsx=True)).status_code == 403


def test_a_bad_query_answers_400_in_words_for_xlsx_too(alice_client, usage):
    response = alice_client.get(
        export_url("usage-events", xlsx=True), {"range": "custom", "start": "soon"}
    )

    assert response.status_code == 400
    assert "Cannot export usage-events" in response.content.decode()
    assert not AuditLog.objects.filter(action="export.csv").exists()


def test_every_xlsx_export_is_audited_with_its_format(alice_client, alice, org_a, usage):
    download_xlsx(alice_client, "daily-usage", {"range": "90"})

    entry = AuditLog.objects.get(action="export.csv")
    assert (entry.organization, entry.actor, entry.new_value) == (org_a, alice, "daily-usage")
    assert entry.details == {"query": "range=90", "format": "xlsx"}


@pytest.mark.parametrize("what", ["users", "usage-events", "daily-usage", "token-requests"])
def test_every_export_is_offered_as_xlsx_beside_its_csv(alice_client, what):
    html = alice_client.get(reverse("analytics:statistics")).content.decode()

    assert f"/panel/exports/{what}.csv" in html
    assert f"/panel/exports/{what}.xlsx" in html


def test_the_activity_and_user_pages_offer_xlsx_beside_csv(alice_client):
    assert (
        "/panel/exports/activity.xlsx"
        in alice_client.get(reverse("analytics:activity")).content.decode()
    )
    assert "/panel/exports/users.xlsx" in alice_client.get(reverse("tokens:users")).content.decode()


def test_rows_past_a_sheets_limit_continue_on_a_second_sheet(monkeypatch, alice, org_a):
    monkeypatch.setattr(exports, "XLSX_MAX_ROWS", 3)
    data = exports.Export("daily-usage", ["Day", "Tokens"], None, ["date", "int"])
    handle = io.BytesIO()

    written = exports.write_xlsx(data, handle, rows=[(TODAY, n) for n in range(5)])

    book = openpyxl.load_workbook(handle)
    assert written == 5
    assert [sheet.title for sheet in book.worksheets] == [
        "daily-usage",
        "daily-usage 2",
        "daily-usage 3",
    ]
    assert [r[1] for r in book.worksheets[1].iter_rows(values_only=True)] == ["Tokens", 2, 3]
