"""An admin invites someone, the invitee accepts through the emailed link, and the admin
re-roles and removes them: all in the browser, as people would."""

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from accounts.models import Membership, User

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def emailed_link(live_server_url: str) -> str:
    body = next(m.body for m in reversed(mail.outbox) if "invites you" in m.subject)
    path = re.search(r"https?://[^/\s]+(/invitations/[^/\s]+/)", body).group(1)
    return live_server_url + path


def test_an_admin_invites_the_invitee_joins_and_the_admin_re_roles_and_removes_them(
    page, browser, live_server, login, alice, bob
):
    page.set_viewport_size({"width": 1400, "height": 900})
    login(page, alice)
    page.goto(f"{live_server.url}/panel/users/")

    invitations = page.get_by_role("region", name="Invitations").first
    page.get_by_label("Email", exact=True).fill("nina@example.com")
    page.get_by_label("Role", exact=True).first.select_option("member")
    page.get_by_role("button", name="Send invitation").click()
    expect(
        page.get_by_role("status").filter(has_text="Invitation sent to nina@example.com")
    ).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("nina@example.com"))).to_contain_text("Pending")

    # The invitee opens the emailed link in a browser of their own.
    invitee = browser.new_context().new_page()
    invitee.goto(emailed_link(live_server.url))
    expect(invitee.get_by_role("heading", level=1)).to_have_text("Join Acme Agency")
    invitee.get_by_label("Name").fill("Nina New")
    invitee.get_by_label("Password").fill("a-long-pass-2026")
    invitee.get_by_label("I accept the terms and conditions").check()
    invitee.get_by_role("button", name="Create account and join").click()
    expect(invitee.get_by_text("Welcome to Acme Agency!")).to_be_visible()
    invitee.context.close()
    nina = User.objects.get(email="nina@example.com")
    assert nina.membership.role == "member"

    page.reload()
    expect(invitations).to_contain_text("No invitations waiting")
    page.get_by_label("Role of Nina New").select_option("admin")
    expect(page.get_by_role("status").filter(has_text="Nina New is now admin.")).to_be_visible()
    assert Membership.objects.get(user=nina).role == "admin"

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Remove Nina New").click()
    expect(page.get_by_role("status").filter(has_text="Removed Nina New")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("Nina New"))).to_have_count(0)
    nina.refresh_from_db()
    assert nina.is_banned and not Membership.objects.filter(user=nina).exists()
