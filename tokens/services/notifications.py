"""In-app notifications (the bell): written by the services whose events they tell about,
in the same transaction, next to the email; read and marked read by their recipient only.

Idempotent: each event has a key and (recipient, key) is unique, so a writer run twice (a
retried task, a replayed request) notifies once; `bulk_create(ignore_conflicts=True)` makes
that one INSERT however many recipients.
"""

from collections.abc import Iterable

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, Organization, User
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.wording import counted
from tokens.models import MAX_COLUMNS, AllocationBatch, Notification, TokenRequest

TEXT_MAX = Notification._meta.get_field("text").max_length


def notify(
    *,
    recipient_ids: Iterable[int],
    org: Organization | None,
    kind: str,
    text: str,
    key: str,
    link: str = "",
) -> None:
    """One notification per recipient for the event `key`; none twice."""
    if len(text) > TEXT_MAX:
        text = text[: TEXT_MAX - 1] + "…"
    Notification.objects.bulk_create(
        [
            Notification(
                recipient_id=rid, organization=org, kind=kind, text=text, link=link, key=key
            )
            for rid in dict.fromkeys(recipient_ids)
        ],
        ignore_conflicts=True,
    )


def request_decided(*, token_request: TokenRequest) -> None:
    """The requester hears the decision (approved, all or part, or denied with the note)."""
    what = counted(token_request.amount, f"{token_request.kind} token")
    if token_request.status == TokenRequest.Status.APPROVED:
        kind = Notification.Kind.REQUEST_APPROVED
        text = f"Your request for {what} was approved"
        if token_request.granted != token_request.amount:
            text += f" for {token_request.granted:,}"
        text += "."
    else:
        kind = Notification.Kind.REQUEST_DENIED
        text = f"Your request for {what} was denied: {token_request.note}"
    notify(
        recipient_ids=[token_request.user_id],
        org=token_request.organization,
        kind=kind,
        text=text,
        key=f"request:{token_request.pk}:decided",
        link=reverse("member:home") + "#my-requests",
    )


def limits_changed(
    *, org: Organization, batch: AllocationBatch, rows: list[tuple[int, int, int]]
) -> None:
    """Each user whose max an admin changed hears old → new (not the admin about their own).

    Not the policy's changes (auto-increase, reclamation: no admin), nor a request's grant
    (its decision is the notification)."""
    admin = batch.actor
    if admin is None or batch.source == "request":
        return
    label = f"{MAX_COLUMNS[batch.column]} token limit"
    link = reverse("member:home")
    # One INSERT for the whole batch, whatever the rows: a save's query count stays flat.
    Notification.objects.bulk_create(
        [
            Notification(
                recipient_id=user_id,
                organization=org,
                kind=Notification.Kind.LIMIT_CHANGED,
                text=f"Your {label} was changed from {old:,} to {new:,} by {admin.email}."[
                    :TEXT_MAX
                ],
                link=link,
                key=f"batch:{batch.pk}",
            )
            for user_id, old, new in rows
            if user_id != admin.pk
        ],
        ignore_conflicts=True,
    )


def usage_alert(
    *, org: Organization, user: User, kind: str, top: int, used: int, current: int, month
) -> None:
    """The user and the organization's admins hear that usage crossed a threshold."""
    key = f"alert:{month:%Y-%m}:{user.pk}:{kind}:{top}"
    numbers = f"this month ({used:,} of {current:,})."
    admins = Membership.objects.filter(organization=org, role=Membership.Role.ADMIN).exclude(
        user_id=user.pk
    )
    texts = {user.pk: (f"You have used {top} % of your {kind} tokens {numbers}", "member:home")}
    for admin_id in admins.values_list("user_id", flat=True):
        texts[admin_id] = (
            f"{user.email} has used {top} % of their {kind} tokens {numbers}"[:TEXT_MAX],
            "tokens:users",
        )
    # One SELECT (the admins) and one INSERT, in the usage report's locked transaction.
    Notification.objects.bulk_create(
        [
            Notification(
                recipient_id=rid,
                organization=org,
                kind=Notification.Kind.USAGE_ALERT,
                text=text,
                link=reverse(url),
                key=key,
            )
            for rid, (text, url) in texts.items()
        ],
        ignore_conflicts=True,
    )


@transaction.atomic
def notification_mark_read(*, user: User, notification_id: int) -> Notification:
    """Mark one of the user's notifications read (another person's id: not found)."""
    notification = (
        Notification.objects.select_for_update().filter(recipient=user, pk=notification_id).first()
    )
    if notification is None:
        raise DomainError("That notification does not exist.")
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return notification


def notifications_mark_all_read(*, user: User) -> int:
    """Mark every unread notification of the user read; one UPDATE. Returns how many."""
    return Notification.objects.filter(recipient=user, read_at__isnull=True).update(
        read_at=timezone.now()
    )
