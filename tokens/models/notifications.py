"""In-app notifications: the bell beside the emails (request decisions, limit changes,
usage alerts), written in the transaction of the event they tell about."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Organization


class Notification(models.Model):
    """One message for one person; unread until `read_at`.

    `key` names the event (e.g. "request:12:decided"): the unique (recipient, key) makes a
    writer run twice (a retried task, a replayed request) notify once.
    """

    class Kind(models.TextChoices):
        REQUEST_APPROVED = "request_approved", "Request approved"
        REQUEST_DENIED = "request_denied", "Request denied"
        LIMIT_CHANGED = "limit_changed", "Limit changed"
        USAGE_ALERT = "usage_alert", "Usage alert"
        SSO_POOL_SHORT = "sso_pool_short", "Single sign-on refused"

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(max_length=20, choices=Kind)
    text = models.CharField(max_length=300)
    link = models.CharField(max_length=200, blank=True)
    key = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["recipient", "key"], name="notification_once"),
        ]
        indexes = [
            # The bell's unread count, on every page: only unread rows are indexed.
            models.Index(
                fields=["recipient"],
                condition=models.Q(read_at__isnull=True),
                name="notification_unread",
            ),
            models.Index(fields=["recipient", "-created_at"], name="notification_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.recipient_id}: {self.text[:40]}"
