"""Emails as background work: rendered from templates/emails/ with absolute links, stored in
the outbox (EmailDelivery) with the write, sent by the `send_email` task after the commit,
retried with backoff through an SMTP outage, then shown as failed to sales in /staff/.

The unit tests run the tasks with the immediate backend (tests/settings.py): each runs as it
is enqueued. tests/test_task_worker.py runs the real worker process.
"""

import datetime as dt
import smtplib
import time

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction
from django.template.loader import get_template
from django.urls import reverse

from tests.concurrency import run_together
from tokens import mail as outbox
from tokens.models import EmailDelivery
from tokens.services import emails
from tokens.services import purchases as purchase_services
from tokens.services import requests as request_services
from tokens.services.invitations import invitation_create

SITE = "https://admin.example.gov"
BROKEN = "tests.tokens.test_email_tasks.BrokenSMTPBackend"
NOON = dt.datetime(2027, 3, 10, 12, 0, tzinfo=dt.UTC)


class BrokenSMTPBackend(BaseEmailBackend):
    """The mail server is down."""

    def send_messages(self, email_messages):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


@pytest.fixture
def site_url(settings):
    settings.SITE_URL = SITE + "/"
    return SITE


def html_of(message) -> str:
    (html, mimetype) = message.alternatives[0]
    assert mimetype == "text/html"
    return html


def ask(user, amount=500_000):
    return request_services.token_request_create(
        user=user, kind="inference", amount=amount, reason="Big project"
    )


# --- Rendering ------------------------------------------------------------------------------


def test_every_email_kind_has_a_subject_a_text_and_an_html_template():
    for kind in outbox.KINDS:
        for suffix in ("subject.txt", "txt", "html"):
            assert get_template(f"emails/{kind}.{suffix}")


def test_request_emails_render_from_templates_with_absolute_links_in_text_and_html(
    alice, bob, site_url, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        asked = ask(bob)
    to_admins = mail.outbox[-1]
    requests_url = SITE + reverse("tokens:requests")
    assert to_admins.subject == "Token request from Bob Member: 500,000 inference tokens"
    assert requests_url in to_admins.body and "Big project" in to_admins.body
    assert f'href="{requests_url}"' in html_of(to_admins)

    with django_capture_on_commit_callbacks(execute=True):
        request_services.token_request_approve(
            admin=alice, org=asked.organization, request_id=asked.pk, amount=300_000, note="Ok"
        )
    approved = mail.outbox[-1]
    home_url = SITE + reverse("member:home")
    assert approved.to == ["bob@example.com"]
    assert "300,000 inference tokens were added (you asked for 500,000)" in approved.body
    assert f"See your limits at {home_url}" in approved.body
    assert f'href="{home_url}"' in html_of(approved)


def test_a_denial_email_quotes_the_note_escaped_in_html_and_as_typed_in_text(
    alice, bob, site_url, django_capture_on_commit_callbacks
):
    asked = ask(bob)
    with django_capture_on_commit_callbacks(execute=True):
        request_services.token_request_deny(
            admin=alice, org=asked.organization, request_id=asked.pk, note="Budget <frozen> & co"
        )
    denied = mail.outbox[-1]
    assert "Note: Budget <frozen> & co" in denied.body
    assert "Budget &lt;frozen&gt; &amp; co" in html_of(denied)
    assert SITE + reverse("member:home") in denied.body


def test_usage_and_purchase_emails_link_to_the_site(
    org_a, alice, bob, sam, site_url, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        emails.usage_alert(org=org_a, user=bob, kind="inference", top=80, used=80, current=100)
    alert = mail.outbox[-1]
    assert alert.to == ["bob@example.com", "alice@example.com"]
    assert SITE + reverse("tokens:users") in alert.body
    assert f'href="{SITE + reverse("member:home")}"' in html_of(alert)

    with django_capture_on_commit_callbacks(execute=True):
        request = purchase_services.purchase_request_create(
            admin=alice, org=org_a, kind="inference", blocks=1, note="Soon"
        )
    to_sales = mail.outbox[-1]
    assert to_sales.to == ["sam@example.com"]
    assert SITE + reverse("admin:tokens_purchaserequest_changelist") in to_sales.body

    with django_capture_on_commit_callbacks(execute=True):
        purchase_services.purchase_request_fulfil(actor=sam, purchase_request=request)
    recorded = mail.outbox[-1]
    assert recorded.to == ["alice@example.com"]
    assert SITE + reverse("tokens:distribution") in recorded.body


def test_a_rolled_back_write_stores_and_sends_no_email(
    bob, alice, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        ask(bob)
        raise RuntimeError("the write fails after asking for the email")
    assert mail.outbox == []
    assert not EmailDelivery.objects.exists()


# --- Idempotence --------------------------------------------------------------------------


def test_the_send_task_run_twice_sends_once(bob, alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        ask(bob)
    delivery = EmailDelivery.objects.get()
    assert (delivery.status, delivery.attempts, len(mail.outbox)) == ("sent", 1, 1)

    result = outbox.send_email.enqueue(delivery_id=delivery.pk)

    assert result.return_value == "sent"
    assert len(mail.outbox) == 1
    delivery.refresh_from_db()
    assert delivery.attempts == 1


def test_the_sweep_enqueues_only_overdue_pending_emails(bob, alice):
    with time_machine.travel(NOON, tick=False) as clock:
        ask(bob)  # committed with the test's transaction still open: no on-commit ran
        delivery = EmailDelivery.objects.get()
        assert outbox.email_retry_due() == 0  # its own task may still come
        clock.shift(outbox.SWEEP_GRACE + dt.timedelta(seconds=1))
        assert outbox.email_retry_due() == 1
        assert outbox.email_retry_due() == 0  # sent: nothing left
    delivery.refresh_from_db()
    assert delivery.status == EmailDelivery.Status.SENT and len(mail.outbox) == 1


# --- SMTP outage ----------------------------------------------------------------------------


def test_an_smtp_outage_is_retried_with_backoff_then_shown_failed_to_sales_in_staff(
    bob, alice, sales, settings, client, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = BROKEN
    settings.EMAIL_MAX_ATTEMPTS = 4
    settings.EMAIL_RETRY_BASE_SECONDS = 60
    with time_machine.travel(NOON, tick=False) as clock:
        with django_capture_on_commit_callbacks(execute=True):
            ask(bob)
        delivery = EmailDelivery.objects.get()
        waits = []
        while delivery.status == EmailDelivery.Status.PENDING:
            waits.append((delivery.next_attempt_at - dt.datetime.now(dt.UTC)).total_seconds())
            # Not due yet: a task run early changes nothing.
            assert outbox.send_email.enqueue(delivery_id=delivery.pk).return_value == "not due"
            clock.shift(delivery.next_attempt_at - dt.datetime.now(dt.UTC) + outbox.SWEEP_GRACE)
            outbox.email_retry_due()  # the sweep: the immediate backend cannot defer
            delivery.refresh_from_db()
    assert waits == [60, 120, 240]  # after attempts 1, 2 and 3
    assert delivery.status == EmailDelivery.Status.FAILED and delivery.attempts == 4
    assert "SMTPServerDisconnected: Connection unexpectedly closed" in delivery.last_error
    assert mail.outbox == []

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    outbox.send_email.enqueue(delivery_id=delivery.pk)  # failed is final: no resend
    assert mail.outbox == []

    client.force_login(sales)
    page = client.get(reverse("admin:tokens_emaildelivery_changelist") + "?status=failed")
    assert page.status_code == 200
    assert b"Token request from Bob Member" in page.content
    detail = client.get(reverse("admin:tokens_emaildelivery_change", args=[delivery.pk]))
    assert b"SMTPServerDisconnected" in detail.content


def test_an_email_that_fails_once_is_sent_on_the_retry(
    bob, alice, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = BROKEN
    with time_machine.travel(NOON, tick=False) as clock:
        with django_capture_on_commit_callbacks(execute=True):
            ask(bob)
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        clock.shift(dt.timedelta(seconds=settings.EMAIL_RETRY_BASE_SECONDS) + outbox.SWEEP_GRACE)
        outbox.email_retry_due()
    delivery = EmailDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("sent", 2, "")
    assert len(mail.outbox) == 1


def test_members_and_org_admins_cannot_see_the_outbox(alice, bob, client):
    client.force_login(alice)
    response = client.get(reverse("admin:tokens_emaildelivery_changelist"))
    assert response.status_code == 302 and "/staff/login/" in response["Location"]


class SlowBackend(BaseEmailBackend):
    """A mail server that takes its time: two workers on one email overlap."""

    sent: list = []

    def send_messages(self, email_messages):
        time.sleep(0.5)
        SlowBackend.sent.extend(m.subject for m in email_messages)
        return len(email_messages)


@pytest.mark.django_db(transaction=True)
def test_two_workers_running_the_same_email_at_once_send_it_once(bob, alice, settings):
    ask(bob)  # committed: the immediate backend sent it; make it pending again
    delivery = EmailDelivery.objects.get()
    EmailDelivery.objects.filter(pk=delivery.pk).update(status="pending", attempts=0)
    settings.EMAIL_BACKEND = "tests.tokens.test_email_tasks.SlowBackend"
    SlowBackend.sent = []

    outcomes = run_together(
        lambda: outbox.email_deliver(delivery_id=delivery.pk),
        lambda: outbox.email_deliver(delivery_id=delivery.pk),
    )

    assert sorted(outcomes) == [("ok", "sent"), ("ok", "sent")]
    assert SlowBackend.sent == ["Token request from Bob Member: 500,000 inference tokens"]
    delivery.refresh_from_db()
    assert delivery.attempts == 1


def test_an_invitation_s_link_leaves_the_outbox_once_sent_other_emails_stay(
    alice, bob, org_a, django_capture_on_commit_callbacks
):
    """Sales can read the outbox in /staff/: a single-use link there would be a way in."""
    with django_capture_on_commit_callbacks(execute=True):
        invitation_create(admin=alice, org=org_a, email="nina@example.com", role="member")
        ask(bob)
    sent = mail.outbox[0].body if "invites you" in mail.outbox[0].subject else mail.outbox[1].body
    assert "/invitations/" in sent  # the invitee got the link
    invitation = EmailDelivery.objects.get(kind="invitation")
    assert invitation.status == "sent"
    assert "/invitations/" not in invitation.body_text + invitation.body_html
    assert invitation.body_text == outbox.LINK_NOT_KEPT
    other = EmailDelivery.objects.exclude(kind="invitation").get()
    assert other.status == "sent" and "http" in other.body_text
