"""In-app notifications (issue 20, item 3): written beside the emails in the event's own
transaction, once per event; the header's bell counts the unread with one query; each person
reads and marks only their own."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from asksage_admin.lib.errors import DomainError
from tests.factories import MonthlyUsageFactory, max_of
from tokens.models import Notification
from tokens.services import auto_increase as auto_increase_services
from tokens.services import distribution as distribution_services
from tokens.services import notifications as notification_services
from tokens.services import policy as policy_services
from tokens.services import requests as request_services

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


def ask(user, amount=100_000):
    return request_services.token_request_create(
        user=user, kind="inference", amount=amount, reason="A big batch"
    )


def texts(user) -> list[str]:
    return list(Notification.objects.filter(recipient=user).values_list("text", flat=True))


def test_approving_a_request_notifies_the_requester_once(alice, bob, org_a):
    request = ask(bob)
    request_services.token_request_approve(
        admin=alice, org=org_a, request_id=request.pk, amount=60_000
    )
    assert texts(bob) == ["Your request for 100,000 inference tokens was approved for 60,000."]
    note = Notification.objects.get(recipient=bob)
    assert (note.kind, note.link, note.read_at) == ("request_approved", "/#my-requests", None)
    notification_services.request_decided(token_request=request)  # a replay: still one
    assert Notification.objects.filter(recipient=bob).count() == 1


def test_denying_a_request_notifies_the_requester_with_the_note(alice, bob, org_a):
    request = ask(bob)
    request_services.token_request_deny(
        admin=alice, org=org_a, request_id=request.pk, note="Not this month"
    )
    assert texts(bob) == ["Your request for 100,000 inference tokens was denied: Not this month"]


def test_a_refused_approval_notifies_nobody(alice, bob, org_a):
    request = ask(bob, amount=9_000_000)
    with pytest.raises(DomainError):
        request_services.token_request_approve(admin=alice, org=org_a, request_id=request.pk)
    assert not Notification.objects.exists()


def test_an_admin_changing_limits_notifies_each_user_but_not_the_admin(alice, bob, org_a):
    distribution_services.distribution_apply(
        admin=alice, org=org_a, kind="inference", action="topup", amount=300_000
    )
    assert texts(bob) == [
        "Your inference token limit was changed from 200,000 to 300,000 by alice@example.com."
    ]
    assert texts(alice) == []


def test_a_grant_and_the_policys_own_increases_send_no_limit_notification(alice, bob, org_a):
    request = ask(bob)
    request_services.token_request_approve(admin=alice, org=org_a, request_id=request.pk)
    policy_services.policy_apply(admin=alice, org=org_a, preset="conservative")
    Notification.objects.all().delete()
    MonthlyUsageFactory(user=bob, organization=org_a, used=270_000)  # 90 % of 300K
    assert auto_increase_services.auto_increase_apply(user=bob, kind="inference")
    assert not Notification.objects.filter(kind="limit_changed").exists()


def test_a_usage_alert_notifies_the_user_and_the_admins_once(alice, bob, org_a):
    MonthlyUsageFactory(user=bob, organization=org_a, used=170_000)  # 85 % of 200K
    auto_increase_services.auto_increase_apply(user=bob, kind="inference")
    auto_increase_services.auto_increase_apply(user=bob, kind="inference")
    assert texts(bob) == [
        "You have used 80 % of your inference tokens this month (170,000 of 200,000)."
    ]
    assert texts(alice) == [
        "bob@example.com has used 80 % of their inference tokens this month (170,000 of 200,000)."
    ]


def test_the_bell_shows_the_unread_count_with_one_query(client, alice, bob, org_a):
    for n in range(3):
        notification_services.notify(
            recipient_ids=[bob.pk], org=org_a, kind="usage_alert", text=f"N{n}", key=f"k{n}"
        )
    Notification.objects.filter(key="k0").update(read_at="2026-01-01T00:00Z")
    client.force_login(bob)
    with CaptureQueriesContext(connection) as queries:
        html = client.get(reverse("member:home")).content.decode()
    assert 'id="bell-count"' in html and 'aria-live="polite"' in html
    assert '<span class="badge">2</span><span class="visually-hidden"> unread</span>' in html
    bell = [q for q in queries.captured_queries if "tokens_notification" in q["sql"]]
    assert len(bell) == 1


def test_the_page_lists_only_the_visitors_own_notifications(client, alice, bob, org_a):
    notification_services.notify(
        recipient_ids=[alice.pk], org=org_a, kind="usage_alert", text="For Alice", key="a"
    )
    notification_services.notify(
        recipient_ids=[bob.pk], org=org_a, kind="usage_alert", text="For Bob", key="b"
    )
    client.force_login(bob)
    html = client.get(reverse("member:notifications")).content.decode()
    assert "For Bob" in html and "For Alice" not in html


def test_marking_one_read_answers_the_list_and_the_bell_out_of_band(client, bob, org_a):
    notification_services.notify(
        recipient_ids=[bob.pk], org=org_a, kind="usage_alert", text="Hello", key="h"
    )
    note = Notification.objects.get()
    client.force_login(bob)
    url = reverse("member:notification_read", args=[note.pk])
    response = client.post(url, headers=HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="notification-list"')
    assert '<span id="bell-count" hx-swap-oob="innerHTML"></span>' in html
    note.refresh_from_db()
    assert note.read_at is not None
    plain = client.post(url)  # without JavaScript: back to the page
    assert plain.status_code == 302 and plain["Location"] == reverse("member:notifications")


def test_another_persons_notification_cannot_be_marked_read(client, alice, bob, org_a):
    notification_services.notify(
        recipient_ids=[alice.pk], org=org_a, kind="usage_alert", text="Mine", key="m"
    )
    note = Notification.objects.get()
    client.force_login(bob)
    assert client.post(reverse("member:notification_read", args=[note.pk])).status_code == 404
    note.refresh_from_db()
    assert note.read_at is None


def test_mark_all_read_marks_only_the_visitors_own(client, alice, bob, org_a):
    for user in (alice, bob, bob):
        notification_services.notify(
            recipient_ids=[user.pk], org=org_a, kind="usage_alert", text="x", key=f"{user.pk}"
        )
    notification_services.notify(
        recipient_ids=[bob.pk], org=org_a, kind="usage_alert", text="y", key="second"
    )
    client.force_login(bob)
    response = client.post(reverse("member:notifications_read_all"), headers=HX)
    assert "Marked 2 notifications as read." in response.content.decode()
    assert not Notification.objects.filter(recipient=bob, read_at__isnull=True).exists()
    assert Notification.objects.filter(recipient=alice, read_at__isnull=True).count() == 1


def test_a_long_text_is_cut_to_fit(bob, org_a):
    notification_services.notify(
        recipient_ids=[bob.pk], org=org_a, kind="request_denied", text="n" * 400, key="long"
    )
    assert len(texts(bob)[0]) == 300 and max_of(bob) == 200_000


def test_an_anonymous_visitor_is_sent_to_log_in(client):
    assert client.get(reverse("member:notifications")).status_code == 302
