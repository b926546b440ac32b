"""The member's "Your usage" at phone and desktop widths, light and dark: nothing wider than
the screen, the numbers readable (the table replaces the chart on a phone), axe-clean."""

import datetime as dt

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.factories import DailyUsageFactory, utc_today

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG_MODEL = "anthropic.claude-3-5-sonnet-20241022-v2:0-with-a-very-long-deployment-name"


@pytest.fixture
def bob_used(org_a, bob):
    """Dates relative to today, read over the last 30 days: the same page on any date."""
    today = utc_today()
    for n, model, kind in [
        (0, LONG_MODEL, "inference"),
        (3, "gpt-4o", "inference"),
        (3, "text-embedding-3-large", "embedding"),
    ]:
        DailyUsageFactory(
            user=bob,
            organization=org_a,
            day=today - dt.timedelta(days=n),
            model=model,
            kind=kind,
            tokens=123_456 * (n + 1),
        )
    return bob


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [1400, 390])
def test_your_usage_fits_the_screen_and_has_no_axe_violations(
    page, live_server, login, bob_used, scheme, width
):
    page.set_viewport_size({"width": width, "height": 844})
    page.emulate_media(color_scheme=scheme)
    login(page, bob_used)
    page.goto(f"{live_server.url}/?range=30#my-usage")
    page.wait_for_load_state("networkidle")
    expect(page.get_by_role("heading", name="Your usage")).to_be_visible()
    per_day = page.get_by_role("region", name="Your usage per day, in numbers")
    expect(per_day).to_contain_text("123,456")
    expect(page.get_by_role("region", name="Your usage per model")).to_contain_text("gpt-4o")
    charts = page.locator("#my-usage .chart-svg")  # per day and per model
    expect(charts).to_have_count(2)
    for chart in (charts.nth(0), charts.nth(1)):
        if width < 600:
            expect(chart).to_be_hidden()  # the tables carry the numbers on a phone
        else:
            expect(chart).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert Axe().run(page).response["violations"] == []


def test_choosing_a_period_shows_your_usage_in_the_viewport_on_a_phone(
    page, live_server, login, bob_used
):
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, bob_used)
    page.get_by_label("Period", exact=True).select_option("7")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/?range=7#my-usage")
    expect(page.get_by_role("heading", name="Your usage")).to_be_in_viewport()
    expect(page.get_by_role("region", name="Your usage per model")).to_contain_text("gpt-4o")
