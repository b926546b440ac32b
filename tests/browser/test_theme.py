"""Light and dark themes: the system's by default, a remembered choice, no flash, axe-clean."""

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.factories import MonthlyUsageFactory
from tokens.services import requests as request_services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DARK_BG = "rgb(11, 17, 32)"
LIGHT_BG = "rgb(246, 247, 249)"


def background(page) -> str:
    return page.evaluate("getComputedStyle(document.body).backgroundColor")


def test_the_panel_follows_a_dark_system_theme(page, live_server, login, alice):
    page.emulate_media(color_scheme="dark")
    login(page, alice)
    page.goto(f"{live_server.url}/panel/users/")
    assert background(page) == DARK_BG
    expect(page.get_by_role("radio", name="System")).to_be_checked()


def test_choosing_light_on_a_dark_system_is_remembered_across_pages(
    page, live_server, login, alice
):
    page.emulate_media(color_scheme="dark")
    login(page, alice)
    page.goto(f"{live_server.url}/panel/users/")
    page.get_by_role("radio", name="Light").check()
    assert background(page) == LIGHT_BG
    page.goto(f"{live_server.url}/panel/statistics/")
    assert background(page) == LIGHT_BG
    expect(page.get_by_role("radio", name="Light")).to_be_checked()
    page.get_by_role("radio", name="System").check()
    assert background(page) == DARK_BG
    page.reload()
    assert background(page) == DARK_BG


def test_a_chosen_dark_theme_applies_before_the_page_scripts_run(page, live_server, login, alice):
    """No flash: the remembered theme is on <html> while shell.js has not even arrived."""
    login(page, alice)
    page.get_by_role("radio", name="Dark").check()
    held = []
    page.route(re.compile(r".*/static/js/shell\.js$"), lambda route: held.append(route))
    page.goto(f"{live_server.url}/panel/requests/", wait_until="commit")
    page.get_by_role("heading", name="Token Requests").wait_for()
    assert held, "shell.js should still be on its way"
    assert background(page) == DARK_BG
    held[0].continue_()


def test_the_login_page_follows_the_system_theme(page, live_server):
    page.emulate_media(color_scheme="dark")
    page.goto(f"{live_server.url}/accounts/login/")
    assert background(page) == DARK_BG


@pytest.fixture
def lived_in(org_a, alice, bob):
    MonthlyUsageFactory(user=bob, organization=org_a, kind="inference", used=150_000)
    request_services.token_request_create(
        user=bob, kind="inference", amount=300_000, reason="Reports"
    )
    return org_a


@pytest.mark.parametrize("scheme", ["dark", "light"])
@pytest.mark.parametrize("width", [1400, 390])
def test_every_panel_page_has_no_axe_violations(
    page, live_server, login, alice, bob, lived_in, scheme, width
):
    page.set_viewport_size({"width": width, "height": 900})
    page.emulate_media(color_scheme=scheme)
    login(page, alice)
    paths = [
        "/panel/users/",
        "/panel/requests/?tab=all",
        "/panel/distribution/",
        "/panel/statistics/",
        "/panel/activity/",
        "/panel/api-keys/",
        f"/panel/activity/users/{bob.pk}/",
    ]
    found = {}
    for path in paths:
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
        violations = Axe().run(page).response["violations"]
        if violations:
            found[path] = [f"{v['impact']} {v['id']} ({len(v['nodes'])})" for v in violations]
    assert found == {}


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_the_member_home_page_has_no_axe_violations(page, login, bob, lived_in, scheme):
    page.set_viewport_size({"width": 390, "height": 844})
    page.emulate_media(color_scheme=scheme)
    login(page, bob)
    assert Axe().run(page).response["violations"] == []
