"""Auto-increase: after usage is recorded, the organization's policy may raise the
member's max and sends the month's usage alerts (once each).
"""

import datetime as dt

from django.db import transaction
from django.db.models import OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Membership, Organization, User
from accounts.services import organization_lock
from asksage_admin.lib.amounts import MAX_TOKENS
from asksage_admin.lib.months import current_month
from audit.services import audit_record
from tokens.alerts import alerts_once, pool_alert_check
from tokens.models import (
    DYNAMIC_MIN_STEP,
    DYNAMIC_TIERS,
    AlertSent,
    AllocationPolicy,
    MemberOverride,
    MonthlyUsage,
    Preset,
    StepMode,
    TokenKind,
    column_for_kind,
)
from tokens.selectors import default_policy, policy_for, unallocated
from tokens.services import emails, notifications
from tokens.services.allocations import apply_changes
from tokens.services.policy import member_bounds


def auto_increase_step(policy, *, current: int, used: int, ceiling: int | None, free: int) -> int:
    """How much the policy adds now (0: not triggered). Pure: no cap applied yet."""
    if not policy.auto_increase or current <= 0:
        return 0
    if policy.step_mode == StepMode.DYNAMIC:
        tiers = sum(1 for t in DYNAMIC_TIERS if used * 1000 >= t * current)
        if not tiers:
            return 0
        room = (ceiling - current) if ceiling is not None else free
        return max(room * 25 * tiers // 100, DYNAMIC_MIN_STEP)
    if used * 100 < policy.trigger_percent * current:
        return 0
    if policy.step_mode == StepMode.FIXED:
        return policy.step_value
    percent = policy.step_value
    if (
        policy.step_mode == StepMode.STANDARD
        and ceiling is not None
        and current * 10 >= ceiling * 9
    ):
        percent = 50
    return max(current * percent // 100, 1)


def _month_used(membership: Membership, kind: str) -> int:
    """What the member used this month in their organization (a member moved mid-month
    starts at zero in the new one)."""
    return (
        MonthlyUsage.objects.filter(
            organization_id=membership.organization_id,
            user_id=membership.user_id,
            kind=kind,
            month=current_month(),
        )
        .values_list("used", flat=True)
        .first()
        or 0
    )


def _auto_increase_locked(
    *, org: Organization, policy, membership: Membership, kind: str, now
) -> int | None:
    if membership.user.is_banned:
        return None  # a banned member's floor is 0: no policy gives them tokens back
    column = column_for_kind(kind)
    override = MemberOverride.objects.filter(user_id=membership.user_id).first()
    if override is not None and override.pinned:
        return None
    if override is not None:
        last = getattr(override, f"last_increase_{kind}_at")
        if last is not None and now - last < dt.timedelta(minutes=policy.cooldown_minutes):
            return None
    current = getattr(membership, column)
    used = _month_used(membership, kind)
    _floor, ceiling = member_bounds(policy, override, kind)
    free = unallocated(org, kind)
    step = auto_increase_step(policy, current=current, used=used, ceiling=ceiling, free=free)
    if not step:
        return None
    new = min(current + step, current + free, MAX_TOKENS)
    if ceiling is not None:
        new = min(new, ceiling)
    if new < org.floor(kind) <= current + free:
        # A member still below a newly raised floor is lifted to it, not left refused.
        new = org.floor(kind)
    if new <= current:
        return None
    result = apply_changes(
        actor=None,
        actor_label="policy",
        org=org,
        column=column,
        targets=[(membership.user, membership, current, new)],
        source="policy",
    )
    if not result.ok:
        return None
    if override is None:
        override = MemberOverride(organization=org, user_id=membership.user_id)
    setattr(override, f"last_increase_{kind}_at", now)
    override.save()
    setattr(membership, column, new)
    return new


def policy_marks(
    *, preset: str, step_mode: str, trigger_percent: int, alert_thresholds
) -> list[int]:
    """The usage percentages at which a policy acts: its alerts, and its trigger when it
    auto-increases. Plain values, so the usage API can decide without loading the policy."""
    marks = list(alert_thresholds or [])
    if preset != Preset.MANUAL:
        marks.append(75 if step_mode == StepMode.DYNAMIC else trigger_percent)
    return marks


def policy_marks_reached(marks: list[int], used: int, current: int) -> int:
    """How many of a policy's marks the usage reached: below all of them the policy has
    nothing to do."""
    if current <= 0:
        return 0
    return sum(1 for mark in marks if used * 100 >= mark * current)


def auto_increase_apply(*, user: User, kind: str) -> int | None:
    """Run the organization's auto-increase policy for one user and kind, after usage was
    recorded. Returns the user's new max, or None when nothing changed. Also sends the
    month's usage alerts.

    Called on every recorded usage, so the common case (below every trigger and threshold)
    costs one query and no transaction. Otherwise the organization row is locked: two usage
    records crossing the trigger at once raise the max once (the second sees the cooldown).
    """
    if kind not in TokenKind.values:
        return None
    month_used = MonthlyUsage.objects.filter(
        organization_id=OuterRef("organization_id"),
        user_id=OuterRef("user_id"),
        kind=kind,
        month=current_month(),
    ).values("used")[:1]
    membership = (
        Membership.objects.filter(user=user, organization__status=Organization.Status.ACTIVE)
        .select_related("organization", "organization__allocation_policy")
        .annotate(month_used=Coalesce(Subquery(month_used), Value(0)))
        .first()
    )
    if membership is None:
        return None
    try:
        policy = membership.organization.allocation_policy
    except AllocationPolicy.DoesNotExist:
        policy = default_policy(membership.organization)
    current = getattr(membership, column_for_kind(kind))
    marks = policy_marks(
        preset=policy.preset,
        step_mode=policy.step_mode,
        trigger_percent=policy.trigger_percent,
        alert_thresholds=policy.alert_thresholds,
    )
    if not policy_marks_reached(marks, membership.month_used, current):
        return None
    if not _policy_may_act(membership, policy, kind, current):
        return None
    return _auto_increase_locked_apply(membership=membership, kind=kind)


def _policy_may_act(membership: Membership, policy, kind: str, current: int) -> bool:
    """Without locking: could an increase or an unsent alert follow? Users past their
    trigger keep recording usage; most of those calls must not queue on the org row lock."""
    used = membership.month_used
    trigger = 75 if policy.step_mode == StepMode.DYNAMIC else policy.trigger_percent
    if policy.auto_increase and used * 100 >= trigger * current:
        override = MemberOverride.objects.filter(user_id=membership.user_id).first()
        last = getattr(override, f"last_increase_{kind}_at", None) if override else None
        pinned = override is not None and override.pinned
        cooling = last is not None and timezone.now() - last < dt.timedelta(
            minutes=policy.cooldown_minutes
        )
        if not pinned and not cooling:
            return True
    keys = [
        f"user:{membership.user_id}:{kind}:{t}"
        for t in policy.alert_thresholds or []
        if used * 100 >= t * current
    ]
    if not keys:
        return False
    sent = AlertSent.objects.filter(
        organization_id=membership.organization_id, month=current_month(), key__in=keys
    ).count()
    return sent < len(keys)


@transaction.atomic
def _auto_increase_locked_apply(*, membership: Membership, kind: str) -> int | None:
    org = organization_lock(membership.organization)
    policy = policy_for(org)
    membership = Membership.objects.select_related("user").get(pk=membership.pk)
    new = None
    if policy.auto_increase:
        new = _auto_increase_locked(
            org=org, policy=policy, membership=membership, kind=kind, now=timezone.now()
        )
    usage_alerts_check(org=org, policy=policy, membership=membership, kind=kind)
    return new


def auto_increase_run(*, org: Organization | None = None) -> list[tuple[str, str, int]]:
    """Apply auto-increase to every member at or above their trigger (the command and cron).

    Returns (email, kind, new max) for each increase.
    """
    done = []
    orgs = Organization.objects.filter(status=Organization.Status.ACTIVE)
    if org is not None:
        orgs = orgs.filter(pk=org.pk)
    month = current_month()
    for organization in orgs.order_by("pk"):
        # A purchase that ended lowers the pool at the month's turn, with no write to check
        # it: the periodic run does (once a month per pool, as after a write).
        for kind in TokenKind.values:
            with transaction.atomic():
                pool_alert_check(org=organization, kind=kind)
        if not policy_for(organization).auto_increase:
            continue
        rows = (
            MonthlyUsage.objects.filter(organization=organization, month=month, used__gt=0)
            .select_related("user")
            .order_by("user_id", "kind")
        )
        for row in rows:
            new = auto_increase_apply(user=row.user, kind=row.kind)
            if new is not None:
                done.append((row.user.email, row.kind, new))
    return done


def usage_alerts_check(*, org: Organization, policy, membership: Membership, kind: str) -> list:
    """Email the user and the admins when usage crosses a threshold: once per month each."""
    current = getattr(membership, column_for_kind(kind))
    if not current or not policy.alert_thresholds:
        return []
    used = _month_used(membership, kind)
    crossed = [t for t in policy.alert_thresholds if used * 100 >= t * current]
    keys = {f"user:{membership.user_id}:{kind}:{t}": t for t in crossed}
    fresh = [keys[key] for key in alerts_once(org, list(keys))]
    if not fresh:
        return []
    user = membership.user
    top = max(fresh)
    emails.usage_alert(org=org, user=user, kind=kind, top=top, used=used, current=current)
    notifications.usage_alert(
        org=org, user=user, kind=kind, top=top, used=used, current=current, month=current_month()
    )
    audit_record(
        action="alert.usage",
        organization=org,
        actor_label="policy",
        target_user=user,
        column=column_for_kind(kind),
        new=top,
        used=used,
        max=current,
    )
    return fresh
