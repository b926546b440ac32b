"""The append-only audit log of every write."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditLog(models.Model):
    """One action: who did what to whom, old → new, when and from where.

    `actor` is empty for the platform's own actions (policies); `actor_label` then names them.
    """

    organization = models.ForeignKey(
        "accounts.Organization", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=100, blank=True)
    action = models.CharField(max_length=50)
    target_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    column = models.CharField(max_length=30, blank=True)
    old_value = models.CharField(max_length=100, blank=True)
    new_value = models.CharField(max_length=100, blank=True)
    batch_id = models.UUIDField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "created_at"]),
            models.Index(fields=["organization", "action", "created_at"]),
            models.Index(fields=["target_user", "created_at"]),
            models.Index(fields=["batch_id"]),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        who = self.actor_label or (self.actor and self.actor.email) or "system"
        return f"{self.created_at:%Y-%m-%d %H:%M} {who} {self.action}"
