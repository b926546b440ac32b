"""The email outbox: every email is rendered from templates/emails/, stored as an
`EmailDelivery` in the caller's transaction, and sent by the `send_email` task after commit.

Why an outbox row rather than a bare task: the row is the idempotency key (a task run twice,
or picked by two workers, sends once), it carries the retry count and backoff across attempts
whatever the task backend supports, and a failure stays visible to sales in /staff/.
"""

import datetime as dt
import logging
from collections.abc import Iterable

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.tasks import task
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import Organization
from tokens.models import EmailDelivery

logger = logging.getLogger(__name__)

# The kinds, each with templates/emails/<kind>.subject.txt, <kind>.txt and <kind>.html.
KINDS = frozenset(
    {
        "request_to_admins",
        "request_approved",
        "request_denied",
        "usage_alert",
        "purchase_request_to_sales",
        "purchase_recorded",
        "pool_alert",
        "invitation",
        "sso_pool_alert",
    }
)


def absolute_url(path_or_name: str, *args) -> str:
    """An absolute link from SITE_URL: a URL name (with its args) or a path."""
    path = path_or_name if path_or_name.startswith("/") else reverse(path_or_name, args=args)
    return settings.SITE_URL.rstrip("/") + path


def render_email(kind: str, context: dict) -> tuple[str, str, str]:
    """(subject, text, html) of one kind; the subject on one line."""
    if kind not in KINDS:
        raise ValueError(f"Unknown email kind {kind!r}.")
    context = {"site_url": settings.SITE_URL.rstrip("/"), **context}
    subject = " ".join(render_to_string(f"emails/{kind}.subject.txt", context).split())
    text = render_to_string(f"emails/{kind}.txt", context)
    html = render_to_string(f"emails/{kind}.html", context)
    return subject, text, html


def email_queue(
    *, kind: str, to: Iterable[str], context: dict, organization: Organization | None = None
) -> EmailDelivery | None:
    """Render and store an email now; send it once the transaction commits.

    Rendered inside the write's transaction, so it tells what that write saw; a rolled-back
    write stores and sends nothing. No recipient, no email.
    """
    recipients = list(dict.fromkeys(address for address in to if address))
    if not recipients:
        return None
    subject, text, html = render_email(kind, context)
    delivery = EmailDelivery.objects.create(
        kind=kind,
        organization=organization,
        to=recipients,
        subject=subject[:255],
        body_text=text,
        body_html=html,
    )
    transaction.on_commit(lambda: send_email.enqueue(delivery_id=delivery.pk), robust=True)
    return delivery


# Emails whose body carries a single-use link that works as a credential (an invitation).
ONE_TIME_LINK_KINDS = {"invitation"}
LINK_NOT_KEPT = "(Not kept: this email carried a single-use link; resend it from the Admin Panel.)"


def retry_delay(attempts: int) -> dt.timedelta:
    """Exponential backoff after the n-th failed attempt: base, 2×base, 4×base…"""
    return dt.timedelta(seconds=settings.EMAIL_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0))


def email_deliver(*, delivery_id: int) -> str:
    """Send one stored email if it is still pending and due; record the outcome.

    The row stays locked while the mail server answers: a second worker running the same
    delivery waits, then finds it sent. Returns the row's status (or "missing"/"not due").
    """
    with transaction.atomic():
        delivery = EmailDelivery.objects.select_for_update().filter(pk=delivery_id).first()
        if delivery is None:
            return "missing"
        if delivery.status != EmailDelivery.Status.PENDING:
            return delivery.status
        now = timezone.now()
        if delivery.next_attempt_at > now:
            return "not due"
        delivery.attempts += 1
        message = EmailMultiAlternatives(
            subject=delivery.subject,
            body=delivery.body_text,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=delivery.to,
        )
        if delivery.body_html:
            message.attach_alternative(delivery.body_html, "text/html")
        try:
            message.send(fail_silently=False)
        except Exception as exc:  # noqa: BLE001 - any mail failure is recorded and retried
            delivery.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            if delivery.attempts >= settings.EMAIL_MAX_ATTEMPTS:
                delivery.status = EmailDelivery.Status.FAILED
                logger.error("email %s failed for good: %s", delivery.pk, delivery.last_error)
            else:
                delivery.next_attempt_at = now + retry_delay(delivery.attempts)
                transaction.on_commit(lambda: _enqueue_retry(delivery), robust=True)
        else:
            delivery.status = EmailDelivery.Status.SENT
            delivery.sent_at = now
            delivery.last_error = ""
        fields = ["attempts", "status", "last_error", "next_attempt_at", "sent_at"]
        if delivery.kind in ONE_TIME_LINK_KINDS and delivery.status != delivery.Status.PENDING:
            # The link is a credential: once the mail is out (or given up on), the outbox,
            # which sales can read in /staff/, keeps no copy of it.
            delivery.body_text = delivery.body_html = LINK_NOT_KEPT
            fields += ["body_text", "body_html"]
        delivery.save(update_fields=fields)
        return delivery.status


def _enqueue_retry(delivery: EmailDelivery) -> None:
    """Enqueue the next attempt at its time. A backend that cannot defer (the immediate one
    of the unit tests) leaves it to `email_retry_due`, the periodic sweep."""
    if send_email.get_backend().supports_defer:
        send_email.using(run_after=delivery.next_attempt_at).enqueue(delivery_id=delivery.pk)


# How late a pending email must be before the sweep enqueues it again: its own task had
# that long to run.
SWEEP_GRACE = dt.timedelta(minutes=2)


def email_retry_due(*, now: dt.datetime | None = None) -> int:
    """Enqueue every pending email overdue by SWEEP_GRACE: retries a backend could not
    defer, and enqueues lost between a commit and its on-commit callback (a crash there).
    Harmless when the task is queued already: the second run finds the row sent."""
    now = now or timezone.now()
    due = list(
        EmailDelivery.objects.filter(
            status=EmailDelivery.Status.PENDING, next_attempt_at__lte=now - SWEEP_GRACE
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:1000]
    )
    for delivery_id in due:
        send_email.enqueue(delivery_id=delivery_id)
    return len(due)


@task(queue_name="default")
def send_email(delivery_id: int) -> str:
    """The task: deliver one stored email (see `email_deliver`)."""
    return email_deliver(delivery_id=delivery_id)
