"""Writes about allocations: pending edits, batch saves, undo, bulk edits.

Every allocation write locks the organization row first, so two admins saving at once are
serialized and cannot both pass the pool check.
"""

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import AUDITOR_READ_ONLY, Membership, Organization, User
from accounts.services import organization_lock
from asksage_admin.lib.amounts import MAX_TOKENS, AmountError, parse_tokens
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.inputs import InputError, parse_whole
from asksage_admin.lib.months import current_month
from audit.models import AuditLog
from audit.services import audit_bulk, audit_record
from tokens.alerts import (
    admin_emails,
    alerts_once,
    email_later,
    pool_alert_after_commit,
    pool_alert_check,
)
from tokens.models import (
    COLUMN_LABELS,
    DYNAMIC_MIN_STEP,
    DYNAMIC_TIERS,
    MAX_COLUMNS,
    PRESETS,
    AlertSent,
    AllocationBatch,
    AllocationPolicy,
    DailyUsage,
    MemberOverride,
    MonthlyUsage,
    PendingEdit,
    Preset,
    PurchaseRequest,
    StepMode,
    TokenKind,
    TokenRequest,
    column_for_kind,
)
from tokens.selectors import (
    allocated,
    batch_signature,
    default_policy,
    policy_for,
    pools,
    unallocated,
    used_this_month,
)


def check_column(column: str) -> str:
    if column not in MAX_COLUMNS:
        raise DomainError(f"“{column[:40]}” is not an editable column.")
    return column


def validate_amount(org: Organization, column: str, raw: object) -> int:
    """Parse a typed amount and check it against the organization's floor for the column."""
    try:
        value = parse_tokens(raw)
    except AmountError as exc:
        raise DomainError(errors={"value": [str(exc)]}) from exc
    floor = org.floor(MAX_COLUMNS[column])
    if value < floor:
        raise DomainError(
            errors={"value": [f"At least {floor:,}: the organization's minimum per user."]}
        )
    return value


@transaction.atomic
def pending_edit_set(
    *,
    admin: User,
    org: Organization,
    membership: Membership,
    column: str,
    raw_value: object,
    seen_value: int | None = None,
) -> PendingEdit | None:
    """Record (or clear) an admin's unsaved change to one cell.

    `seen_value` is the stored value the admin's table showed when they started editing; it
    becomes the edit's `old_value` so a save notices if someone else changed the cell since.
    Returns None when the new value equals the stored one (nothing pending).
    The target's row is locked: the same cell confirmed twice at once (a double Enter, two
    tabs) updates one pending edit instead of racing to create two.
    """
    check_column(column)
    value = validate_amount(org, column, raw_value)
    with transaction.atomic():
        locked = (
            Membership.objects.select_for_update(no_key=True)
            .filter(pk=membership.pk, organization=org)
            .first()
        )
        if locked is None:
            raise DomainError("This user is no longer in your organization.")
        return _pending_edit_upsert(
            admin=admin,
            org=org,
            membership=locked,
            column=column,
            value=value,
            seen_value=seen_value,
        )


def _pending_edit_upsert(
    *,
    admin: User,
    org: Organization,
    membership: Membership,
    column: str,
    value: int,
    seen_value: int | None,
) -> PendingEdit | None:
    current = getattr(membership, column)
    existing = PendingEdit.objects.filter(
        admin=admin, column=column, target=membership.user
    ).first()
    if existing and not existing.error:
        old = existing.old_value  # keep what the admin first edited from
    elif existing:
        old = current  # the admin has seen the conflict and the current value: start afresh
    else:
        old = current if seen_value is None else seen_value
    if value == current and old == current:
        if existing:
            existing.delete()
        return None
    if existing:
        existing.old_value, existing.new_value, existing.error = old, value, ""
        existing.created_at = timezone.now()
        existing.save(update_fields=["old_value", "new_value", "error", "created_at"])
        return existing
    return PendingEdit.objects.create(
        organization=org,
        admin=admin,
        target=membership.user,
        column=column,
        old_value=old,
        new_value=value,
    )


def pending_edit_clear(*, admin: User, org: Organization, user_id: int, column: str) -> None:
    check_column(column)
    PendingEdit.objects.filter(
        admin=admin, organization=org, target_id=user_id, column=column
    ).delete()


def pending_batch_discard(*, admin: User, org: Organization, column: str) -> int:
    check_column(column)
    deleted, _ = PendingEdit.objects.filter(admin=admin, organization=org, column=column).delete()
    return deleted


@dataclass
class Change:
    user: User
    old: int
    new: int


@dataclass
class BatchResult:
    batch: AllocationBatch | None = None
    changes: list[Change] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)  # user id → why that cell failed

    @property
    def ok(self) -> bool:
        return not self.errors


class BatchRejected(DomainError):
    """A batch failed validation: nothing was saved; `cell_errors` says why per user id."""

    def __init__(self, message: str, cell_errors: dict[int, str]):
        super().__init__(message)
        self.cell_errors = cell_errors


def _apply_changes(
    *,
    actor: User | None,
    actor_label: str,
    org: Organization,
    column: str,
    targets: list[tuple[User, Membership | None, int, int]],
    source: str,
    undoes: AllocationBatch | None = None,
    ip: str | None = None,
) -> BatchResult:
    """Validate and apply `(user, membership, expected_old, new)` rows, all or nothing.

    Runs inside the caller's transaction with the organization row locked. Query count does
    not grow with the number of rows.
    """
    kind = MAX_COLUMNS[column]
    floor = org.floor(kind)
    label = COLUMN_LABELS[column]
    errors: dict[int, str] = {}
    delta = 0
    for user, membership, expected, new in targets:
        if membership is None or membership.organization_id != org.pk:
            errors[user.pk] = f"{user.email} is no longer in {org.name}."
            continue
        current = getattr(membership, column)
        if current != expected:
            errors[user.pk] = (
                f"Changed by someone else to {current:,} since you edited it "
                f"(you edited from {expected:,})."
            )
        elif new < floor:
            errors[user.pk] = f"At least {floor:,}: the organization's minimum per user."
        else:
            delta += new - current
    purchased = pools(org)[kind]
    total = allocated(org)[kind]
    if total + delta > purchased:
        over = total + delta - purchased
        message = (
            f"Over the {kind} pool by {over:,}: {purchased:,} purchased, {total:,} allocated, "
            f"these changes add {delta:,}."
        )
        for user, membership, expected, new in targets:
            if user.pk not in errors and membership is not None and new > expected:
                errors[user.pk] = message
    if errors:
        return BatchResult(errors=errors)

    changed = [(u, m, e, n) for u, m, e, n in targets if n != e]
    for _user, membership, _expected, new in changed:
        setattr(membership, column, new)
    Membership.objects.bulk_update([m for _, m, _, _ in changed], [column])
    batch = AllocationBatch.objects.create(
        organization=org,
        actor=actor if actor is not None and actor.is_authenticated else None,
        column=column,
        source=source,
        changes=[{"user": u.pk, "old": e, "new": n} for u, _, e, n in changed],
        undoes=undoes,
    )
    now = timezone.now()
    audit_bulk(
        [
            AuditLog(
                organization=org,
                actor=batch.actor,
                actor_label=actor_label,
                action="allocation.changed",
                target_user=user,
                column=column,
                old_value=str(expected),
                new_value=str(new),
                batch_id=batch.id,
                ip=ip,
                details={"label": label, "source": source},
                created_at=now,
            )
            for user, _m, expected, new in changed
        ]
    )
    if delta > 0:
        # Every allocation write comes through here (table, undo, request, policy,
        # distribution): the one place that checks the pool it just lowered.
        pool_alert_after_commit(org=org, kind=kind)
    return BatchResult(batch=batch, changes=[Change(u, e, n) for u, _, e, n in changed])


def _apply_or_reject(refusal: str, **changes) -> BatchResult:
    """`_apply_changes`, or roll the transaction back and raise BatchRejected.

    `refusal` starts the message ("Nothing was applied: "); each distinct cell error follows.
    """
    result = _apply_changes(**changes)
    if not result.ok:
        transaction.set_rollback(True)
        raise BatchRejected(refusal + "; ".join(sorted(set(result.errors.values()))), result.errors)
    return result


def allocation_batch_save(
    *, admin: User, org: Organization, column: str, signature: str | None = None, ip=None
) -> BatchResult:
    """Save the admin's pending edits of one column, all or nothing.

    On failure nothing is saved: each offending pending edit keeps its error message (so the
    table marks the cell, even after a reload) and BatchRejected is raised.
    """
    check_column(column)
    with transaction.atomic():
        org = organization_lock(org)
        edits = list(
            PendingEdit.objects.filter(admin=admin, organization=org, column=column)
            .select_related("target", "target__membership")
            .order_by("target__name", "target_id")
        )
        if not edits:
            raise DomainError(f"There are no pending changes to {COLUMN_LABELS[column]} to save.")
        shown = batch_signature(
            len(edits), max(e.pk for e in edits), max(e.created_at for e in edits)
        )
        if signature is not None and signature != shown:
            raise DomainError(
                "Your pending changes changed since this Save button was shown "
                "(another tab?). Review them and save again."
            )
        targets = [
            (e.target, getattr(e.target, "membership", None), e.old_value, e.new_value)
            for e in edits
        ]
        result = _apply_changes(
            actor=admin,
            actor_label="",
            org=org,
            column=column,
            targets=targets,
            source="table",
            ip=ip,
        )
        if result.ok:
            PendingEdit.objects.filter(pk__in=[e.pk for e in edits]).delete()
        else:
            # Errors are drafts' annotations, not allocation writes: keep them for the table.
            for edit in edits:
                edit.error = result.errors.get(edit.target_id, "")
            PendingEdit.objects.bulk_update(edits, ["error"])
    if not result.ok:
        count = len(result.errors)
        raise BatchRejected(
            f"Nothing was saved: {count} {'cell needs' if count == 1 else 'cells need'} attention.",
            result.errors,
        )
    return result


@transaction.atomic
def allocation_batch_undo(
    *, admin: User, org: Organization, batch_id: uuid.UUID, ip=None
) -> BatchResult:
    """Put back the values a saved batch replaced: itself a validated, audited batch."""
    org = organization_lock(org)
    batch = AllocationBatch.objects.filter(organization=org, pk=batch_id).first()
    if batch is None:
        raise DomainError("That batch does not exist.")
    if hasattr(batch, "undone_by"):
        raise DomainError("That batch has already been undone.")
    if batch.undoes_id is not None:
        raise DomainError("An undo cannot itself be undone: edit the cells instead.")
    ids = [c["user"] for c in batch.changes]
    users = {u.pk: u for u in User.objects.filter(pk__in=ids).select_related("membership")}
    targets = [
        (users[c["user"]], getattr(users[c["user"]], "membership", None), c["new"], c["old"])
        for c in batch.changes
        if c["user"] in users
    ]
    result = _apply_or_reject(
        "Undo refused, nothing was changed: ",
        actor=admin,
        actor_label="",
        org=org,
        column=batch.column,
        targets=targets,
        source="undo",
        undoes=batch,
        ip=ip,
    )
    return result


def _upsert_pending_edits(
    *, admin: User, org: Organization, column: str, rows: list[tuple[int, int, int]], keep_old: bool
) -> int:
    """Create or update the admin's pending edits for `(user id, current, new)` rows.

    With `keep_old`, an existing edit keeps the value the admin first edited from (unless its
    last save reported a conflict, which the admin has now seen). Three queries for any size.
    """
    existing = {
        e.target_id: e
        for e in PendingEdit.objects.filter(
            admin=admin, column=column, target_id__in=[uid for uid, _, _ in rows]
        )
    }
    now = timezone.now()
    to_update, to_create = [], []
    for uid, current, new in rows:
        edit = existing.get(uid)
        if edit:
            if not keep_old or edit.error:
                edit.old_value = current
            edit.new_value, edit.error, edit.created_at = new, "", now
            to_update.append(edit)
        else:
            to_create.append(
                PendingEdit(
                    organization=org,
                    admin=admin,
                    target_id=uid,
                    column=column,
                    old_value=current,
                    new_value=new,
                    created_at=now,
                )
            )
    PendingEdit.objects.bulk_update(to_update, ["old_value", "new_value", "error", "created_at"])
    PendingEdit.objects.bulk_create(to_create, batch_size=2000)
    return len(rows)


@transaction.atomic
def pending_bulk_create(
    *,
    admin: User,
    org: Organization,
    memberships: QuerySet[Membership],
    column: str,
    mode: str,
    raw_amount: object,
) -> int:
    """Create pending edits for many rows: "set" every Max to N, or "top up" those below N.

    `memberships` must already be scoped to `org`. Returns the number of pending edits.
    """
    check_column(column)
    if mode not in {"set", "topup"}:
        raise DomainError(errors={"mode": ["Choose “set to” or “top up to”."]})
    amount = validate_amount(org, column, raw_amount)
    rows = list(memberships.filter(organization=org).values_list("user_id", column))
    if mode == "topup":
        rows = [(uid, cur) for uid, cur in rows if cur < amount]
    rows = [(uid, cur) for uid, cur in rows if cur != amount]
    return _upsert_pending_edits(
        admin=admin,
        org=org,
        column=column,
        rows=[(uid, cur, amount) for uid, cur in rows],
        keep_old=True,
    )


# --- Emails ------------------------------------------------------------------------------


def _home_url() -> str:
    return settings.SITE_URL.rstrip("/") + "/" if getattr(settings, "SITE_URL", "") else "/"


# --- Token requests ----------------------------------------------------------------------

REASON_MAX = 500


def _parse_amount(raw: object, field: str = "amount") -> int:
    try:
        value = parse_tokens(raw)
    except AmountError as exc:
        raise DomainError(errors={field: [str(exc)]}) from exc
    if value == 0:
        raise DomainError(errors={field: ["Enter an amount above zero."]})
    return value


def _check_kind(kind: str) -> str:
    if kind not in TokenKind.values:
        raise DomainError(errors={"kind": [f"Choose inference or embedding, not “{kind[:20]}”."]})
    return kind


@transaction.atomic
def token_request_create(
    *, user: User, kind: str, raw_amount: object, reason: str, ip=None
) -> TokenRequest:
    """A member asks for more tokens of a kind. The auto-approval rule may grant it at once."""
    errors: dict[str, list[str]] = {}
    try:
        _check_kind(kind)
    except DomainError as exc:
        errors.update(exc.errors)
    try:
        amount = _parse_amount(raw_amount)
    except DomainError as exc:
        errors.update(exc.errors)
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = ["Say why you need the tokens."]
    elif len(reason) > REASON_MAX:
        errors["reason"] = [f"Keep the reason to {REASON_MAX} characters ({len(reason)} given)."]
    membership = Membership.objects.filter(user=user).select_related("organization").first()
    if membership is None:
        raise DomainError("You are not part of an organization, so there is no one to ask.")
    if membership.is_read_only:
        raise DomainError(AUDITOR_READ_ONLY)
    if errors:
        raise DomainError(errors=errors)
    org = organization_lock(membership.organization)
    if not org.is_active:
        raise DomainError(f"{org.name} is {org.get_status_display().lower()}: requests are paused.")
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if TokenRequest.objects.filter(user=user, kind=kind, status="pending").exists():
        raise DomainError(
            errors={
                "kind": [
                    f"You already have a pending {kind} request: wait for the decision "
                    "before asking again."
                ]
            }
        )
    token_request = TokenRequest.objects.create(
        organization=org,
        user=user,
        kind=kind,
        amount=amount,
        reason=reason,
        current_max=getattr(membership, column_for_kind(kind)),
    )
    audit_record(
        action="token_request.created",
        organization=org,
        actor=user,
        target_user=user,
        column=column_for_kind(kind),
        new=amount,
        request=token_request.pk,
        kind=kind,
        ip=ip,
    )
    policy = policy_for(org)
    if _auto_approvable(org, policy, token_request):
        _approve_locked(
            org=org,
            token_request=token_request,
            membership=membership,
            amount=amount,
            actor=None,
            actor_label="policy",
            note="Approved automatically by the organization's auto-approval rule.",
            ip=ip,
        )
    else:
        email_later(
            to=admin_emails(org),
            subject=f"Token request from {user.get_full_name()}: {amount:,} {kind} tokens",
            body=(
                f"{user.get_full_name()} ({user.email}) asks for {amount:,} more {kind} "
                f"tokens (their max is {token_request.current_max:,}).\n\n"
                f"Reason: {reason}\n\nDecide in the Admin Panel under Token Requests."
            ),
        )
    return token_request


def _auto_approvable(org: Organization, policy, token_request: TokenRequest) -> bool:
    if not policy.auto_approve_enabled or token_request.amount > policy.auto_approve_max:
        return False
    pool = pools(org)[token_request.kind]
    if not pool:
        return False
    used = used_this_month(org)[token_request.kind]
    if used * 100 >= policy.auto_approve_below_percent * pool:
        return False
    return token_request.amount <= unallocated(org, token_request.kind)


def _approve_locked(
    *,
    org: Organization,
    token_request: TokenRequest,
    membership: Membership,
    amount: int,
    actor: User | None,
    actor_label: str,
    note: str,
    ip=None,
) -> TokenRequest:
    """Grant `amount`: raise the user's max through a validated, audited allocation batch."""
    kind = token_request.kind
    column = column_for_kind(kind)
    free = unallocated(org, kind)
    if amount > free:
        raise DomainError(
            errors={
                "amount": [
                    f"Only {free:,} {kind} tokens are unallocated, so {amount:,} cannot be "
                    "granted. Approve a smaller amount, free tokens elsewhere or buy more."
                ]
            }
        )
    current = getattr(membership, column)
    if current + amount > MAX_TOKENS:
        raise DomainError(errors={"amount": [f"The max cannot exceed {MAX_TOKENS:,} tokens."]})
    result = _apply_changes(
        actor=actor,
        actor_label=actor_label,
        org=org,
        column=column,
        targets=[(token_request.user, membership, current, current + amount)],
        source="request",
        ip=ip,
    )
    if not result.ok:
        raise DomainError(errors={"amount": list(result.errors.values())})
    token_request.status = TokenRequest.Status.APPROVED
    token_request.granted = amount
    token_request.note = note
    token_request.decided_by = actor if actor is not None and actor.is_authenticated else None
    token_request.decided_by_label = actor_label
    token_request.decided_at = timezone.now()
    token_request.save()
    audit_record(
        action="token_request.approved",
        organization=org,
        actor=actor,
        actor_label=actor_label,
        target_user=token_request.user,
        column=column,
        old=current,
        new=current + amount,
        batch_id=result.batch.id if result.batch else None,
        request=token_request.pk,
        requested=token_request.amount,
        granted=amount,
        note=note,
        ip=ip,
    )
    smaller = f" (you asked for {token_request.amount:,})" if amount < token_request.amount else ""
    email_later(
        to=[token_request.user.email],
        subject=f"Your request for {kind} tokens was approved",
        body=(
            f"Hello {token_request.user.get_short_name()},\n\n"
            f"Your request was approved: {amount:,} {kind} tokens were added{smaller}. "
            f"Your monthly max is now {current + amount:,}.\n"
            + (f"\nNote from {actor.get_full_name()}: {note}\n" if actor and note else "")
            + f"\nSee your limits at {_home_url()}\n"
        ),
    )
    return token_request


def _locked_request(org: Organization, request_id: int) -> TokenRequest:
    token_request = (
        TokenRequest.objects.select_for_update()
        .select_related("user")
        .filter(organization=org, pk=request_id)
        .first()
    )
    if token_request is None:
        raise DomainError("That token request does not exist.")
    if token_request.status != TokenRequest.Status.PENDING:
        who = (
            token_request.decided_by.get_full_name()
            if token_request.decided_by
            else token_request.decided_by_label or "someone"
        )
        raise DomainError(
            f"This request was already {token_request.status} by {who}: nothing was changed."
        )
    return token_request


@transaction.atomic
def token_request_approve(
    *,
    admin: User,
    org: Organization,
    request_id: int,
    raw_amount: object = None,
    note: str = "",
    ip=None,
) -> TokenRequest:
    """Approve the requested amount or a smaller one. Exactly one of two racing admins wins:
    the organization row is locked before the request's status is read."""
    org = organization_lock(org)
    token_request = _locked_request(org, request_id)
    amount = token_request.amount
    if raw_amount not in (None, ""):
        amount = _parse_amount(raw_amount)
        if amount > token_request.amount:
            raise DomainError(
                errors={
                    "amount": [
                        f"Approve at most the {token_request.amount:,} tokens requested "
                        f"({amount:,} given)."
                    ]
                }
            )
    note = (note or "").strip()
    if len(note) > REASON_MAX:
        raise DomainError(errors={"note": [f"Keep the note to {REASON_MAX} characters."]})
    membership = (
        Membership.objects.select_for_update()
        .filter(organization=org, user=token_request.user)
        .first()
    )
    if membership is None:
        raise DomainError(f"{token_request.user.email} is no longer in {org.name}.")
    return _approve_locked(
        org=org,
        token_request=token_request,
        membership=membership,
        amount=amount,
        actor=admin,
        actor_label="",
        note=note,
        ip=ip,
    )


@transaction.atomic
def token_request_deny(
    *, admin: User, org: Organization, request_id: int, note: str, ip=None
) -> TokenRequest:
    note = (note or "").strip()
    if not note:
        raise DomainError(errors={"note": ["Say why the request is denied: the member sees it."]})
    if len(note) > REASON_MAX:
        raise DomainError(errors={"note": [f"Keep the note to {REASON_MAX} characters."]})
    org = organization_lock(org)
    token_request = _locked_request(org, request_id)
    token_request.status = TokenRequest.Status.DENIED
    token_request.note = note
    token_request.decided_by = admin
    token_request.decided_at = timezone.now()
    token_request.save()
    audit_record(
        action="token_request.denied",
        organization=org,
        actor=admin,
        target_user=token_request.user,
        column=column_for_kind(token_request.kind),
        request=token_request.pk,
        requested=token_request.amount,
        note=note,
        ip=ip,
    )
    email_later(
        to=[token_request.user.email],
        subject=f"Your request for {token_request.kind} tokens was denied",
        body=(
            f"Hello {token_request.user.get_short_name()},\n\n"
            f"Your request for {token_request.amount:,} {token_request.kind} tokens was "
            f"denied by {admin.get_full_name()}.\n\nNote: {note}\n\n"
            f"Your limits are unchanged. See them at {_home_url()}\n"
        ),
    )
    return token_request


# --- Allocation policy (presets) -----------------------------------------------------------

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


def _platform_floor(kind: str) -> int:
    return (
        settings.PLATFORM_MIN_INFERENCE_TOKENS
        if kind == TokenKind.INFERENCE
        else settings.PLATFORM_MIN_EMBEDDING_TOKENS
    )


def _parse_int(raw: object, field: str, label: str, low: int, high: int) -> int:
    # The one whole-number validator (ASCII digits, bounded length before int()).
    try:
        return parse_whole(raw, label=label, low=low, high=high)
    except InputError:
        raise DomainError(
            errors={field: [f"{label}: enter a whole number from {low} to {high}."]}
        ) from None


def policy_settings_clean(preset: str, raw: dict | None = None) -> dict:
    """The settings a preset stands for; for Custom, the typed ones, validated.

    Raises DomainError keyed by field: floors ≥ the platform's, ceiling ≥ floors, trigger
    1–100 %, positive step and cooldown.
    """
    if preset not in Preset.values:
        raise DomainError(errors={"preset": [f"“{str(preset)[:30]}” is not a preset."]})
    if preset in PRESETS:
        return dict(PRESETS[preset])
    if preset == Preset.MANUAL:
        return {}
    raw = raw or {}
    errors: dict[str, list[str]] = {}
    values: dict = {}
    for kind in TokenKind.values:
        field = f"floor_{kind}"
        try:
            values[field] = parse_tokens(raw.get(field, ""))
        except AmountError as exc:
            errors[field] = [str(exc)]
            continue
        if values[field] < _platform_floor(kind):
            errors[field] = [
                f"At least {_platform_floor(kind):,}: the platform's minimum {kind} floor."
            ]
    ceiling_raw = str(raw.get("ceiling", "") or "").strip()
    values["ceiling"] = None
    if ceiling_raw and ceiling_raw.lower() not in {"none", "no ceiling"}:
        try:
            values["ceiling"] = parse_tokens(ceiling_raw)
        except AmountError as exc:
            errors["ceiling"] = [str(exc)]
        else:
            highest = max(values.get("floor_inference", 0), values.get("floor_embedding", 0))
            if values["ceiling"] < highest:
                errors["ceiling"] = [
                    f"The ceiling ({values['ceiling']:,}) must be at least the floor ({highest:,})."
                ]
    for field, label, low, high in (
        ("trigger_percent", "Trigger", 1, 100),
        ("cooldown_minutes", "Cooldown", 1, 60 * 24 * 31),
    ):
        try:
            values[field] = _parse_int(raw.get(field), field, label, low, high)
        except DomainError as exc:
            errors.update(exc.errors)
    mode = raw.get("step_mode", "")
    if mode not in {StepMode.PERCENT, StepMode.FIXED}:
        errors["step_mode"] = ["Choose a percent of the current max or a fixed number of tokens."]
    else:
        values["step_mode"] = mode
        try:
            if mode == StepMode.PERCENT:
                values["step_value"] = _parse_int(
                    raw.get("step_value"), "step_value", "Percent step", 1, 1000
                )
            else:
                values["step_value"] = _parse_amount(raw.get("step_value"), "step_value")
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


def _show(field: str, value) -> str:
    if value is None:
        return "none" if field == "ceiling" else "—"
    if field == "step_mode":
        return StepMode(value).label
    if field in {"floor_inference", "floor_embedding", "ceiling"}:
        return f"{value:,}"
    return str(value)


def policy_preview(*, org: Organization, preset: str, raw: dict | None = None) -> PolicyPreview:
    """What choosing a preset changes: settings old → new, and who falls below the new floor."""
    new = policy_settings_clean(preset, raw)
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
    below, cost, free = {}, {}, {}
    pool, alloc = pools(org), allocated(org)
    for kind in TokenKind.values:
        floor = max(new.get(f"floor_{kind}", org.floor(kind)), _platform_floor(kind))
        column = column_for_kind(kind)
        rows = Membership.objects.filter(organization=org, **{f"{column}__lt": floor})
        totals = rows.aggregate(n=Count("pk"), have=Sum(column))
        below[kind] = totals["n"]
        cost[kind] = floor * totals["n"] - (totals["have"] or 0)
        free[kind] = max(pool[kind] - alloc[kind], 0)
    return PolicyPreview(preset, new, changes, below, cost, free)


@transaction.atomic
def policy_apply(
    *, admin: User, org: Organization, preset: str, raw: dict | None = None, ip=None
) -> AllocationPolicy:
    """Choose a preset (or Custom settings). Its floors become the organization's minimums:
    new members start there; members already below keep their max until raised."""
    org = organization_lock(org)
    new = policy_settings_clean(preset, raw)
    policy = AllocationPolicy.objects.select_for_update().filter(organization=org).first()
    if policy is None:
        policy = policy_for(org)
    old = {f: getattr(policy, f) for f in ("preset", *POLICY_FIELDS)}
    policy.preset = preset
    for name, value in new.items():
        setattr(policy, name, value)
    policy.updated_at = timezone.now()
    policy.save()
    floors = {kind: max(policy.floor(kind), _platform_floor(kind)) for kind in TokenKind.values}
    if preset != Preset.MANUAL and (
        org.min_inference_tokens != floors["inference"]
        or org.min_embedding_tokens != floors["embedding"]
    ):
        org.min_inference_tokens = floors["inference"]
        org.min_embedding_tokens = floors["embedding"]
        org.save(update_fields=["min_inference_tokens", "min_embedding_tokens"])
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
        ip=ip,
    )
    return policy


@transaction.atomic
def policy_options_update(
    *,
    admin: User,
    org: Organization,
    thresholds: object,
    low_unallocated: object,
    auto_approve_enabled: bool,
    auto_approve_max: object,
    auto_approve_below_percent: object,
    reclaim_idle_days: object,
    ip=None,
) -> AllocationPolicy:
    """Alerts, the auto-approval rule and reclamation's idle days."""
    org = organization_lock(org)
    errors: dict[str, list[str]] = {}
    parsed: dict = {}
    try:
        items = [t for t in str(thresholds or "").replace("%", "").replace(" ", "").split(",") if t]
        values = sorted({_parse_int(t, "thresholds", "Each threshold", 1, 100) for t in items})
        parsed["alert_thresholds"] = values
    except DomainError as exc:
        errors.update(exc.errors)
    text = str(low_unallocated or "").strip()
    if text:
        try:
            parsed["low_unallocated_alert"] = parse_tokens(text)
        except AmountError as exc:
            errors["low_unallocated"] = [str(exc)]
    else:
        parsed["low_unallocated_alert"] = None
    parsed["auto_approve_enabled"] = bool(auto_approve_enabled)
    text = str(auto_approve_max or "").strip()
    try:
        parsed["auto_approve_max"] = parse_tokens(text) if text else 0
    except AmountError as exc:
        errors["auto_approve_max"] = [str(exc)]
    for name, raw, label, low, high in (
        ("auto_approve_below_percent", auto_approve_below_percent, "Pool share", 1, 100),
        ("reclaim_idle_days", reclaim_idle_days, "Idle days", 1, 366),
    ):
        try:
            parsed[name] = _parse_int(raw, name, label, low, high)
        except DomainError as exc:
            errors.update(exc.errors)
    if parsed.get("auto_approve_enabled") and not parsed.get("auto_approve_max"):
        errors.setdefault("auto_approve_max", []).append(
            "Set the largest amount the rule approves on its own."
        )
    if errors:
        raise DomainError(errors=errors)
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


# --- Per-user overrides -----------------------------------------------------------------


@transaction.atomic
def member_override_set(
    *,
    admin: User,
    org: Organization,
    membership: Membership,
    pinned: bool,
    raw: dict,
    ip=None,
) -> MemberOverride:
    """Pin a user (no auto-increase) or give them their own floor/ceiling per kind."""
    org = organization_lock(org)
    if membership.organization_id != org.pk:
        raise DomainError("That user is not in your organization.")
    errors: dict[str, list[str]] = {}
    values: dict = {}
    for kind in TokenKind.values:
        for bound in ("floor", "ceiling"):
            field = f"{bound}_{kind}"
            text = str(raw.get(field, "") or "").strip()
            values[field] = None
            if not text:
                continue
            try:
                values[field] = parse_tokens(text)
            except AmountError as exc:
                errors[field] = [str(exc)]
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


def _member_bounds(policy, override: MemberOverride | None, kind: str) -> tuple[int, int | None]:
    """(floor, ceiling) for one member and kind: their override, else the policy's."""
    floor = policy.floor(kind)
    ceiling = policy.ceiling
    if override is not None:
        floor = getattr(override, f"floor_{kind}") or floor
        own = getattr(override, f"ceiling_{kind}")
        ceiling = own if own is not None else ceiling
    return floor, ceiling


# --- Auto-increase ------------------------------------------------------------------------


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
    _floor, ceiling = _member_bounds(policy, override, kind)
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
    result = _apply_changes(
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


# --- Alerts ------------------------------------------------------------------------------


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
    percent = used * 100 // current
    email_later(
        to=[user.email, *[e for e in admin_emails(org) if e != user.email]],
        subject=f"{user.get_full_name()} has used {top} % of their {kind} tokens",
        body=(
            f"{user.get_full_name()} ({user.email}) has used {used:,} of {current:,} {kind} "
            f"tokens this month ({percent} %).\n\n"
            "Members can ask for more from their home page; admins can raise the max under "
            "User Management or Token Distribution.\n"
        ),
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


# --- Distribution actions ------------------------------------------------------------------

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
    def shown_rows(self) -> list[dict]:
        """The first 100 rows, for the preview table."""
        return [
            {"email": u.email, "old": old, "new": new, "change": new - old}
            for u, _m, old, new in self.rows[:100]
        ]


def distribution_plan(
    *,
    org: Organization,
    kind: str,
    action: str,
    raw_amount: object = None,
    user_ids: list[int] | None = None,
) -> Plan:
    """Compute a distribution action without writing anything.

    split: the unallocated pool divided equally among the chosen users (all when none
    chosen); the remainder goes one token each to the first users by id, so the total never
    exceeds the pool and the same inputs always give the same plan.
    """
    _check_kind(kind)
    if action not in DISTRIBUTION_ACTIONS:
        raise DomainError(errors={"action": ["Choose one of the distribution actions."]})
    column = column_for_kind(kind)
    members = Membership.objects.filter(organization=org).select_related("user").order_by("user_id")
    if user_ids:
        members = members.filter(user_id__in=user_ids)
    members = list(members)
    if user_ids and not members:
        raise DomainError(errors={"users": ["None of the chosen users is in your organization."]})
    if not members:
        raise DomainError("There is nobody to distribute tokens to.")
    purchased, total = pools(org)[kind], allocated(org)[kind]
    amount = None
    rows: list[tuple[User, Membership, int, int]] = []
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
        amount = _parse_amount(raw_amount)
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
            floor, _ceiling = _member_bounds(policy, overrides.get(m.user_id), kind)
            floor = max(floor, org.floor(kind))
            current = getattr(m, column)
            if current < floor:
                rows.append((m.user, m, current, floor))
    return Plan(action, kind, rows, purchased, total, amount)


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
    raw_amount: object = None,
    user_ids: list[int] | None = None,
    signature: str | None = None,
    ip=None,
) -> BatchResult:
    """Run a previewed distribution action as one validated, audited batch.

    With `signature`, refuses when the plan differs from the previewed one (someone changed
    an allocation meanwhile): the admin previews again instead of applying a surprise.
    """
    org = organization_lock(org)
    plan = distribution_plan(
        org=org, kind=kind, action=action, raw_amount=raw_amount, user_ids=user_ids
    )
    if signature == "":
        raise DomainError("Preview the action first: nothing was applied.")
    if signature is not None and signature != plan.signature:
        raise DomainError(
            "Allocations changed since this preview: nothing was applied. Preview again."
        )
    _plan_errors(plan)
    result = _apply_or_reject(
        "Nothing was applied: ",
        actor=admin,
        actor_label="",
        org=org,
        column=column_for_kind(kind),
        targets=plan.rows,
        source="distribution",
        ip=ip,
    )
    audit_record(
        action="distribution.applied",
        organization=org,
        actor=admin,
        column=column_for_kind(kind),
        batch_id=result.batch.id,
        new=plan.delta,
        action_name=action,
        users=len(plan.rows),
        ip=ip,
    )
    return result


# --- Reclamation ---------------------------------------------------------------------------


def reclaim_plan(*, org: Organization, kind: str, idle_days: int | None = None) -> Plan:
    """Unused allocation above each idle member's floor, back to the pool (a dry run).

    Idle: no usage of any kind for `idle_days` (the policy's setting by default) and joined
    before that. Each keeps max(floor, used this month).
    """
    _check_kind(kind)
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
        floor, _ = _member_bounds(policy, overrides.get(m.user_id), kind)
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
    if signature == "":
        raise DomainError("Preview the reclamation first: nothing was reclaimed.")
    if signature is not None and signature != plan.signature:
        raise DomainError("Allocations changed since this preview: nothing was reclaimed.")
    if not plan.rows:
        raise DomainError(f"No idle member has unused {kind} tokens above their floor.")
    result = _apply_or_reject(
        "Nothing was reclaimed: ",
        actor=admin,
        actor_label="" if admin else "policy",
        org=org,
        column=column_for_kind(kind),
        targets=plan.rows,
        source="reclaim",
        ip=ip,
    )
    audit_record(
        action="reclaim.applied",
        organization=org,
        actor=admin,
        actor_label="" if admin else "policy",
        column=column_for_kind(kind),
        batch_id=result.batch.id,
        new=-plan.delta,
        users=len(plan.rows),
        ip=ip,
    )
    return result


# --- Purchase requests to sales -------------------------------------------------------------


@transaction.atomic
def purchase_request_create(
    *, admin: User, org: Organization, kind: str, raw_blocks: object, note: str, ip=None
) -> PurchaseRequest:
    _check_kind(kind)
    try:
        blocks = parse_whole(raw_blocks, label="Blocks", low=1, high=1000)
    except InputError:
        raise DomainError(
            errors={"blocks": ["Enter how many blocks of 2,000,000 tokens, from 1 to 1000."]}
        ) from None
    note = (note or "").strip()
    if len(note) > 1000:
        raise DomainError(errors={"note": ["Keep the note to 1000 characters."]})
    org = organization_lock(org)
    request = PurchaseRequest.objects.create(
        organization=org, requested_by=admin, kind=kind, blocks=blocks, note=note
    )
    audit_record(
        action="purchase_request.created",
        organization=org,
        actor=admin,
        new=request.tokens,
        kind=kind,
        note=note,
        ip=ip,
    )
    sales = User.objects.filter(is_staff=True, is_active=True, is_banned=False).order_by("email")
    email_later(
        to=list(sales.values_list("email", flat=True)),
        subject=f"{org.name} asks for {request.tokens:,} more {kind} tokens a month",
        body=f"{admin.get_full_name()} ({admin.email}) asks for {request.blocks} block(s).\n\n"
        f"Note: {note or '—'}\n\nAnswer it in the sales admin under Purchase requests.\n",
    )
    return request


@transaction.atomic
def distribution_to_pending(
    *,
    admin: User,
    org: Organization,
    kind: str,
    action: str,
    raw_amount: object = None,
    user_ids: list[int] | None = None,
) -> int:
    """Turn a distribution plan into the admin's pending edits, to review and save in User
    Management (where saving validates the pool again). Returns the number of edits."""
    plan = distribution_plan(
        org=org, kind=kind, action=action, raw_amount=raw_amount, user_ids=user_ids
    )
    if not plan.rows:
        raise DomainError("Nothing would change: every chosen user already has that amount.")
    return _upsert_pending_edits(
        admin=admin,
        org=org,
        column=column_for_kind(kind),
        rows=[(user.pk, current, new) for user, _m, current, new in plan.rows],
        keep_old=False,
    )
