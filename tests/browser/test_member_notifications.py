"""The member's home as people use it (issue 20, item 3): cancel a pending request, then
hear an admin's decision through the header's bell and mark it read."""

import pytest
from playwright.sync_api import expect

from tokens.models import TokenRequest
from tokens.services import requests as request_services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_member_cancels_a_request_then_reads_the_decision_on_another(
    page, live_server, login, alice, bob, org_a
):
    embedding = request_services.token_request_create(
        user=bob, kind="embedding", amount=100_000, reason="Index the wiki"
    )
    inference = request_services.token_request_create(
        user=bob, kind="inference", amount=300_000, reason="Quarterly reports"
    )
    page.set_viewport_size({"width": 1400, "height": 900})
    login(page, bob)
    bell = page.get_by_role("link", name="Notifications")
    expect(bell).to_have_accessible_name("Notifications")  # nothing unread

    page.get_by_role("button", name="Cancel request for 100,000 embedding tokens").click()
    expect(
        page.get_by_role("status").filter(has_text="Cancelled your request for 100,000")
    ).to_be_visible()
    embedding.refresh_from_db()
    assert embedding.status == TokenRequest.Status.CANCELLED

    request_services.token_request_approve(admin=alice, org=org_a, request_id=inference.pk)
    page.reload()
    expect(bell).to_have_accessible_name("Notifications 1 unread")
    bell.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/notifications/")
    notes = page.get_by_role("region", name="Your notifications")
    expect(notes).to_contain_text("Your request for 300,000 inference tokens was approved.")
    notes.get_by_role("button", name="Mark as read: Your request for 300,000").click()
    expect(page.get_by_role("status").filter(has_text="Marked as read.")).to_be_visible()
    expect(bell).to_have_accessible_name("Notifications")
    expect(notes.get_by_role("button", name="Mark as read")).to_have_count(0)
