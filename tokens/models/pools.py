"""Monthly pools: confirmed purchases, and an org admin's request to sales for more."""

from django.conf import settings
from django.db import models
from django.db.models.functions import Mod
from django.db.models.lookups import Exact
from django.utils import timezone

from accounts.models import Organization
from asksage_admin.lib.amounts import MAX_TOKENS

from .kinds import BLOCK, TokenKind


class Purchase(models.Model):
    """A confirmed payment for a monthly pool of one kind, from start month to end month."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="purchases"
    )
    kind = models.CharField(max_length=10, choices=TokenKind)
    tokens_per_month = models.BigIntegerField(help_text="In blocks of 2,000,000 tokens.")
    start_month = models.DateField(help_text="First day of the first month it covers.")
    end_month = models.DateField(
        null=True, blank=True, help_text="First day of the last month it covers; empty: ongoing."
    )
    payment_reference = models.CharField(max_length=100, blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=["inference", "embedding"]), name="purchase_kind_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(tokens_per_month__gt=0, tokens_per_month__lte=MAX_TOKENS),
                name="purchase_tokens_positive",
            ),
            models.CheckConstraint(
                condition=Exact(Mod("tokens_per_month", BLOCK), 0),
                name="purchase_tokens_in_2m_blocks",
            ),
            models.CheckConstraint(
                condition=models.Q(end_month__isnull=True)
                | models.Q(end_month__gte=models.F("start_month")),
                name="purchase_end_after_start",
            ),
        ]
        indexes = [models.Index(fields=["organization", "kind", "start_month"])]

    def __str__(self) -> str:
        return f"{self.tokens_per_month:,} {self.kind}/month from {self.start_month:%Y-%m}"


class PurchaseRequest(models.Model):
    """An org admin asking sales for more tokens, in blocks of 2,000,000 per month."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        FULFILLED = "fulfilled", "Fulfilled"

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="purchase_requests"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=10, choices=TokenKind)
    blocks = models.PositiveIntegerField(help_text="Blocks of 2,000,000 tokens per month.")
    note = models.CharField(max_length=1000, blank=True)
    status = models.CharField(max_length=10, choices=Status, default=Status.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    fulfilled_at = models.DateTimeField(null=True, blank=True)
    fulfilled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    purchase = models.OneToOneField(
        Purchase, null=True, blank=True, on_delete=models.PROTECT, related_name="request"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(blocks__gte=1), name="purchase_request_blocks_positive"
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.organization}: {self.tokens:,} {self.kind}/month ({self.status})"

    @property
    def tokens(self) -> int:
        return self.blocks * BLOCK
