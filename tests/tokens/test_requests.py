"""Token Requests: members ask from their home page, admins approve or deny in the panel."""

import pytest
from django.core import mail
from django.urls import reverse

from asksage_admin.lib.amounts import parse_tokens
from asksage_admin.lib.errors import DomainError
from audit.models import AuditLog
from tests.factories import MembershipFactory, MonthlyUsageFactory, UserFactory, max_of
from tokens.models import AllocationPolicy, TokenRequest
from tokens.services import requests as request_services


def ask(user, amount="500k", kind="inference", reason="Big project"):
    """A member's request, the amount typed as on the form (parsed as the form does)."""
    return request_services.token_request_create(
        user=user, kind=kind, amount=parse_tokens(amount), reason=reason
    )


@pytest.fixture
def pending(bob, alice):
    return ask(bob)


# --- Members asking -----------------------------------------------------------------------


def test_a_member_asks_from_the_home_page_and_sees_the_status(client, bob, alice):
    client.force_login(bob)
    response = client.post(
        reverse("member:token_request_create"),
        {"kind": "inference", "amount": "1.5M", "reason": "Quarterly report"},
    )
    assert response.status_code == 302
    request = TokenRequest.objects.get(user=bob)
    assert (request.amount, request.current_max, request.status) == (1_500_000, 200_000, "pending")
    page = client.get(reverse("member:home")).content.decode()
    assert "Quarterly report" in page and "Pending" in page and "1,500,000" in page


@pytest.fixture
def auditor(org_a):
    return MembershipFactory(
        user__email="audrey@example.com", organization=org_a, role="auditor"
    ).user


def test_an_auditor_cannot_post_a_token_request(client, auditor, alice, auto_rule):
    client.force_login(auditor)
    response = client.post(
        reverse("member:token_request_create"),
        {"kind": "inference", "amount": "100k", "reason": "Just looking"},
    )
    assert response.status_code == 403
    assert "read-only" in response.content.decode()
    assert not TokenRequest.objects.exists()
    assert max_of(auditor) == 200_000


def test_the_service_refuses_an_auditors_request_even_if_a_view_forgot(auditor, alice):
    with pytest.raises(DomainError, match="read-only"):
        ask(auditor)
    assert not TokenRequest.objects.exists()


def test_an_auditors_home_page_offers_no_request_form(client, auditor, alice):
    client.force_login(auditor)
    page = client.get(reverse("member:home")).content.decode()
    assert "read-only access" in page
    assert "Send request" not in page


def test_the_request_form_answers_htmx_with_its_partial(client, bob, alice):
    client.force_login(bob)
    response = client.post(
        reverse("member:token_request_create"),
        {"kind": "inference", "amount": "250,000", "reason": "Tests"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="my-requests"' in html and "<html" not in html and "Request sent" in html


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("-5", "negative"),
        ("0", "above zero"),
        ("12abc", "is not an amount"),
        (str(2**53), "cannot exceed"),
        ("", "Enter an amount"),
    ],
)
def test_bad_amounts_are_refused_with_a_clear_error(client, bob, alice, amount, message):
    client.force_login(bob)
    response = client.post(
        reverse("member:token_request_create"),
        {"kind": "inference", "amount": amount, "reason": "x"},
    )
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not TokenRequest.objects.exists()


def test_a_reason_over_500_characters_is_refused(bob, alice):
    with pytest.raises(DomainError, match="500 characters"):
        ask(bob, reason="x" * 501)
    assert not TokenRequest.objects.exists()


def test_a_second_pending_request_of_the_same_kind_is_refused(bob, pending):
    with pytest.raises(DomainError, match="already have a pending inference request"):
        ask(bob, amount="100k")
    ask(bob, kind="embedding", amount="100k")  # another kind is fine
    assert TokenRequest.objects.filter(user=bob).count() == 2


def test_an_unknown_kind_is_refused(bob, alice):
    with pytest.raises(DomainError, match="inference or embedding"):
        ask(bob, kind="gold")


def test_the_admins_are_emailed_about_a_new_request(bob, alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        ask(bob)
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]
    assert "500,000" in mail.outbox[0].body and "Big project" in mail.outbox[0].body


def test_the_request_is_audited(bob, pending):
    row = AuditLog.objects.get(action="token_request.created")
    assert (row.actor, row.target_user, row.new_value) == (bob, bob, "500000")


# --- Admins deciding ----------------------------------------------------------------------


def test_approving_raises_the_max_at_once_audits_and_emails(
    alice_client, bob, pending, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            reverse("tokens:request_approve", args=[pending.pk]), {"amount": "", "note": "OK"}
        )
    assert response.status_code == 302
    pending.refresh_from_db()
    assert (pending.status, pending.granted) == ("approved", 500_000)
    assert max_of(bob) == 700_000
    assert AuditLog.objects.filter(action="token_request.approved", target_user=bob).exists()
    change = AuditLog.objects.get(action="allocation.changed", target_user=bob)
    assert (change.old_value, change.new_value, change.details["source"]) == (
        "200000",
        "700000",
        "request",
    )
    assert mail.outbox[-1].to == ["bob@example.com"]
    assert "approved" in mail.outbox[-1].subject and "700,000" in mail.outbox[-1].body


def test_approving_a_smaller_amount_grants_only_that(alice, bob, org_a, pending):
    request_services.token_request_approve(
        admin=alice, org=org_a, request_id=pending.pk, amount=100_000, note="Start small"
    )
    pending.refresh_from_db()
    assert (pending.granted, pending.note) == (100_000, "Start small")
    assert max_of(bob) == 300_000


def test_approving_more_than_requested_is_refused(alice, bob, org_a, pending):
    with pytest.raises(DomainError, match="at most the 500,000"):
        request_services.token_request_approve(
            admin=alice, org=org_a, request_id=pending.pk, amount=600_000
        )
    assert max_of(bob) == 200_000


def test_approving_more_than_the_unallocated_pool_is_refused(alice, bob, org_a):
    request = ask(bob, amount="3.9M")  # 4M pool, 400K allocated → 3.6M unallocated
    with pytest.raises(DomainError, match="Only 3,600,000 inference tokens are unallocated"):
        request_services.token_request_approve(admin=alice, org=org_a, request_id=request.pk)
    request.refresh_from_db()
    assert request.status == "pending" and max_of(bob) == 200_000


def test_the_pool_refusal_shows_on_the_page(alice_client, bob):
    request = ask(bob, amount="3.9M")
    response = alice_client.post(
        reverse("tokens:request_approve", args=[request.pk]),
        {"amount": "", "tab": "pending"},
        follow=True,
    )
    assert "3,600,000 inference tokens are unallocated" in response.content.decode()


def test_denying_requires_a_note(alice, bob, org_a, pending):
    with pytest.raises(DomainError, match="Say why"):
        request_services.token_request_deny(
            admin=alice, org=org_a, request_id=pending.pk, note="  "
        )
    pending.refresh_from_db()
    assert pending.status == "pending"


def test_denying_leaves_the_allocation_and_emails_the_requester(
    alice_client, bob, pending, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(
            reverse("tokens:request_deny", args=[pending.pk]), {"note": "Budget is frozen"}
        )
    pending.refresh_from_db()
    assert (pending.status, pending.note) == ("denied", "Budget is frozen")
    assert max_of(bob) == 200_000
    assert AuditLog.objects.filter(action="token_request.denied").count() == 1
    assert mail.outbox[-1].to == ["bob@example.com"]
    assert "Budget is frozen" in mail.outbox[-1].body


def test_deciding_an_already_decided_request_is_refused(alice, bob, org_a, pending):
    request_services.token_request_approve(admin=alice, org=org_a, request_id=pending.pk)
    with pytest.raises(DomainError, match="already approved by Alice Admin"):
        request_services.token_request_approve(admin=alice, org=org_a, request_id=pending.pk)
    with pytest.raises(DomainError, match="already approved"):
        request_services.token_request_deny(
            admin=alice, org=org_a, request_id=pending.pk, note="no"
        )
    assert max_of(bob) == 700_000


def test_the_htmx_decision_answers_the_region_with_its_message(alice_client, bob, pending):
    response = alice_client.post(
        reverse("tokens:request_deny", args=[pending.pk]),
        {"note": "", "tab": "pending"},
        headers={"HX-Request": "true"},
    )
    html = response.content.decode()
    assert response.status_code == 422  # a refusal; base.html's htmx-config swaps 422
    assert 'id="requests-region"' in html and "<html" not in html and "Say why" in html


# --- Auto-approval ------------------------------------------------------------------------


@pytest.fixture
def auto_rule(org_a):
    return AllocationPolicy.objects.create(
        organization=org_a,
        floor_inference=200_000,
        alert_thresholds=[80, 95],
        auto_approve_enabled=True,
        auto_approve_max=300_000,
        auto_approve_below_percent=50,
    )


def test_the_auto_approval_rule_grants_small_requests_at_once(bob, alice, auto_rule):
    request = ask(bob, amount="300k")
    assert (request.status, request.decided_by_label) == ("approved", "policy")
    assert max_of(bob) == 500_000
    row = AuditLog.objects.get(action="token_request.approved")
    assert (row.actor, row.actor_label) == (None, "policy")


def test_the_auto_approval_rule_leaves_large_requests_pending(bob, alice, auto_rule):
    assert ask(bob, amount="301k").status == "pending"


def test_the_auto_approval_rule_stops_once_the_org_used_its_share(bob, alice, org_a, auto_rule):
    MonthlyUsageFactory(user=alice, organization=org_a, used=2_000_000)  # 50 % of 4M
    assert ask(bob, amount="100k").status == "pending"


# --- Pages, permissions and the badge -------------------------------------------------------


def test_tabs_show_the_spec_columns_and_oldest_pending_first(alice_client, org_a, bob):
    carl = MembershipFactory(organization=org_a, user__email="carl@example.com").user
    ask(bob, reason="first")
    ask(carl, reason="second")
    html = alice_client.get(reverse("tokens:requests")).content.decode()
    for header in ("User Email", "Requested Amount", "Reason", "Current Tokens", "Status"):
        assert header in html
    assert html.index("first") < html.index("second")
    assert "Pending (2)" in html


def test_each_tab_lists_only_its_requests(alice_client, alice, org_a, bob, pending):
    request_services.token_request_deny(admin=alice, org=org_a, request_id=pending.pk, note="Nope")
    assert "Nope" in alice_client.get(reverse("tokens:requests") + "?tab=denied").content.decode()
    approved = alice_client.get(reverse("tokens:requests") + "?tab=approved").content.decode()
    assert "Nope" not in approved
    assert "Nope" in alice_client.get(reverse("tokens:requests") + "?tab=all").content.decode()


def test_the_tabs_answer_htmx_with_the_region(alice_client, pending):
    response = alice_client.get(reverse("tokens:requests"), headers={"HX-Request": "true"})
    assert 'id="requests-region"' in response.content.decode()
    assert "<html" not in response.content.decode()


def test_the_sidebar_badge_shows_the_pending_count(alice_client, pending):
    html = alice_client.get(reverse("tokens:users")).content.decode()
    assert 'aria-label="1 pending"' in html


def test_the_requests_page_query_count_does_not_grow_with_rows(
    alice_client, org_a, many_members, django_assert_max_num_queries
):
    for user in many_members(30):
        ask(user, amount="10k")
    with django_assert_max_num_queries(15):
        response = alice_client.get(reverse("tokens:requests"))
    assert response.content.decode().count("Approve ") >= 30


def test_carol_cannot_see_or_decide_org_a_requests(client, carol, bob, pending):
    client.force_login(carol)
    assert pending.user.email not in client.get(reverse("tokens:requests")).content.decode()
    approve = client.post(reverse("tokens:request_approve", args=[pending.pk]))
    deny = client.post(reverse("tokens:request_deny", args=[pending.pk]), {"note": "x"})
    assert (approve.status_code, deny.status_code) == (404, 404)
    pending.refresh_from_db()
    assert pending.status == "pending" and max_of(bob) == 200_000


def test_a_forged_request_id_for_another_org_is_refused_by_the_service(carol, org_b, pending):
    with pytest.raises(DomainError, match="does not exist"):
        request_services.token_request_approve(admin=carol, org=org_b, request_id=pending.pk)


def test_bob_the_member_gets_403_on_the_requests_page(client, bob, pending):
    client.force_login(bob)
    assert client.get(reverse("tokens:requests")).status_code == 403
    assert client.post(reverse("tokens:request_approve", args=[pending.pk])).status_code == 403


def test_anonymous_visitors_cannot_post_a_request(client):
    response = client.post(reverse("member:token_request_create"), {})
    assert response.status_code == 302 and "/accounts/login/" in response.url


def test_someone_without_an_organization_is_told_so(client, db):
    loner = UserFactory()
    client.force_login(loner)
    response = client.post(
        reverse("member:token_request_create"),
        {"kind": "inference", "amount": "1k", "reason": "x"},
        follow=True,
    )
    assert "not part of an organization" in response.content.decode()


@pytest.mark.parametrize(
    ("amount", "message"),
    [("-1", "negative"), ("0", "above zero"), ("1.2.3", "not an amount"), (str(2**53), "exceed")],
)
def test_bad_approval_amounts_are_refused(alice_client, bob, pending, amount, message):
    # Parsed by the approval form, zero refused by the service: the same 422 with words.
    response = alice_client.post(
        reverse("tokens:request_approve", args=[pending.pk]),
        {"amount": amount},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 422
    assert message in response.content.decode()
    pending.refresh_from_db()
    assert pending.status == "pending" and max_of(bob) == 200_000


def test_the_requests_page_is_paginated(alice_client, org_a, many_members):
    for user in many_members(55):
        ask(user, amount="1k")
    first = alice_client.get(reverse("tokens:requests")).content.decode()
    assert "Page 1 of 2" in first and first.count("Approve ") == 50
    second = alice_client.get(reverse("tokens:requests") + "?page=2").content.decode()
    assert second.count("Approve ") == 5
    assert alice_client.get(reverse("tokens:requests") + "?page=zzz").status_code == 200


def test_an_unknown_tab_falls_back_to_pending(alice_client, pending):
    response = alice_client.get(reverse("tokens:requests") + "?tab=<script>")
    assert response.status_code == 200 and "Pending (1)" in response.content.decode()


def test_an_approval_that_drops_the_pool_below_the_alert_emails_the_admins(
    alice, bob, org_a, django_capture_on_commit_callbacks
):
    AllocationPolicy.objects.create(
        organization=org_a, floor_inference=200_000, low_unallocated_alert=2_000_000
    )
    request = ask(bob, amount="2M")
    with django_capture_on_commit_callbacks(execute=True):
        request_services.token_request_approve(admin=alice, org=org_a, request_id=request.pk)
    subjects = [m.subject for m in mail.outbox]
    assert "Acme Agency: only 1,600,000 inference tokens are unallocated" in subjects


# --- Members cancelling -------------------------------------------------------------------


def test_a_member_cancels_their_pending_request_from_the_home_page(client, bob, pending):
    client.force_login(bob)
    url = reverse("member:token_request_cancel", args=[pending.pk])
    assert url in client.get(reverse("member:home")).content.decode()

    response = client.post(url, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert "Cancelled your request for 500,000 inference tokens." in response.content.decode()
    pending.refresh_from_db()
    assert pending.status == "cancelled"
    row = AuditLog.objects.get(action="token_request.cancelled")
    assert (row.actor, row.target_user) == (bob, bob)
    # The one-pending-per-kind rule no longer blocks a new request.
    assert ask(bob, amount="100k").status == "pending"


def test_a_cancelled_request_cannot_be_approved(alice, bob, org_a, pending):
    request_services.token_request_cancel(user=bob, request_id=pending.pk)

    with pytest.raises(DomainError, match="cancelled"):
        request_services.token_request_approve(admin=alice, org=org_a, request_id=pending.pk)
    assert max_of(bob) == 200_000


def test_a_decided_request_cannot_be_cancelled(client, alice, bob, org_a, pending):
    request_services.token_request_deny(admin=alice, org=org_a, request_id=pending.pk, note="No")
    client.force_login(bob)

    response = client.post(reverse("member:token_request_cancel", args=[pending.pk]))

    assert response.status_code == 302
    pending.refresh_from_db()
    assert pending.status == "denied"
    assert not AuditLog.objects.filter(action="token_request.cancelled").exists()


def test_nobody_cancels_someone_elses_request(alice_client, pending):
    response = alice_client.post(reverse("member:token_request_cancel", args=[pending.pk]))

    assert response.status_code == 404
    pending.refresh_from_db()
    assert pending.status == "pending"
