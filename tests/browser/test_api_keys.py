"""An org admin creates a usage API key, copies it once, and revokes it."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_creates_a_key_sees_it_once_and_revokes_it(page, live_server, login, alice):
    page.set_viewport_size({"width": 1400, "height": 900})
    login(page, alice)
    page.goto(f"{live_server.url}/panel/users/")
    page.get_by_role("navigation", name="Admin Panel").get_by_role("link", name="API Keys").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("API Keys")
    expect(page.get_by_text("No API keys yet")).to_be_visible()

    page.get_by_label("Name").fill("Gateway production")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("Secret key")
    expect(secret).to_have_value(re.compile(r"^ask_.{40,}$"))
    expect(page.get_by_text("it is shown only once")).to_be_visible()
    value = secret.input_value()
    row = page.get_by_role("row", name=re.compile("Gateway production"))
    expect(row).to_contain_text(value[:12] + "…")
    expect(row).to_contain_text("Never")

    page.reload()
    expect(page.get_by_label("Secret key")).to_have_count(0)
    assert value not in page.content()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke Gateway production").click()
    expect(
        page.get_by_role("status").filter(has_text="Revoked “Gateway production”")
    ).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("Gateway production"))).to_contain_text(
        "Revoked"
    )
    expect(page.get_by_role("button", name="Revoke Gateway production")).to_have_count(0)


def test_the_new_key_copies_to_the_clipboard_with_one_click(
    page, context, live_server, login, alice
):
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.set_viewport_size({"width": 1000, "height": 900})
    login(page, alice)
    page.goto(f"{live_server.url}/panel/api-keys/")
    page.get_by_label("Name").fill("Gateway staging")
    page.get_by_role("button", name="Create key").click()
    value = page.get_by_label("Secret key").input_value()

    page.get_by_role("button", name="Copy key").click()

    expect(page.get_by_text("Copied to the clipboard.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == value
