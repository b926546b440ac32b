"""Allocation policies: the presets, an organization's policy, and per-user overrides."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Organization

from .kinds import TokenKind


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
