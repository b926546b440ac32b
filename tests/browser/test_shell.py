"""The app shell as an org admin sees it: account menu, Admin Panel, the narrow-screen drawer."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_opens_admin_panel_from_the_account_icon(page, live_server, login, alice):
    page.set_viewport_size({"width": 1400, "height": 900})
    login(page, alice)
    page.get_by_role("button", name=re.compile("Account menu")).click()
    page.get_by_role("link", name="Admin Panel").click()
    expect(page).to_have_url(re.compile(r"/panel/users/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("User Management")
    expect(page.get_by_role("navigation", name="Admin Panel")).to_be_visible()


def test_member_does_not_see_admin_panel_in_the_menu(page, live_server, login, bob):
    login(page, bob)
    page.get_by_role("button", name=re.compile("Account menu")).click()
    expect(page.get_by_role("link", name="My tokens").last).to_be_visible()
    expect(page.get_by_role("link", name="Admin Panel")).to_have_count(0)


def test_narrow_screen_drawer_opens_and_closes_after_choosing_a_page(
    page, live_server, login, alice
):
    page.set_viewport_size({"width": 1000, "height": 800})
    login(page, alice)
    page.goto(f"{live_server.url}/panel/users/")
    nav = page.get_by_role("navigation", name="Admin Panel")
    expect(nav).to_be_hidden()
    hamburger = page.get_by_role("button", name="Open navigation")
    hamburger.click()
    expect(nav).to_be_visible()
    nav.get_by_role("link", name="Token Statistics").click()
    expect(page).to_have_url(re.compile(r"/panel/statistics/$"))
    expect(page.get_by_role("navigation", name="Admin Panel")).to_be_hidden()


def test_drawer_closes_on_escape_and_on_the_backdrop(page, live_server, login, alice):
    page.set_viewport_size({"width": 1000, "height": 800})
    login(page, alice)
    page.goto(f"{live_server.url}/panel/users/")
    nav = page.get_by_role("navigation", name="Admin Panel")
    page.get_by_role("button", name="Open navigation").click()
    expect(nav).to_be_visible()
    page.keyboard.press("Escape")
    expect(nav).to_be_hidden()
    page.get_by_role("button", name="Open navigation").click()
    expect(nav).to_be_visible()
    page.mouse.click(900, 400)  # the backdrop, right of the drawer
    expect(nav).to_be_hidden()
