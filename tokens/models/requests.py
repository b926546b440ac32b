"""A member's request to their admins for more tokens of one kind."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Organization
from asksage_admin.lib.amounts import MAX_TOKENS

from .kinds import TokenKind


class TokenRequest(models.Model):
    """A member asking their admins for more tokens of one kind."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        DENIED = "denied", "Denied"
        CANCELLED = "cancelled", "Cancelled"

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="token_requests"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="token_requests"
    )
    kind = models.CharField(max_length=10, choices=TokenKind)
    amount = models.BigIntegerField()
    reason = models.CharField(max_length=500)
    current_max = models.BigIntegerField(help_text="The user's max when they asked.")
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    granted = models.BigIntegerField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_by_label = models.CharField(max_length=50, blank=True)  # "policy"
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0, amount__lte=MAX_TOKENS),
                name="token_request_amount_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "approved", "denied", "cancelled"]),
                name="token_request_status_valid",
            ),
            models.UniqueConstraint(
                fields=["user", "kind"],
                condition=models.Q(status="pending"),
                name="token_request_one_pending_per_kind",
            ),
        ]
        indexes = [models.Index(fields=["organization", "status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.user_id} asks {self.amount:,} {self.kind} ({self.status})"
