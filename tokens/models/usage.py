"""Consumption: raw usage events, and the per-month and per-day totals kept beside them."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Organization
from asksage_admin.lib.amounts import MAX_TOKENS

from .kinds import TokenKind


class MonthlyUsage(models.Model):
    """Tokens one user consumed of one kind in one UTC month: a new month starts at zero."""

    # No single-column indexes on the two foreign keys: the composite indexes below lead
    # with them, and each index costs every usage report a write.
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="monthly_usage",
        db_index=False,
    )
    kind = models.CharField(max_length=10, choices=TokenKind)
    month = models.DateField()
    used = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            # A member moved to another organization mid-month starts a new row there: each
            # row, and so each total, belongs to one organization. The user first: the key
            # also indexes the user's foreign key.
            models.UniqueConstraint(
                fields=["user", "kind", "month", "organization"],
                name="usage_one_row_per_org_month",
            ),
            models.CheckConstraint(
                condition=models.Q(used__gte=0, used__lte=MAX_TOKENS), name="usage_used_in_range"
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=["inference", "embedding"]), name="usage_kind_valid"
            ),
        ]
        indexes = [models.Index(fields=["organization", "kind", "month"])]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind} {self.month:%Y-%m}: {self.used:,}"


class UsageEvent(models.Model):
    """One recorded consumption reported by the gateway."""

    # Indexed by the composite indexes below, which lead with them (see MonthlyUsage).
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=10, choices=TokenKind)
    tokens = models.BigIntegerField()
    model = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)
    idempotency_key = models.CharField(max_length=200, blank=True)
    request_hash = models.CharField(
        max_length=64, blank=True, help_text="Hash of the request body, to spot a reused key."
    )
    # The balance the first answer reported, so a retry with the same key answers the same.
    used_after = models.BigIntegerField(null=True, blank=True)
    max_after = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(tokens__gt=0, tokens__lte=MAX_TOKENS),
                name="event_tokens_positive",
            ),
            # The key first: the usage statement finds a retry by the key alone, then checks
            # the organization (tokens/usage_api/postgres.py says why).
            models.UniqueConstraint(
                fields=["idempotency_key", "organization"],
                condition=~models.Q(idempotency_key=""),
                name="event_idempotency_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "created_at"]),
            models.Index(fields=["user", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.tokens:,} {self.kind} tokens on {self.model}"


class DailyUsage(models.Model):
    """Tokens per user, kind, model and UTC day: the statistics read this, never raw events.

    Maintained in the same transaction that records a usage event.
    """

    # Indexed by the composite indexes below, which lead with them (see MonthlyUsage).
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=10, choices=TokenKind)
    model = models.CharField(max_length=100)
    day = models.DateField()
    tokens = models.BigIntegerField(default=0)
    events = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind", "model", "day", "organization"],
                name="daily_usage_one_row_per_org",
            ),
            models.CheckConstraint(
                condition=models.Q(tokens__gte=0, events__gte=0), name="daily_usage_non_negative"
            ),
        ]
        indexes = [
            # An organization's date range, with who, what kind and which model (other
            # databases ignore INCLUDE). Not `tokens` and `events`: every usage report adds to
            # them, and an indexed column changing makes each of those updates write a new
            # entry in every index; unindexed, they are HOT updates (no index writes, their
            # dead rows pruned without VACUUM; the table keeps room for them: fillfactor 70,
            # migration 0007). Measured: the statistics page 0–10 % slower, no bloat.
            models.Index(
                fields=["organization", "day"],
                include=["user", "kind", "model"],
                name="daily_usage_org_day_cover",
            ),
            models.Index(fields=["organization", "kind", "day"]),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind} {self.model} {self.day}: {self.tokens:,}"


# --- Organization-level usage rollup (issue 19) --------------------------------------------


class OrgDailyUsage(models.Model):
    """Tokens and events per organization, UTC day, kind and model: the sum of DailyUsage
    over the organization's users, so the statistics read a few hundred rows a year instead
    of one per user and day.

    Maintained in the same transaction as each recorded usage (both doors of the usage API),
    and equal to the sum of the usage events: `tokens.rollup.rollup_mismatches` checks it.
    """

    # Indexed by the unique key below, which leads with it.
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    day = models.DateField()
    kind = models.CharField(max_length=10, choices=TokenKind)
    model = models.CharField(max_length=100)
    tokens = models.BigIntegerField(default=0)
    events = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            # Organization and day first: every statistics query is one organization's date
            # range, read from this index's range alone.
            models.UniqueConstraint(
                fields=["organization", "day", "kind", "model"], name="org_daily_usage_one_row"
            ),
            models.CheckConstraint(
                condition=models.Q(tokens__gte=0, events__gte=0),
                name="org_daily_usage_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization_id} {self.kind} {self.model} {self.day}: {self.tokens:,}"


# --- End of the organization-level usage rollup ---------------------------------------------
