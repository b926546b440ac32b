"""Consumption: raw usage events, and the per-month and per-day totals kept beside them."""

import datetime as dt

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Organization
from asksage_admin.lib.amounts import MAX_TOKENS
from asksage_admin.lib.months import add_months

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
    """One recorded consumption reported by the gateway.

    On PostgreSQL the table is partitioned by UTC month of `created_at` (migration 0018,
    `tokens.partitions`): its primary key there is (id, created_at), and old months are
    dropped whole (`tokens.retention`). Its Idempotency-Key is claimed in `UsageEventKey`,
    whose unique key keeps a retry from being counted twice across partitions.
    """

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
        ]
        indexes = [
            models.Index(fields=["organization", "created_at"]),
            models.Index(fields=["user", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.tokens:,} {self.kind} tokens on {self.model}"


class UsageEventKey(models.Model):
    """The Idempotency-Key of a recent usage event, claimed once per organization and month.

    Why a table of its own: PostgreSQL requires the partition key in every unique index of a
    partitioned table, so the events' own unique (key, organization) index could only be
    unique within a month. Here the month is part of the key, and one rule covers the
    boundary: an event of a month's first UTC day also claims its key in the previous month,
    so a report of the 31st at 23:59 and its retry on the 1st collide on the previous month's
    row, even when both are in flight at once. A later retry is found by the lookup
    (`prior` in the usage statement, `sqlite.answer_replay`), which reads every month kept.

    The answer a retry replays is copied here (the event's id, time, body hash and balance),
    so the usage statement reads this small table only, never the events' partitions. Kept
    for the current and the previous month (`KEY_MONTHS`): partitions of their own on
    PostgreSQL, dropped whole with the events' maintenance. Written by a trigger on the
    events on PostgreSQL (whatever inserts the event: the statement, the ORM, COPY), by
    `tokens.usage_api.sqlite` on SQLite.
    """

    pk = models.CompositePrimaryKey("idempotency_key", "organization", "month")
    idempotency_key = models.CharField(max_length=200)
    # No constraint: the event's own foreign key vouches for it, and a check per report costs.
    organization = models.ForeignKey(
        Organization,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # the primary key holds it
        related_name="+",
    )
    month = models.DateField()
    id = models.BigIntegerField(help_text="The usage event's id.")
    created_at = models.DateTimeField()
    request_hash = models.CharField(max_length=64, blank=True)
    used_after = models.BigIntegerField(null=True, blank=True)
    max_after = models.BigIntegerField(null=True, blank=True)

    class Meta:
        db_table = "tokens_usagekey"

    def __str__(self) -> str:
        return f"{self.idempotency_key} ({self.month:%Y-%m})"

    @staticmethod
    def months_claimed(created_at: dt.datetime) -> list[dt.date]:
        """The months an event claims its key in (the trigger of migration 0018 does the same
        on PostgreSQL): its UTC month, and the previous one too on the month's first day."""
        day = created_at.astimezone(dt.UTC).date()
        first = day.replace(day=1)
        return [first, add_months(first, -1)] if day == first else [first]


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


ORG_DAILY_SHARDS = 4


class OrgDailyUsage(models.Model):
    """Tokens and events per organization, UTC day, kind and model: the sum of DailyUsage
    over the organization's users, so the statistics read a few hundred rows a year instead
    of one per user and day.

    Maintained in the same transaction as each recorded usage (both doors of the usage API),
    and equal to the sum of the usage events: `tokens.rollup.rollup_mismatches` checks it.

    A (organization, day, kind, model) may have a row per `shard`: every report of an
    organization updates the same few rows, and a row updated by one usage statement stays
    locked until that statement's commit is on disk, so concurrent statements queued behind
    each other (half of the statement's time under load was this wait). On PostgreSQL each
    connection writes its own shard (its backend's pid modulo ORG_DAILY_SHARDS); SQLite
    writes shard 0. Readers sum; `tokens.rollup.org_daily_usage_fold` folds the shards of
    days past into shard 0 each night.
    """

    # Indexed by the unique key below, which leads with it.
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    day = models.DateField()
    kind = models.CharField(max_length=10, choices=TokenKind)
    model = models.CharField(max_length=100)
    # No CHECK (a positive field has one): each constraint costs every usage statement.
    shard = models.SmallIntegerField(db_default=0)
    tokens = models.BigIntegerField(default=0)
    events = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            # Organization and day first: every statistics query is one organization's date
            # range, read from this index's range alone.
            models.UniqueConstraint(
                fields=["organization", "day", "kind", "model", "shard"],
                name="org_daily_usage_one_row_per_shard",
            ),
            models.CheckConstraint(
                condition=models.Q(tokens__gte=0, events__gte=0),
                name="org_daily_usage_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization_id} {self.kind} {self.model} {self.day}: {self.tokens:,}"


# --- End of the organization-level usage rollup ---------------------------------------------
