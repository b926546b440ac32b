"""Token purchases (monthly pools), usage per month, usage events and pending edits."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Mod
from django.db.models.lookups import Exact
from django.utils import timezone

from accounts.models import Organization
from asksage_admin.lib.amounts import MAX_TOKENS

BLOCK = 2_000_000


class TokenKind(models.TextChoices):
    INFERENCE = "inference", "Inference"
    EMBEDDING = "embedding", "Embedding"


# The editable allocation columns of a membership, and the kind each one limits.
MAX_COLUMNS = {
    "max_inference_tokens": TokenKind.INFERENCE,
    "max_embedding_tokens": TokenKind.EMBEDDING,
}
COLUMN_LABELS = {
    "max_inference_tokens": "Max Inference Tokens",
    "max_embedding_tokens": "Max Embedding Tokens",
}
KIND_HELP = {
    TokenKind.INFERENCE: (
        "Inference tokens: prompts sent to models and the completions they return."
    ),
    TokenKind.EMBEDDING: (
        "Embedding tokens (formerly “train tokens”): used to build training datasets "
        "and ingest documents."
    ),
}


def column_for_kind(kind: str) -> str:
    return f"max_{kind}_tokens"


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


class PendingEdit(models.Model):
    """An admin's unsaved change to one allocation cell, kept on the server until saved.

    `old_value` is the value the admin edited from: saving refuses the cell if someone else
    changed it since.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    admin = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pending_edits"
    )
    target = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    column = models.CharField(max_length=30, choices=list(COLUMN_LABELS.items()))
    old_value = models.BigIntegerField()
    new_value = models.BigIntegerField()
    error = models.CharField(max_length=300, blank=True, help_text="Why the last save refused it.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["admin", "column", "target"], name="pending_edit_one_per_cell"
            ),
            models.CheckConstraint(
                condition=models.Q(new_value__gte=0, new_value__lte=MAX_TOKENS)
                & models.Q(old_value__gte=0, old_value__lte=MAX_TOKENS),
                name="pending_edit_values_in_range",
            ),
        ]
        indexes = [models.Index(fields=["admin", "organization", "column"])]

    def __str__(self) -> str:
        return f"{self.column} of user {self.target_id}: {self.old_value:,} → {self.new_value:,}"


class AllocationBatch(models.Model):
    """A saved set of allocation changes to one column; its audit rows carry its id."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    column = models.CharField(max_length=30)
    source = models.CharField(max_length=30, default="table")  # table, undo, distribution…
    changes = models.JSONField(default=list)  # [{"user": id, "old": n, "new": n}, …]
    undoes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="undone_by"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"batch {self.id} ({self.column}, {len(self.changes)} changes)"


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


class ApiKey(models.Model):
    """An organization's key for the usage API. Only a hash of the secret is stored."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="Shown to recognise the key.")
    key_hash = models.CharField(max_length=128, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["organization", "created_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


# --- Allocation policies, overrides, token requests, purchase requests, alerts -----------


class Preset(models.TextChoices):
    MANUAL = "manual", "Manual (no auto-increase)"
    CONSERVATIVE = "conservative", "Conservative"
    STANDARD = "standard", "Standard"
    AGGRESSIVE = "aggressive", "Aggressive"
    DYNAMIC = "dynamic", "Dynamic"
    CUSTOM = "custom", "Custom"


class StepMode(models.TextChoices):
    PERCENT = "percent", "Percent of the current max"
    FIXED = "fixed", "Fixed number of tokens"
    STANDARD = "standard", "+25 % (+50 % within 10 % of the ceiling)"
    DYNAMIC = "dynamic", "+25 % of what remains to the ceiling per tier, at least +100K"


# Dynamic's tiers (per mille of the user's max) and its minimum step.
DYNAMIC_TIERS = (750, 900, 999)
DYNAMIC_MIN_STEP = 100_000

# The SPEC's preset table. Manual keeps the organization's floors and never auto-increases.
PRESETS: dict[str, dict] = {
    Preset.CONSERVATIVE: {
        "floor_inference": 200_000,
        "floor_embedding": 200_000,
        "ceiling": 1_000_000,
        "trigger_percent": 90,
        "cooldown_minutes": 240,
        "step_mode": StepMode.PERCENT,
        "step_value": 25,
    },
    Preset.STANDARD: {
        "floor_inference": 500_000,
        "floor_embedding": 500_000,
        "ceiling": 5_000_000,
        "trigger_percent": 80,
        "cooldown_minutes": 60,
        "step_mode": StepMode.STANDARD,
        "step_value": 25,
    },
    Preset.AGGRESSIVE: {
        "floor_inference": 1_000_000,
        "floor_embedding": 1_000_000,
        "ceiling": None,
        "trigger_percent": 75,
        "cooldown_minutes": 30,
        "step_mode": StepMode.FIXED,
        "step_value": 500_000,
    },
    Preset.DYNAMIC: {
        "floor_inference": 500_000,
        "floor_embedding": 500_000,
        "ceiling": None,
        "trigger_percent": 75,
        "cooldown_minutes": 60,
        "step_mode": StepMode.DYNAMIC,
        "step_value": 25,
    },
}


class AllocationPolicy(models.Model):
    """An organization's allocation preset and its settings, alerts and auto-approval rule.

    Organizations without a row run the Manual policy (see `selectors.policy_for`).
    """

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="allocation_policy"
    )
    preset = models.CharField(max_length=20, choices=Preset, default=Preset.MANUAL)
    floor_inference = models.BigIntegerField(default=0)
    floor_embedding = models.BigIntegerField(default=0)
    ceiling = models.BigIntegerField(null=True, blank=True, help_text="Empty: no ceiling.")
    trigger_percent = models.PositiveSmallIntegerField(default=80)
    cooldown_minutes = models.PositiveIntegerField(default=60)
    step_mode = models.CharField(max_length=10, choices=StepMode, default=StepMode.PERCENT)
    step_value = models.BigIntegerField(default=25)
    reclaim_idle_days = models.PositiveIntegerField(default=30)
    alert_thresholds = models.JSONField(default=list)  # e.g. [80, 95]
    low_unallocated_alert = models.BigIntegerField(
        null=True, blank=True, help_text="Email the admins when unallocated drops below this."
    )
    auto_approve_enabled = models.BooleanField(default=False)
    auto_approve_max = models.BigIntegerField(default=0)
    auto_approve_below_percent = models.PositiveSmallIntegerField(default=50)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "allocation policies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(trigger_percent__gte=1, trigger_percent__lte=100),
                name="policy_trigger_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(ceiling__isnull=True)
                | (
                    models.Q(ceiling__gte=models.F("floor_inference"))
                    & models.Q(ceiling__gte=models.F("floor_embedding"))
                ),
                name="policy_ceiling_above_floor",
            ),
            models.CheckConstraint(
                condition=models.Q(step_value__gt=0, cooldown_minutes__gt=0),
                name="policy_step_cooldown_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization}: {self.get_preset_display()}"

    def floor(self, kind: str) -> int:
        return self.floor_inference if kind == TokenKind.INFERENCE else self.floor_embedding

    @property
    def auto_increase(self) -> bool:
        return self.preset != Preset.MANUAL


class MemberOverride(models.Model):
    """A user's exceptions to the policy: pinned (no auto-increase) or their own floor/ceiling.

    Also remembers each kind's last auto-increase, for the cooldown.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="token_override"
    )
    pinned = models.BooleanField(default=False)
    floor_inference = models.BigIntegerField(null=True, blank=True)
    ceiling_inference = models.BigIntegerField(null=True, blank=True)
    floor_embedding = models.BigIntegerField(null=True, blank=True)
    ceiling_embedding = models.BigIntegerField(null=True, blank=True)
    last_increase_inference_at = models.DateTimeField(null=True, blank=True)
    last_increase_embedding_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "pinned"])]

    def __str__(self) -> str:
        return f"override for user {self.user_id}"

    @property
    def is_set(self) -> bool:
        return self.pinned or any(
            v is not None
            for v in (
                self.floor_inference,
                self.ceiling_inference,
                self.floor_embedding,
                self.ceiling_embedding,
            )
        )


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


class AlertSent(models.Model):
    """An alert already emailed this month, so each threshold fires once per month."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    month = models.DateField()
    key = models.CharField(max_length=60)  # "user:<id>:<kind>:<threshold>" or "pool:<kind>"
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "month", "key"], name="alert_once")
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.month:%Y-%m}"


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
