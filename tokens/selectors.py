"""Reads about pools, allocations and usage."""

import datetime as dt
from dataclasses import dataclass

from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    F,
    FilteredRelation,
    Max,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from accounts.models import Membership, Organization, User
from accounts.sign_in import second_factor, sign_in_method
from asksage_admin.lib.months import current_month, previous_month
from tokens.model_selectors import models_allowed_for
from tokens.models import (
    COLUMN_LABELS,
    DYNAMIC_MIN_STEP,
    KIND_HELP,
    MAX_COLUMNS,
    PRESETS,
    AllocationPolicy,
    ApiKey,
    DailyUsage,
    Invitation,
    MemberOverride,
    MonthlyUsage,
    Notification,
    PendingEdit,
    Preset,
    Purchase,
    PurchaseRequest,
    StepMode,
    TokenKind,
    TokenRequest,
    column_for_kind,
)


def active_purchases(org: Organization, month: dt.date):
    return Purchase.objects.filter(organization=org, start_month__lte=month).filter(
        Q(end_month__isnull=True) | Q(end_month__gte=month)
    )


def pools(org: Organization, month: dt.date | None = None) -> dict[str, int]:
    """Purchased tokens per kind for a month: the sum of the purchases active then."""
    month = month or current_month()
    rows = active_purchases(org, month).values("kind").annotate(total=Sum("tokens_per_month"))
    result = dict.fromkeys(TokenKind.values, 0)
    result.update({row["kind"]: row["total"] for row in rows})
    return result


def allocated(org: Organization) -> dict[str, int]:
    totals = Membership.objects.filter(organization=org).aggregate(
        **{kind: Sum(column) for column, kind in MAX_COLUMNS.items()}
    )
    return {kind: totals[kind] or 0 for kind in TokenKind.values}


def unallocated(org: Organization, kind: str) -> int:
    return max(pools(org)[kind] - allocated(org)[kind], 0)


def used_this_month(org: Organization) -> dict[str, int]:
    rows = (
        MonthlyUsage.objects.filter(organization=org, month=current_month())
        .values("kind")
        .annotate(total=Sum("used"))
    )
    result = dict.fromkeys(TokenKind.values, 0)
    result.update({row["kind"]: row["total"] for row in rows})
    return result


@dataclass(frozen=True)
class PoolStatus:
    kind: str
    purchased: int
    allocated: int
    used: int = 0
    pending_delta: int = 0

    @property
    def label(self) -> str:
        return TokenKind(self.kind).label

    @property
    def column(self) -> str:
        return column_for_kind(self.kind)

    @property
    def available(self) -> int:
        return max(self.purchased - self.allocated, 0)

    @property
    def available_after(self) -> int:
        """Unallocated once the admin's pending edits are saved (negative: over the pool)."""
        return self.purchased - self.allocated - self.pending_delta

    @property
    def allocated_percent(self) -> int:
        return min(round(100 * self.allocated / self.purchased), 100) if self.purchased else 0


def pool_statuses(
    org: Organization, pending_delta: dict[str, int] | None = None, with_used: bool = False
) -> list[PoolStatus]:
    purchased = pools(org)
    alloc = allocated(org)
    used = used_this_month(org) if with_used else {}
    pending_delta = pending_delta or {}
    return [
        PoolStatus(
            kind=kind,
            purchased=purchased[kind],
            allocated=alloc[kind],
            used=used.get(kind, 0),
            pending_delta=pending_delta.get(kind, 0),
        )
        for kind in TokenKind.values
    ]


def user_table_rows(org: Organization):
    """The organization's users with this and last month's usage and their lifetime total.

    Month columns are LEFT JOINs on MonthlyUsage's unique (user, kind, month, organization)
    index, so a page costs one query whatever the sort, and sorting stays a single indexed
    plan. The lifetime total is the membership's maintained `total_used` (kept by the usage
    API in the recording transaction), so sorting by it sorts one column, not a sum per user
    (unindexed on purpose: each report's update of it stays HOT, see accounts 0011).
    Only usage recorded in this organization counts: a member who moved here from another
    organization brings none of it.
    """
    cur, prev = current_month(), previous_month()

    def usage(kind: str, month: dt.date) -> FilteredRelation:
        return FilteredRelation(
            "monthly_usage",
            condition=Q(
                monthly_usage__kind=kind,
                monthly_usage__month=month,
                monthly_usage__organization=org,
            ),
        )

    return (
        User.objects.filter(membership__organization=org)
        .select_related("membership")
        .annotate(
            u_inf=usage("inference", cur),
            u_inf_prev=usage("inference", prev),
            u_emb=usage("embedding", cur),
        )
        .annotate(
            inf_used=Coalesce(F("u_inf__used"), Value(0)),
            inf_prev=Coalesce(F("u_inf_prev__used"), Value(0)),
            emb_used=Coalesce(F("u_emb__used"), Value(0)),
            total_used=F("membership__total_used"),
            sign_in=sign_in_method(),
            second_factor=second_factor(),
        )
    )


def members_first_by_total_used(org: Organization, *, descending: bool, first: int):
    """The user ids of the organization's first `first` members in the order of "Total
    usage" (ties by user, as the table breaks them), as a subquery for the table to read its
    page among.

    `total_used` is unindexed so each report's update of it stays HOT (accounts 0011). Sorted
    in the table's own query, the LIMIT sits above the month joins: PostgreSQL sorted every
    membership row whole (100,000 of them spilled 4.6 MB to disk, 32 ms). Here the LIMIT sits
    right above the sort of this one table: a top-N heapsort of narrow rows (15 ms), and the
    table's query then joins and sorts `first` rows.
    """
    order = ("-total_used", "-user_id") if descending else ("total_used", "user_id")
    return Membership.objects.filter(organization=org).order_by(*order).values("user_id")[:first]


def member_count(org: Organization) -> int:
    """The organization's members: the user table's count when nothing filters it, from
    the membership indexes alone (counting the table's own rows joins every user)."""
    return Membership.objects.filter(organization=org).count()


def open_invitations(org: Organization, limit: int = 100) -> list[Invitation]:
    """Invitations neither accepted nor revoked (pending or expired), newest first."""
    return list(
        Invitation.objects.filter(
            organization=org, accepted_at__isnull=True, revoked_at__isnull=True
        )
        .select_related("invited_by")
        .order_by("-sent_at", "-pk")[:limit]
    )


def pending_edits_for(admin, org: Organization, user_ids: list[int]) -> dict:
    """The admin's pending edits on the given rows, keyed by (user id, column)."""
    edits = PendingEdit.objects.filter(admin=admin, organization=org, target_id__in=user_ids)
    return {(e.target_id, e.column): e for e in edits}


@dataclass(frozen=True)
class PendingColumn:
    column: str
    label: str
    count: int
    errors: int
    signature: str


def batch_signature(count: int, last_id: int | None, last_change) -> str:
    """A fingerprint of a pending batch: a save posts the one its button was shown with.

    Any edit, addition or removal changes it, so a replayed or stale Save (a double click,
    an old tab) cannot save a different set than the admin saw.
    """
    stamp = last_change.isoformat() if last_change else "-"
    return f"{count}.{last_id or 0}.{stamp}"


def pending_summary(admin, org: Organization) -> tuple[list[PendingColumn], dict[str, int]]:
    """Per column: how many pending edits (and failed ones); per kind: what saving would add.

    One query whatever the number of pending edits.
    """
    current = Case(
        *[When(column=column, then=F(f"target__membership__{column}")) for column in MAX_COLUMNS],
        output_field=BigIntegerField(),
    )
    rows = (
        PendingEdit.objects.filter(admin=admin, organization=org)
        .values("column")
        .annotate(
            count=Count("id"),
            errors=Count("id", filter=~Q(error="")),
            delta=Sum(F("new_value") - Coalesce(current, F("old_value"))),
            last_id=Max("id"),
            last_change=Max("created_at"),
        )
        .order_by("column")
    )
    by_column = {row["column"]: row for row in rows}
    columns, delta = [], {}
    for column, kind in MAX_COLUMNS.items():
        row = by_column.get(column)
        if not row:
            continue
        delta[kind] = row["delta"] or 0
        signature = batch_signature(row["count"], row["last_id"], row["last_change"])
        columns.append(
            PendingColumn(column, COLUMN_LABELS[column], row["count"], row["errors"], signature)
        )
    return columns, delta


# --- Policies, requests, distribution -----------------------------------------------------


def policy_for(org: Organization):
    """The organization's allocation policy; an unsaved Manual one when it never chose one."""

    policy = AllocationPolicy.objects.filter(organization=org).first()
    return policy if policy is not None else default_policy(org)


# The usage alerts of an organization that never chose a policy.
DEFAULT_ALERT_THRESHOLDS = (80, 95)


def default_policy(org: Organization) -> AllocationPolicy:
    """Manual (no auto-increase), the organization's floors, alerts at 80 % and 95 %."""
    return AllocationPolicy(
        organization=org,
        floor_inference=org.min_inference_tokens,
        floor_embedding=org.min_embedding_tokens,
        alert_thresholds=list(DEFAULT_ALERT_THRESHOLDS),
    )


def pending_request_count(org: Organization) -> int:

    return TokenRequest.objects.filter(organization=org, status="pending").count()


REQUEST_TABS = {
    "pending": "Pending",
    "approved": "Approved",
    "denied": "Denied",
    "all": "All",
}


def token_requests(org: Organization, tab: str):
    """One tab of the requests page: pending oldest first, decisions newest first."""

    rows = TokenRequest.objects.filter(organization=org).select_related("user", "decided_by")
    if tab == "pending":
        return rows.filter(status="pending").order_by("created_at", "pk")
    if tab in {"approved", "denied"}:
        return rows.filter(status=tab).order_by("-decided_at", "-pk")
    return rows.order_by("-created_at", "-pk")


def member_requests(user: User, limit: int = 20):

    return TokenRequest.objects.filter(user=user).order_by("-created_at", "-pk")[:limit]


def member_overrides(org: Organization):

    return (
        MemberOverride.objects.filter(organization=org)
        .select_related("user")
        .filter(
            Q(pinned=True)
            | Q(floor_inference__isnull=False)
            | Q(ceiling_inference__isnull=False)
            | Q(floor_embedding__isnull=False)
            | Q(ceiling_embedding__isnull=False)
        )
        .order_by("user__name", "user_id")
    )


def open_purchase_requests(org: Organization):

    return PurchaseRequest.objects.filter(organization=org).order_by("-created_at")[:10]


def preset_rows() -> list[dict]:
    """The SPEC's preset table, for the page: one row of readable settings per preset."""

    def step(settings: dict) -> str:
        mode, value = settings["step_mode"], settings["step_value"]
        if mode == StepMode.PERCENT:
            return f"+{value} % of current max"
        if mode == StepMode.FIXED:
            return f"+{value:,}"
        if mode == StepMode.STANDARD:
            return "+25 % (+50 % within 10 % of ceiling)"
        return f"+25 % of what remains to the ceiling per tier, at least +{DYNAMIC_MIN_STEP:,}"

    rows = []
    for preset, settings in PRESETS.items():
        trigger = (
            "75 %, 90 %, 99.9 % tiers"
            if settings["step_mode"] == StepMode.DYNAMIC
            else f"{settings['trigger_percent']} %"
        )
        cooldown = settings["cooldown_minutes"]
        rows.append(
            {
                "value": preset,
                "label": Preset(preset).label,
                "floor": f"{settings['floor_inference']:,} / {settings['floor_embedding']:,}",
                "ceiling": f"{settings['ceiling']:,}" if settings["ceiling"] else "none",
                "trigger": trigger,
                "cooldown": f"{cooldown // 60} h" if cooldown % 60 == 0 else f"{cooldown} min",
                "step": step(settings),
            }
        )
    return rows


# --- The member's home page -------------------------------------------------------------


def member_home(user: User, membership: Membership | None) -> dict:
    """Per kind: this month's max, used, remaining, the previous month and the total, in the
    member's organization (usage recorded under an organization they left stays there)."""
    cur, prev = current_month(), previous_month()
    org_id = membership.organization_id if membership else None
    rows = MonthlyUsage.objects.filter(user=user, organization_id=org_id).values(
        "kind", "month", "used"
    )
    totals = dict.fromkeys(TokenKind.values, 0)
    by_month: dict[tuple[str, object], int] = {}
    for row in rows:
        totals[row["kind"]] += row["used"]
        by_month[(row["kind"], row["month"])] = row["used"]
    kinds = []
    for kind in TokenKind:
        limit = getattr(membership, column_for_kind(kind), 0) if membership else 0
        used = by_month.get((kind.value, cur), 0)
        kinds.append(
            {
                "kind": kind.value,
                "label": kind.label,
                "help": KIND_HELP[kind],
                "max": limit,
                "used": used,
                "remaining": max(limit - used, 0),
                "percent": min(round(100 * used / limit), 100) if limit else 0,
                "previous": by_month.get((kind.value, prev), 0),
                "total": totals[kind.value],
            }
        )
    return {
        "membership": membership,
        "org": membership.organization if membership else None,
        "kinds": kinds,
    }


@dataclass
class MemberUsage:
    """The member's own usage over a period: every day (zeros included), per model, per kind."""

    start: dt.date
    end: dt.date
    by_day: dict[dt.date, dict[str, int]]
    by_model: list[dict]
    by_kind: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())

    @property
    def used_days(self) -> list[dict]:
        """The days with usage, newest first, for the table under the chart."""
        return [
            {"day": day, **kinds, "total": sum(kinds.values())}
            for day, kinds in reversed(self.by_day.items())
            if any(kinds.values())
        ]


def member_usage(
    user: User, membership: Membership | None, start: dt.date, end: dt.date
) -> MemberUsage:
    """The member's DailyUsage rows in [start, end] (UTC days), in their current organization
    only, as `member_home` counts: one query, however long the period."""
    span = (end - start).days + 1
    by_day = {start + dt.timedelta(days=n): dict.fromkeys(TokenKind.values, 0) for n in range(span)}
    by_kind = dict.fromkeys(TokenKind.values, 0)
    models: dict[tuple[str, str], dict] = {}
    rows = DailyUsage.objects.none()
    if membership is not None:
        rows = DailyUsage.objects.filter(
            user=user, organization_id=membership.organization_id, day__range=(start, end)
        ).values_list("day", "kind", "model", "tokens", "events")
    for day, kind, model, tokens, events in rows:
        by_day[day][kind] += tokens
        by_kind[kind] += tokens
        entry = models.setdefault(
            (model, kind), {"model": model, "kind": kind, "tokens": 0, "events": 0}
        )
        entry["tokens"] += tokens
        entry["events"] += events
    by_model = sorted(models.values(), key=lambda m: (-m["tokens"], m["model"], m["kind"]))
    for entry in by_model:
        entry["kind_label"] = TokenKind(entry["kind"]).label
    return MemberUsage(start, end, by_day, by_model, by_kind)


def lifetime_usage(user: User) -> int:
    return MonthlyUsage.objects.filter(user=user).aggregate(total=Sum("used"))["total"] or 0


def api_keys_for(org: Organization):
    """The organization's keys for the panel: active first, newest first."""
    return (
        ApiKey.objects.filter(organization=org)
        .select_related("created_by", "revoked_by")
        .order_by("revoked_at", "-created_at")
    )


def unread_notification_count(user: User) -> int:
    """The bell's number: one COUNT on the partial index of unread rows."""
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


def notifications_for(user: User, limit: int = 50):
    """The user's latest notifications, newest first (only theirs, whatever is asked)."""
    return Notification.objects.filter(recipient=user).order_by("-created_at", "-pk")[:limit]


def allowed_models_for(membership: Membership | None) -> list[dict] | None:
    """The models the member may call, for their home page; None while the organization has
    not narrowed its models (then every model is allowed, names outside the catalogue too)."""
    if membership is None or not membership.organization.models_restricted:
        return None
    return models_allowed_for(membership)
