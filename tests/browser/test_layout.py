"""The Admin Panel's layout at 1400, 1000 and 390 px, as a person sees and uses it."""

import re

import pytest
from playwright.sync_api import expect

from tests.factories import MembershipFactory, MonthlyUsageFactory
from tokens.services import requests as request_services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = [1400, 1000, 390]
LONG_REASON = "Ingesting the policy manual and three years of contract files into a new dataset."


@pytest.fixture
def busy_org(org_a, alice, bob):
    """Enough of org A for every page to have rows: 30 more members, usage, a pending request."""
    for n in range(30):
        MembershipFactory(
            organization=org_a,
            user__name=f"Member {n:02}",
            user__email=f"member.with.a.longer.address.{n:02}@example.com",
            max_inference_tokens=50_000,
            max_embedding_tokens=50_000,
        )
    MonthlyUsageFactory(user=bob, organization=org_a, kind="inference", used=150_000)
    request_services.token_request_create(
        user=bob, kind="inference", amount=1_000_000, reason=LONG_REASON
    )
    return org_a


def panel_paths(bob):
    return [
        "/panel/users/",
        "/panel/requests/",
        "/panel/requests/?tab=all",
        "/panel/distribution/",
        "/panel/statistics/",
        "/panel/activity/",
        "/panel/api-keys/",
        f"/panel/activity/users/{bob.pk}/",
    ]


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


@pytest.mark.parametrize("width", WIDTHS)
def test_no_panel_page_is_wider_than_the_screen(
    page, live_server, login, alice, bob, busy_org, width
):
    page.set_viewport_size({"width": width, "height": 900})
    login(page, alice)
    too_wide = {}
    for path in panel_paths(bob):
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
        if page_width(page) > width:
            too_wide[path] = page_width(page)
    assert too_wide == {}


@pytest.mark.parametrize("width", WIDTHS)
def test_the_member_home_page_is_not_wider_than_the_screen(page, login, bob, busy_org, width):
    page.set_viewport_size({"width": width, "height": 900})
    login(page, bob)
    expect(page.get_by_role("heading", name="My tokens")).to_be_visible()
    assert page_width(page) <= width


@pytest.mark.parametrize("width", [1000, 390])
def test_token_requests_show_approve_on_screen_at_narrow_widths(
    page, live_server, login, alice, bob, busy_org, width
):
    page.set_viewport_size({"width": width, "height": 900})
    login(page, alice)
    page.goto(f"{live_server.url}/panel/requests/")
    approve = page.get_by_role("button", name="Approve bob@example.com")
    approve.scroll_into_view_if_needed()
    expect(approve).to_be_in_viewport(ratio=1)
    box = approve.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width
    assert page_width(page) <= width
    # The reason reads as a sentence, not one word per line.
    reason = page.get_by_text(LONG_REASON)
    lines = reason.evaluate(
        "(el) => { const r = document.createRange(); r.selectNodeContents(el);"
        " return new Set([...r.getClientRects()].map((b) => Math.round(b.top))).size; }"
    )
    assert lines <= 4
    approve.click()
    expect(page.get_by_role("status").filter(has_text="Approved 1,000,000")).to_be_visible()


def test_twenty_user_rows_fit_on_a_1400_by_900_screen(page, live_server, login, alice, busy_org):
    page.set_viewport_size({"width": 1400, "height": 900})
    login(page, alice)
    page.goto(f"{live_server.url}/panel/users/")
    table = page.get_by_role("table", name=re.compile("Users of Acme Agency"))
    # Scroll the page as a person would, until the table's header meets the page's header.
    page.evaluate(
        """() => {
            const header = document.querySelector('.content-header').getBoundingClientRect();
            const thead = document.querySelector('#users-grid thead').getBoundingClientRect();
            window.scrollBy(0, thead.top - header.bottom);
        }"""
    )
    visible = page.evaluate(
        """() => {
            const top = document.querySelector('#users-grid thead').getBoundingClientRect().bottom;
            const grid = document.querySelector('#users-grid');
            const region = grid.parentElement.getBoundingClientRect();
            const bottom = Math.min(window.innerHeight, region.bottom);
            return [...document.querySelectorAll('#users-grid tbody tr')].filter((row) => {
                const box = row.getBoundingClientRect();
                return box.top >= top - 1 && box.bottom <= bottom + 1;
            }).length;
        }"""
    )
    assert visible >= 20
    expect(table.get_by_role("columnheader", name="Max Inference Tokens")).to_be_visible()
    assert page_width(page) <= 1400


def test_user_table_headers_show_their_full_text(page, live_server, login, alice, busy_org):
    page.set_viewport_size({"width": 1400, "height": 900})
    login(page, alice)
    page.goto(f"{live_server.url}/panel/users/")
    clipped = page.evaluate(
        """() => [...document.querySelectorAll('#users-grid th')]
            .filter((th) => th.scrollWidth > th.clientWidth + 1)
            .map((th) => th.textContent.trim())"""
    )
    assert clipped == []


def test_a_cell_error_is_a_popover_under_its_cell_and_the_row_stays_compact(
    page, live_server, login, alice, bob, busy_org
):
    page.set_viewport_size({"width": 1400, "height": 900})
    login(page, alice)
    page.goto(f"{live_server.url}/panel/users/")
    page.get_by_role("button", name=re.compile("^Max Inference Tokens for Bob Member:")).dblclick()
    box = page.get_by_role("textbox", name="New Max Inference Tokens for Bob Member")
    box.fill("nope")
    box.press("Enter")
    alert = page.get_by_role("alert").filter(has_text="is not an amount")
    expect(alert).to_be_visible()
    box = page.get_by_role("textbox", name="New Max Inference Tokens for Bob Member")
    expect(box).to_have_attribute("aria-describedby", alert.get_attribute("id"))
    row = page.get_by_role("row").filter(has=box)
    assert row.bounding_box()["height"] < 45
    assert alert.bounding_box()["y"] >= box.bounding_box()["y"] + box.bounding_box()["height"]


def test_the_save_bar_is_small_on_a_phone(page, live_server, login, alice, bob, busy_org):
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, alice)
    page.goto(f"{live_server.url}/panel/users/")
    page.get_by_role("button", name=re.compile("^Max Inference Tokens for Bob Member:")).dblclick()
    box = page.get_by_role("textbox", name="New Max Inference Tokens for Bob Member")
    box.fill("300k")
    box.press("Enter")
    save = page.get_by_role("button", name="Save Changes — Max Inference Tokens (1)")
    expect(save).to_be_visible()
    bar = page.locator("#save-bar").bounding_box()
    assert bar["height"] <= 0.08 * 844
    assert bar["x"] >= 0 and bar["x"] + bar["width"] <= 390


def test_the_open_drawer_keeps_keyboard_focus_and_escape_closes_it(page, live_server, login, alice):
    page.set_viewport_size({"width": 1000, "height": 800})
    login(page, alice)
    page.goto(f"{live_server.url}/panel/users/")
    hamburger = page.get_by_role("button", name="Open navigation")
    hamburger.click()
    nav = page.get_by_role("navigation", name="Admin Panel")
    expect(nav).to_be_visible()
    in_drawer = "() => document.getElementById('sidebar').contains(document.activeElement)"
    for _ in range(15):
        page.keyboard.press("Tab")
        assert page.evaluate(in_drawer)
    for _ in range(15):
        page.keyboard.press("Shift+Tab")
        assert page.evaluate(in_drawer)
    page.keyboard.press("Escape")
    expect(nav).to_be_hidden()
    expect(hamburger).to_be_focused()
    page.keyboard.press("Tab")
    assert not page.evaluate(in_drawer)


def test_a_slow_request_shows_the_busy_bar_and_marks_its_region_busy(
    page, live_server, login, alice, bob, busy_org
):
    page.set_viewport_size({"width": 1400, "height": 900})
    login(page, alice)
    page.goto(f"{live_server.url}/panel/requests/")
    held = []
    page.route(re.compile(r".*/panel/requests/\?tab=all$"), lambda route: held.append(route))
    page.get_by_role("link", name="All").click()
    region = page.locator("#requests-region")
    expect(region).to_have_attribute("aria-busy", "true")
    busy = page.locator("#busy")
    expect(busy).to_have_class(re.compile("htmx-request"))
    expect(busy).to_have_css("transition-delay", "0.2s")  # nothing flickers on quick answers
    expect(busy).to_have_css("opacity", "1")
    held[0].continue_()
    expect(page.get_by_role("table", name="All token requests")).to_be_visible()
    expect(page.locator("#requests-region")).not_to_have_attribute("aria-busy", "true")
    expect(busy).to_have_css("opacity", "0")
