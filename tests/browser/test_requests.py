"""Token Requests as people do it: a member asks from home, an admin approves in the panel."""

import re

import pytest
from playwright.sync_api import expect

from tests.factories import max_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_member_asks_and_an_admin_approves_then_sees_the_max_rise(
    page, browser, live_server, login, alice, bob
):
    page.set_viewport_size({"width": 1400, "height": 900})
    login(page, bob)
    page.get_by_label("Kind").select_option("inference")
    page.get_by_label("Amount").fill("300k")
    page.get_by_label("Reason").fill("Quarterly report drafting")
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_role("status").filter(has_text="Request sent")).to_be_visible()
    mine = page.get_by_role("table", name="Your token requests")
    expect(mine).to_contain_text("Quarterly report drafting")
    expect(mine).to_contain_text("Pending")

    admin = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    login(admin, alice)
    admin.goto(f"{live_server.url}/panel/requests/")
    expect(admin.get_by_label("1 pending")).to_be_visible()
    table = admin.get_by_role("table", name="Pending token requests")
    expect(table).to_contain_text("bob@example.com")
    expect(table).to_contain_text("300,000")
    admin.get_by_role("button", name="Approve bob@example.com").click()
    expect(admin.get_by_role("status").filter(has_text="Approved 300,000")).to_be_visible()
    assert max_of(bob) == 500_000

    admin.goto(f"{live_server.url}/panel/users/")
    cell = admin.get_by_role("button", name=re.compile(r"^Max Inference Tokens for Bob Member:"))
    expect(cell).to_have_text("500,000")

    page.reload()
    expect(page.get_by_role("table", name="Your token requests")).to_contain_text("Approved")


def test_denying_needs_a_note_and_says_so(page, live_server, login, alice, bob):
    from tokens.services import requests as request_services

    request_services.token_request_create(
        user=bob, kind="inference", amount=1_000_000, reason="More"
    )
    page.set_viewport_size({"width": 1400, "height": 900})
    login(page, alice)
    page.goto(f"{live_server.url}/panel/requests/")
    page.get_by_role("button", name="Deny bob@example.com").click()
    expect(page.get_by_role("alert")).to_contain_text("Say why the request is denied")
    page.get_by_label("Reason for denying bob@example.com").fill("Budget frozen")
    page.get_by_role("button", name="Deny bob@example.com").click()
    expect(page.get_by_role("status").filter(has_text="Denied")).to_be_visible()


def test_the_requests_page_has_no_serious_axe_violations(page, live_server, login, alice, bob):
    from tests.browser.test_accessibility import serious_violations
    from tokens.services import requests as request_services

    request_services.token_request_create(
        user=bob, kind="inference", amount=1_000_000, reason="More"
    )
    login(page, alice)
    page.goto(f"{live_server.url}/panel/requests/")
    assert serious_violations(page) == []
