"""The allocation policy: presets and custom settings, alert and auto-approval options,
and per-user overrides (pinned, own floor or ceiling).
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, Organization, User
from accounts.services import organization_lock
from asksage_admin.lib.errors import DomainError
from audit.services import audit_record
from tokens.models import (
    PRESETS,
    AllocationPolicy,
    MemberOverride,
    Preset,
    StepMode,
    TokenKind,
)
from tokens.selectors import policy_for
from tokens.services._core import check_amount, platform_floor
from tokens.services.preset_floors import (
    floor_shortfall,
    floors_after,
    raise_to_floors,
    refuse_unaffordable,
)

POLICY_FIELDS = (
    "floor_inference",
    "floor_embedding",
    "ceiling",
    "trigger_percent",
    "cooldown_minutes",
    "step_mode",
    "step_value",
)
POLICY_LABELS = {
    "preset": "Preset",
    "floor_inference": "Floor (inference)",
    "floor_embedding": "Floor (embedding)",
    "ceiling": "Ceiling",
    "trigger_percent": "Auto-increase when used ≥ (%)",
    "cooldown_minutes": "Cooldown (minutes)",
    "step_mode": "Increase by",
    "step_value": "Step",
}


def _whole(value: object, field: str, label: str, low: int, high: int) -> int:
    """A parsed whole number that must be there and within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise DomainError(errors={field: [f"{label}: enter a whole number from {low} to {high}."]})
    return value


def _clean_custom_bounds(given: dict, values: dict, errors: dict[str, list[str]]) -> None:
    """Custom floors (at least the platform's) and ceiling (none, or at least the floors),
    checked from `given` into `values`; problems go into `errors` by field."""
    for kind in TokenKind.values:
        field = f"floor_{kind}"
        try:
            values[field] = check_amount(given.get(field), field, allow_zero=True)
        except DomainError as exc:
            errors.update(exc.errors)
            continue
        if values[field] < platform_floor(kind):
            errors[field] = [
                f"At least {platform_floor(kind):,}: the platform's minimum {kind} floor."
            ]
    values["ceiling"] = given.get("ceiling")
    if values["ceiling"] is not None:
        highest = max(values.get("floor_inference", 0), values.get("floor_embedding", 0))
        if values["ceiling"] < highest:
            errors["ceiling"] = [
                f"The ceiling ({values['ceiling']:,}) must be at least the floor ({highest:,})."
            ]


def policy_settings_clean(preset: str, given: dict | None = None) -> dict:
    """The settings a preset stands for; for Custom, the given ones (parsed by
    `tokens.forms.PresetForm`: amounts and whole numbers as ints, no ceiling as None), checked.

    Raises DomainError keyed by field: floors ≥ the platform's, ceiling ≥ floors, trigger
    1–100 %, positive step and cooldown.
    """
    if preset not in Preset.values:
        raise DomainError(errors={"preset": [f"“{str(preset)[:30]}” is not a preset."]})
    if preset in PRESETS:
        return dict(PRESETS[preset])
    if preset == Preset.MANUAL:
        return {}
    given = given or {}
    errors: dict[str, list[str]] = {}
    values: dict = {}
    _clean_custom_bounds(given, values, errors)
    for field, label, low, high in (
        ("trigger_percent", "Trigger", 1, 100),
        ("cooldown_minutes", "Cooldown", 1, 60 * 24 * 31),
    ):
        try:
            values[field] = _whole(given.get(field), field, label, low, high)
        except DomainError as exc:
            errors.update(exc.errors)
    mode = given.get("step_mode", "")
    if mode not in {StepMode.PERCENT, StepMode.FIXED}:
        errors["step_mode"] = ["Choose a percent of the current max or a fixed number of tokens."]
    else:
        values["step_mode"] = mode
        try:
            if mode == StepMode.PERCENT:
                values["step_value"] = _whole(
                    given.get("step_value"), "step_value", "Percent step", 1, 1000
                )
            else:
                values["step_value"] = check_amount(given.get("step_value"), "step_value")
        except DomainError as exc:
            errors.update(exc.errors)
    if errors:
        raise DomainError(errors=errors)
    return values


@dataclass
class PolicyPreview:
    preset: str
    settings: dict
    changes: list[tuple[str, str, str]]  # label, old, new
    below_floor: dict[str, int]  # kind → members below the new floor
    floor_cost: dict[str, int]  # kind → tokens to raise them to it
    unallocated: dict[str, int]
    floors: dict[str, int]  # kind → the organization's floor once applied

    @property
    def missing(self) -> dict[str, int]:
        """kind → tokens the unallocated pool lacks to raise everyone to the floor."""
        return {k: max(self.floor_cost[k] - self.unallocated[k], 0) for k in self.floor_cost}

    @property
    def blocked(self) -> bool:
        """The preset cannot be applied: someone would stay below the floor."""
        return any(self.missing.values())

    @property
    def raised(self) -> int:
        """Distinct members applying raises (a member below both floors counts once)."""
        return max(self.below_floor.values(), default=0)

    @property
    def shortfalls(self) -> list[dict]:
        """Per kind with members below the floor: what raising them costs and lacks."""
        return [
            {
                "kind": kind,
                "users": count,
                "floor": self.floors[kind],
                "cost": self.floor_cost[kind],
                "unallocated": self.unallocated[kind],
                "missing": self.missing[kind],
            }
            for kind, count in self.below_floor.items()
            if count
        ]


def _show(field: str, value) -> str:
    if value is None:
        return "none" if field == "ceiling" else "—"
    if field == "step_mode":
        return StepMode(value).label
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"  # "Step 500,000", never "Step 500000"
    return str(value)


def policy_preview(*, org: Organization, preset: str, given: dict | None = None) -> PolicyPreview:
    """What choosing a preset changes: settings old → new, who falls below the new floor,
    what raising them costs, and whether the unallocated pool can pay for it."""
    new = policy_settings_clean(preset, given)
    current = policy_for(org)
    if preset == Preset.MANUAL:
        new = {
            "floor_inference": org.min_inference_tokens,
            "floor_embedding": org.min_embedding_tokens,
        }
    changes = []
    if current.preset != preset:
        changes.append(
            (
                "Preset",
                Preset(current.preset).label if current.pk else "Manual",
                Preset(preset).label,
            )
        )
    for name, value in new.items():
        old = getattr(current, name)
        if old != value:
            changes.append((POLICY_LABELS[name], _show(name, old), _show(name, value)))
    floors = floors_after(org, preset, new)
    short = floor_shortfall(org, floors)
    return PolicyPreview(
        preset,
        new,
        changes,
        {kind: n for kind, (n, _c, _f) in short.items()},
        {kind: cost for kind, (_n, cost, _f) in short.items()},
        {kind: free for kind, (_n, _c, free) in short.items()},
        floors,
    )


@transaction.atomic
def policy_apply(
    *, admin: User, org: Organization, preset: str, given: dict | None = None, ip=None
) -> AllocationPolicy:
    """Choose a preset (or Custom settings). Its floors become the organization's minimums,
    and everyone below them is raised to them in the same transaction; when the unallocated
    pool cannot pay for that, nothing changes (DomainError saying how much is missing).

    Why not leave them below: every later edit of such a user is refused ("At least …")
    while the full pool can raise nobody, and only switching presets gets the admin out."""
    org = organization_lock(org)
    new = policy_settings_clean(preset, given)
    floors = floors_after(org, preset, new)
    refuse_unaffordable(preset, floor_shortfall(org, floors))
    policy = AllocationPolicy.objects.select_for_update().filter(organization=org).first()
    if policy is None:
        policy = policy_for(org)
    old = {f: getattr(policy, f) for f in ("preset", *POLICY_FIELDS)}
    policy.preset = preset
    for name, value in new.items():
        setattr(policy, name, value)
    policy.updated_at = timezone.now()
    policy.save()
    if preset != Preset.MANUAL and (
        org.min_inference_tokens != floors["inference"]
        or org.min_embedding_tokens != floors["embedding"]
    ):
        org.min_inference_tokens = floors["inference"]
        org.min_embedding_tokens = floors["embedding"]
        org.save(update_fields=["min_inference_tokens", "min_embedding_tokens"])
    policy.raised = raise_to_floors(admin=admin, org=org, floors=floors, ip=ip)
    changed = {
        name: [str(before), str(getattr(policy, name))]
        for name, before in old.items()
        if before != getattr(policy, name)
    }
    audit_record(
        action="policy.changed",
        organization=org,
        actor=admin,
        column="preset",
        old=old["preset"],
        new=preset,
        changes=changed,
        raised=policy.raised,
        ip=ip,
    )
    return policy


def _options_clean(
    *,
    thresholds: list[int],
    low_unallocated: int | None,
    auto_approve_enabled: bool,
    auto_approve_max: int | None,
    auto_approve_below_percent: int,
    reclaim_idle_days: int,
) -> dict:
    """The options (parsed by `tokens.forms.OptionsForm`) as policy field values, checked;
    DomainError keyed by field otherwise."""
    errors: dict[str, list[str]] = {}
    parsed: dict = {
        "auto_approve_enabled": bool(auto_approve_enabled),
        "low_unallocated_alert": None,
    }

    def keep(name: str, check: Callable[[], object]) -> None:
        try:
            parsed[name] = check()
        except DomainError as exc:
            errors.update(exc.errors)

    keep(
        "alert_thresholds",
        lambda: sorted({_whole(t, "thresholds", "Each threshold", 1, 100) for t in thresholds}),
    )
    if low_unallocated is not None:
        keep(
            "low_unallocated_alert",
            lambda: check_amount(low_unallocated, "low_unallocated", allow_zero=True),
        )
    keep(
        "auto_approve_max",
        lambda: check_amount(auto_approve_max or 0, "auto_approve_max", allow_zero=True),
    )
    keep(
        "auto_approve_below_percent",
        lambda: _whole(
            auto_approve_below_percent, "auto_approve_below_percent", "Pool share", 1, 100
        ),
    )
    keep(
        "reclaim_idle_days",
        lambda: _whole(reclaim_idle_days, "reclaim_idle_days", "Idle days", 1, 366),
    )
    if parsed["auto_approve_enabled"] and not parsed.get("auto_approve_max"):
        errors.setdefault("auto_approve_max", []).append(
            "Set the largest amount the rule approves on its own."
        )
    if errors:
        raise DomainError(errors=errors)
    return parsed


@transaction.atomic
def policy_options_update(
    *,
    admin: User,
    org: Organization,
    thresholds: list[int],
    low_unallocated: int | None,
    auto_approve_enabled: bool,
    auto_approve_max: int | None,
    auto_approve_below_percent: int,
    reclaim_idle_days: int,
    ip=None,
) -> AllocationPolicy:
    """Alerts, the auto-approval rule and reclamation's idle days."""
    org = organization_lock(org)
    parsed = _options_clean(
        thresholds=thresholds,
        low_unallocated=low_unallocated,
        auto_approve_enabled=auto_approve_enabled,
        auto_approve_max=auto_approve_max,
        auto_approve_below_percent=auto_approve_below_percent,
        reclaim_idle_days=reclaim_idle_days,
    )
    policy = AllocationPolicy.objects.select_for_update().filter(organization=org).first()
    if policy is None:
        policy = policy_for(org)
    changed = {}
    for name, value in parsed.items():
        if getattr(policy, name) != value:
            changed[name] = [str(getattr(policy, name)), str(value)]
            setattr(policy, name, value)
    policy.updated_at = timezone.now()
    policy.save()
    if changed:
        audit_record(action="policy.options", organization=org, actor=admin, changes=changed, ip=ip)
    return policy


@transaction.atomic
def member_override_set(
    *,
    admin: User,
    org: Organization,
    membership: Membership,
    pinned: bool,
    bounds: dict[str, int | None],
    ip=None,
) -> MemberOverride:
    """Pin a user (no auto-increase) or give them their own floor/ceiling per kind.

    `bounds`: floor_inference, ceiling_inference, floor_embedding, ceiling_embedding as
    parsed amounts (tokens.forms.OverrideForm); None or absent: no bound of their own."""
    org = organization_lock(org)
    if membership.organization_id != org.pk:
        raise DomainError("That user is not in your organization.")
    errors: dict[str, list[str]] = {}
    values: dict = {}
    for kind in TokenKind.values:
        for bound in ("floor", "ceiling"):
            field = f"{bound}_{kind}"
            values[field] = bounds.get(field)
            if values[field] is not None:
                try:
                    check_amount(values[field], field, allow_zero=True)
                except DomainError as exc:
                    errors.update(exc.errors)
                    values[field] = None
        floor, ceiling = values[f"floor_{kind}"], values[f"ceiling_{kind}"]
        if floor is not None and floor < org.floor(kind):
            errors[f"floor_{kind}"] = [
                f"At least {org.floor(kind):,}: the organization's {kind} floor."
            ]
        if floor is not None and ceiling is not None and ceiling < floor:
            errors[f"ceiling_{kind}"] = [
                f"The ceiling ({ceiling:,}) is below the floor ({floor:,})."
            ]
    if errors:
        raise DomainError(errors=errors)
    override, _ = MemberOverride.objects.select_for_update().get_or_create(
        user_id=membership.user_id, defaults={"organization": org}
    )
    before = {"pinned": override.pinned, **{f: getattr(override, f) for f in values}}
    override.pinned = bool(pinned)
    for field, value in values.items():
        setattr(override, field, value)
    override.save()
    after = {"pinned": override.pinned, **values}
    changed = {k: [str(before[k]), str(after[k])] for k in after if before[k] != after[k]}
    if changed:
        audit_record(
            action="policy.override",
            organization=org,
            actor=admin,
            target_user=membership.user,
            changes=changed,
            ip=ip,
        )
    return override


@transaction.atomic
def member_override_remove(*, admin: User, org: Organization, user_id: int, ip=None) -> User:
    """Remove a user's override: the organization's policy applies to them again."""
    org = organization_lock(org)
    override = (
        MemberOverride.objects.select_for_update()
        .select_related("user")
        .filter(organization=org, user_id=user_id)
        .first()
    )
    if override is None:
        raise DomainError("That user has no override (it may have been removed already).")
    before = {
        "pinned": override.pinned,
        **{
            f"{bound}_{kind}": getattr(override, f"{bound}_{kind}")
            for kind in TokenKind.values
            for bound in ("floor", "ceiling")
        },
    }
    user = override.user
    override.delete()
    audit_record(
        action="policy.override_removed",
        organization=org,
        actor=admin,
        target_user=user,
        changes={key: [str(value), "None"] for key, value in before.items() if value},
        ip=ip,
    )
    return user


def member_bounds(policy, override: MemberOverride | None, kind: str) -> tuple[int, int | None]:
    """(floor, ceiling) for one member and kind: their override, else the policy's."""
    floor = policy.floor(kind)
    ceiling = policy.ceiling
    if override is not None:
        floor = getattr(override, f"floor_{kind}") or floor
        own = getattr(override, f"ceiling_{kind}")
        ceiling = own if own is not None else ceiling
    return floor, ceiling
