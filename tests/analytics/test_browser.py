"""Token Statistics, a CSV download and the activity log, as an admin uses them."""

import csv
import datetime as dt
import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.factories import DailyUsageFactory, MembershipFactory, MonthlyUsageFactory, utc_today

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def admin_page(mid_month, page, live_server, login, alice, bob, org_a):
    page.set_viewport_size({"width": 1400, "height": 900})
    for n in range(5):
        DailyUsageFactory(
            organization=org_a, user=bob, tokens=12_345, day=utc_today() - dt.timedelta(days=n)
        )
    MonthlyUsageFactory(organization=org_a, user=bob, used=61_725)
    login(page, alice)
    return page


def test_the_statistics_page_draws_its_charts_with_their_numbers(admin_page, live_server):
    page = admin_page
    page.goto(f"{live_server.url}/panel/statistics/")

    expect(page.get_by_role("heading", name="Token Statistics")).to_be_visible()
    for name in ["Tokens used per month", "Top users", "Usage by model"]:
        expect(page.get_by_role("img", name=re.compile(name)).first).to_be_visible()
    expect(page.locator("#day-chart-title").locator("xpath=..").locator("rect")).to_have_count(5)
    expect(page.get_by_role("row", name=re.compile("Bob Member"))).to_contain_text("61,725")
    expect(page.get_by_role("cell", name="Lasts the month").first).to_be_visible()


def test_a_csv_downloads_and_parses(admin_page, live_server, tmp_path):
    page = admin_page
    page.goto(f"{live_server.url}/panel/statistics/?range=7")

    with page.expect_download() as info:
        page.get_by_role("link", name="Daily usage per user").click()
    download = info.value
    path = tmp_path / download.suggested_filename
    download.save_as(path)

    assert re.fullmatch(r"acme-agency-daily-usage-\d{4}-\d{2}-\d{2}\.csv", path.name)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5
    assert {row["User email"] for row in rows} == {"bob@example.com"}
    assert sum(int(row["Tokens"]) for row in rows) == 61_725


def test_the_activity_log_filters_as_you_type_and_keeps_the_filter_in_the_url(
    admin_page, live_server, alice_client_rows
):
    page = admin_page
    page.goto(f"{live_server.url}/panel/activity/")
    expect(page.get_by_role("status").filter(has_text="Audit trail intact")).to_be_visible()
    # The three rows below and her own login through the form.
    expect(page.locator("#audit-table tbody tr")).to_have_count(4)
    expect(page.locator("#audit-table")).to_contain_text("Signed in")

    page.get_by_label("Target user").fill("nina")

    expect(page.locator("#audit-table tbody tr")).to_have_count(1)
    expect(page.locator("#audit-table")).to_contain_text("Banned changed")
    expect(page).to_have_url(re.compile(r"target=nina"))
    page.reload()
    expect(page.locator("#audit-table tbody tr")).to_have_count(1)


def test_a_users_history_opens_from_their_row(admin_page, live_server, bob):
    page = admin_page
    page.goto(f"{live_server.url}/panel/users/")

    page.get_by_role("link", name="Bob Member").click()

    expect(page.get_by_role("heading", name="Bob Member", level=1)).to_be_visible()
    expect(page.get_by_role("table").first).to_contain_text("12,345")


@pytest.fixture
def alice_client_rows(audit, org_a, bob):
    nina = MembershipFactory(
        organization=org_a, user__email="nina@example.com", user__name="Nina North"
    ).user
    audit(target_user=bob, old=1, new=2)
    audit("user.banned", target_user=nina, old=False, new=True)
    audit("policy.changed", actor=None, actor_label="policy")


def test_times_show_in_the_viewers_time_zone_with_utc_on_hover(
    mid_month, browser, live_server, login, alice, bob
):
    bob.last_login = dt.datetime(2026, 1, 15, 15, 4, 5, tzinfo=dt.UTC)
    bob.save(update_fields=["last_login"])
    context = browser.new_context(timezone_id="America/New_York")
    page = context.new_page()
    login(page, alice)

    page.goto(live_server.url + reverse("analytics:user_history", args=[bob.pk]))

    last_login = page.locator("dt", has_text="Last login").locator("xpath=../dd/time")
    expect(last_login).to_have_text("2026-01-15 10:04 EST")
    expect(last_login).to_have_attribute("title", "2026-01-15 15:04:05 UTC")
    page.goto(f"{live_server.url}/panel/activity/")
    # Her own login just now, in New York time, after an htmx-free page load.
    expect(page.locator("#audit-table time").first).to_have_text(re.compile(r" E[SD]T$"))
    context.close()


def test_on_a_phone_the_charts_give_way_to_their_tables(admin_page, live_server):
    page = admin_page
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/panel/statistics/?range=7")

    expect(page.locator("#day-chart-title").locator("xpath=..")).to_be_hidden()
    expect(page.get_by_role("region", name="Usage per day, in numbers")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("Bob Member"))).to_be_visible()


def test_an_xlsx_downloads_with_typed_cells(admin_page, live_server, tmp_path):
    import openpyxl

    page = admin_page
    page.goto(f"{live_server.url}/panel/statistics/?range=7")

    with page.expect_download() as info:
        page.get_by_role("listitem").filter(has_text="Daily usage per user").get_by_role(
            "link", name="XLSX"
        ).click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)

    assert re.fullmatch(r"acme-agency-daily-usage-\d{4}-\d{2}-\d{2}\.xlsx", path.name)
    rows = list(openpyxl.load_workbook(path).worksheets[0].iter_rows(values_only=True))
    assert len(rows) == 6 and {row[1] for row in rows[1:]} == {"bob@example.com"}
    tokens = rows[0].index("Tokens")  # by its header: the Model name column moved it
    assert sum(row[tokens] for row in rows[1:]) == 61_725
    assert all(isinstance(row[0], dt.datetime) for row in rows[1:])
