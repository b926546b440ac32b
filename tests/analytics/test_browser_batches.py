"""A saved batch on the Activity Logs page opens from the keyboard (issue 16, item 3)."""

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_saved_batch_opens_with_the_keyboard_to_list_its_changes(
    page, live_server, login, alice, saved_batch
):
    page.set_viewport_size({"width": 1400, "height": 900})
    login(page, alice)
    page.goto(f"{live_server.url}/panel/activity/")
    summary = page.get_by_text("Saved 12 changes together")
    changes = page.locator(".batch-changes li")
    expect(changes.first).to_be_hidden()

    summary.focus()
    page.keyboard.press("Enter")

    expect(changes).to_have_count(12)
    expect(changes.first).to_be_visible()
    expect(changes.first).to_contain_text("200,000 → 300,000")
    serious = [
        v["id"]
        for v in Axe().run(page).response["violations"]
        if v["impact"] in {"serious", "critical"}
    ]
    assert serious == []
    page.keyboard.press("Enter")
    expect(changes.first).to_be_hidden()
