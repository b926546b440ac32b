"""Distribution actions (split, set, top up, floor) and reclamation of idle members'
unused allocation: each a dry-run plan, then one validated, audited batch.
"""

import datetime as dt
import hashlib
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Exists, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Membership, Organization, User
from accounts.services import organization_lock
from asksage_admin.lib.amounts import MAX_TOKENS
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.months import current_month
from audit.services import audit_record
from tokens.models import DailyUsage, MemberOverride, MonthlyUsage, column_for_kind
from tokens.selectors import allocated, policy_for, pools
from tokens.services._core import check_amount, check_kind
from tokens.services.allocations import BatchResult, apply_or_reject, upsert_pending_edits
from tokens.services.policy import member_bounds

DISTRIBUTION_ACTIONS = {
    "split": "Split the unallocated pool equally",
    "set": "Set everyone to N",
    "topup": "Top up everyone below N to N",
    "floor": "Apply the preset's floor",
}


@dataclass
class Plan:
    """A dry run: who gets what and the pool after. `signature` ties an apply to it."""

    action: str
    kind: str
    rows: list[tuple[User, Membership, int, int]]
    purchased: int
    allocated: int
    amount: int | None = None
    banned_left_out: int = 0  # members the plan skips: banned, they cannot use tokens

    @property
    def delta(self) -> int:
        return sum(new - old for _u, _m, old, new in self.rows)

    @property
    def unallocated_before(self) -> int:
        return max(self.purchased - self.allocated, 0)

    @property
    def unallocated_after(self) -> int:
        return self.purchased - self.allocated - self.delta

    @property
    def signature(self) -> str:
        digest = hashlib.sha256(
            ";".join(f"{u.pk}:{old}:{new}" for u, _m, old, new in self.rows).encode()
        ).hexdigest()[:16]
        return f"{self.action}.{self.kind}.{len(self.rows)}.{digest}"

    @property
    def label(self) -> str:
        return DISTRIBUTION_ACTIONS.get(self.action, "Reclaim idle allocations")

    @property
    def left_out_note(self) -> str:
        n = self.banned_left_out
        if not n:
            return ""
        return f"{n} banned member{'s' * (n != 1)} {'are' if n != 1 else 'is'} left out."

    @property
    def shown_rows(self) -> list[dict]:
        """The first 100 rows, for the preview table."""
        return [
            {"email": u.email, "old": old, "new": new, "change": new - old}
            for u, _m, old, new in self.rows[:100]
        ]


def _plan_members(org: Organization, user_ids: list[int] | None) -> tuple[list[Membership], int]:
    """The chosen members (all when none chosen) but the banned ones, and how many those are."""
    members = Membership.objects.filter(organization=org).select_related("user").order_by("user_id")
    if user_ids:
        members = members.filter(user_id__in=user_ids)
    members = list(members)
    if user_ids and not members:
        raise DomainError(errors={"users": ["None of the chosen users is in your organization."]})
    banned = sum(m.user.is_banned for m in members)
    members = [m for m in members if not m.user.is_banned]
    if not members:
        why = f": the {banned} chosen are banned and cannot use tokens" if banned else ""
        raise DomainError(f"There is nobody to distribute tokens to{why}.")
    return members, banned


def distribution_plan(
    *,
    org: Organization,
    kind: str,
    action: str,
    amount: int | None = None,
    user_ids: list[int] | None = None,
) -> Plan:
    """Compute a distribution action without writing anything.

    split: the unallocated pool divided equally among the chosen users (all when none
    chosen); the remainder goes one token each to the first users by id, so the total never
    exceeds the pool and the same inputs always give the same plan.

    Every action skips banned members, chosen or not: their floor is 0 and they cannot use
    tokens (a split would strand a share on them). The plan counts them for the preview.
    """
    check_kind(kind)
    if action not in DISTRIBUTION_ACTIONS:
        raise DomainError(errors={"action": ["Choose one of the distribution actions."]})
    column = column_for_kind(kind)
    members, banned = _plan_members(org, user_ids)
    purchased, total = pools(org)[kind], allocated(org)[kind]
    rows: list[tuple[User, Membership, int, int]] = []
    if action not in {"set", "topup"}:
        amount = None  # split and floor take no amount: the plan must not show one
    if action == "split":
        free = max(purchased - total, 0)
        if free == 0:
            raise DomainError(f"There are no unallocated {kind} tokens to split.")
        share, remainder = divmod(free, len(members))
        for index, m in enumerate(members):
            extra = share + (1 if index < remainder else 0)
            current = getattr(m, column)
            if extra:
                rows.append((m.user, m, current, min(current + extra, MAX_TOKENS)))
    elif action in {"set", "topup"}:
        check_amount(amount)
        if amount < org.floor(kind):
            raise DomainError(
                errors={"amount": [f"At least {org.floor(kind):,}: the organization's floor."]}
            )
        for m in members:
            current = getattr(m, column)
            if current != amount and (action == "set" or current < amount):
                rows.append((m.user, m, current, amount))
    else:  # floor
        policy = policy_for(org)
        overrides = {o.user_id: o for o in MemberOverride.objects.filter(organization=org)}
        for m in members:
            floor = max(member_bounds(policy, overrides.get(m.user_id), kind)[0], org.floor(kind))
            current = getattr(m, column)
            if current < floor:
                rows.append((m.user, m, current, floor))
    return Plan(action, kind, rows, purchased, total, amount, banned_left_out=banned)


def _plan_errors(plan: Plan) -> None:
    if not plan.rows:
        raise DomainError("Nothing would change: every chosen user already has that amount.")
    if plan.unallocated_after < 0:
        raise DomainError(
            f"This would exceed the {plan.kind} pool by {-plan.unallocated_after:,}: only "
            f"{plan.unallocated_before:,} are unallocated and it needs {plan.delta:,}."
        )


@transaction.atomic
def distribution_apply(
    *,
    admin: User,
    org: Organization,
    kind: str,
    action: str,
    amount: int | None = None,
    user_ids: list[int] | None = None,
    signature: str | None = None,
    ip=None,
) -> BatchResult:
    """Run a previewed distribution action as one validated, audited batch.

    With `signature`, refuses when the plan differs from the previewed one (someone changed
    an allocation meanwhile): the admin previews again instead of applying a surprise.
    """
    org = organization_lock(org)
    plan = distribution_plan(org=org, kind=kind, action=action, amount=amount, user_ids=user_ids)
    _check_signature(
        signature,
        plan,
        missing="Preview the action first: nothing was applied.",
        changed="Allocations changed since this preview: nothing was applied. Preview again.",
    )
    _plan_errors(plan)
    return _apply_plan(
        plan,
        org=org,
        admin=admin,
        refusal="Nothing was applied: ",
        source="distribution",
        audit_action="distribution.applied",
        audit_extra={"new": plan.delta, "action_name": action},
        ip=ip,
    )


def _check_signature(signature: str | None, plan: Plan, missing: str, changed: str) -> None:
    """Apply exactly what was previewed: with a `signature` (the preview's), a plan that
    differs since (someone changed an allocation meanwhile) is refused, not applied."""
    if signature == "":
        raise DomainError(missing)
    if signature is not None and signature != plan.signature:
        raise DomainError(changed)


def _apply_plan(
    plan: Plan,
    *,
    org: Organization,
    admin: User | None,
    refusal: str,
    source: str,
    audit_action: str,
    audit_extra: dict,
    ip,
) -> BatchResult:
    """The tail every plan shares: one validated allocation batch, then its audit row (in
    the caller's transaction). Without an admin the policy acted (scheduled reclamation)."""
    label = "" if admin else "policy"
    column = column_for_kind(plan.kind)
    result = apply_or_reject(
        refusal,
        actor=admin,
        actor_label=label,
        org=org,
        column=column,
        targets=plan.rows,
        source=source,
        ip=ip,
    )
    audit_record(
        action=audit_action,
        organization=org,
        actor=admin,
        actor_label=label,
        column=column,
        batch_id=result.batch.id,
        users=len(plan.rows),
        ip=ip,
        **audit_extra,
    )
    return result


@transaction.atomic
def distribution_to_pending(
    *,
    admin: User,
    org: Organization,
    kind: str,
    action: str,
    amount: int | None = None,
    user_ids: list[int] | None = None,
) -> int:
    """Turn a distribution plan into the admin's pending edits, to review and save in User
    Management (where saving validates the pool again). Returns the number of edits."""
    plan = distribution_plan(org=org, kind=kind, action=action, amount=amount, user_ids=user_ids)
    if not plan.rows:
        raise DomainError("Nothing would change: every chosen user already has that amount.")
    return upsert_pending_edits(
        admin=admin,
        org=org,
        column=column_for_kind(kind),
        rows=[(user.pk, current, new) for user, _m, current, new in plan.rows],
        keep_old=False,
    )


def reclaim_plan(*, org: Organization, kind: str, idle_days: int | None = None) -> Plan:
    """Unused allocation above each idle member's floor, back to the pool (a dry run).

    Idle: no usage of any kind for `idle_days` (the policy's setting by default) and joined
    before that. Each keeps max(floor, used this month).
    """
    check_kind(kind)
    policy = policy_for(org)
    days = idle_days if idle_days is not None else policy.reclaim_idle_days
    if days < 1:
        raise DomainError(errors={"idle_days": ["Idle days must be at least 1."]})
    since = timezone.now() - dt.timedelta(days=days)
    column = column_for_kind(kind)
    recent = DailyUsage.objects.filter(
        organization=org, user_id=OuterRef("user_id"), day__gte=since.date()
    )
    used = MonthlyUsage.objects.filter(
        organization=org, user_id=OuterRef("user_id"), kind=kind, month=current_month()
    ).values("used")[:1]
    members = (
        Membership.objects.filter(organization=org, joined_at__lt=since)
        .exclude(Exists(recent))
        .annotate(month_used=Coalesce(Subquery(used), Value(0)))
        .select_related("user")
        .order_by("user_id")
    )
    overrides = {o.user_id: o for o in MemberOverride.objects.filter(organization=org)}
    rows = []
    for m in members:
        floor, _ = member_bounds(policy, overrides.get(m.user_id), kind)
        keep = max(floor, org.floor(kind), m.month_used)
        current = getattr(m, column)
        if current > keep:
            rows.append((m.user, m, current, keep))
    return Plan("reclaim", kind, rows, pools(org)[kind], allocated(org)[kind])


@transaction.atomic
def reclaim_apply(
    *,
    admin: User | None,
    org: Organization,
    kind: str,
    idle_days: int | None = None,
    signature: str | None = None,
    ip=None,
) -> BatchResult:
    org = organization_lock(org)
    plan = reclaim_plan(org=org, kind=kind, idle_days=idle_days)
    _check_signature(
        signature,
        plan,
        missing="Preview the reclamation first: nothing was reclaimed.",
        changed="Allocations changed since this preview: nothing was reclaimed.",
    )
    if not plan.rows:
        raise DomainError(f"No idle member has unused {kind} tokens above their floor.")
    return _apply_plan(
        plan,
        org=org,
        admin=admin,
        refusal="Nothing was reclaimed: ",
        source="reclaim",
        audit_action="reclaim.applied",
        audit_extra={"new": -plan.delta},
        ip=ip,
    )
