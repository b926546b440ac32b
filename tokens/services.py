"""Writes about allocations: pending edits, batch saves, undo, bulk edits.

Every allocation write locks the organization row first, so two admins saving at once are
serialized and cannot both pass the pool check.
"""

import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Membership, Organization, User
from analytics.models import AuditLog
from analytics.services import audit_bulk, audit_record
from asksage_admin.lib.amounts import MAX_TOKENS, AmountError, parse_tokens
from asksage_admin.lib.errors import DomainError
from tokens.models import (
    COLUMN_LABELS,
    MAX_COLUMNS,
    AllocationBatch,
    PendingEdit,
    TokenKind,
    TokenRequest,
    column_for_kind,
)
from tokens.selectors import allocated, batch_signature, policy_for, pools, used_this_month


def check_column(column: str) -> str:
    if column not in MAX_COLUMNS:
        raise DomainError(f"“{column[:40]}” is not an editable column.")
    return column


def _locked_org(org: Organization) -> Organization:
    return Organization.objects.select_for_update().get(pk=org.pk)


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
    """
    check_column(column)
    value = validate_amount(org, column, raw_value)
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
    return BatchResult(batch=batch, changes=[Change(u, e, n) for u, _, e, n in changed])


def allocation_batch_save(
    *, admin: User, org: Organization, column: str, signature: str | None = None, ip=None
) -> BatchResult:
    """Save the admin's pending edits of one column, all or nothing.

    On failure nothing is saved: each offending pending edit keeps its error message (so the
    table marks the cell, even after a reload) and BatchRejected is raised.
    """
    check_column(column)
    with transaction.atomic():
        org = _locked_org(org)
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
    org = _locked_org(org)
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
    result = _apply_changes(
        actor=admin,
        actor_label="",
        org=org,
        column=batch.column,
        targets=targets,
        source="undo",
        undoes=batch,
        ip=ip,
    )
    if not result.ok:
        transaction.set_rollback(True)
        raise BatchRejected(
            "Undo refused, nothing was changed: " + "; ".join(sorted(set(result.errors.values()))),
            result.errors,
        )
    return result


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
    ids = [uid for uid, _ in rows]
    existing = {
        e.target_id: e
        for e in PendingEdit.objects.filter(admin=admin, column=column, target_id__in=ids)
    }
    now = timezone.now()
    to_update, to_create = [], []
    for uid, current in rows:
        edit = existing.get(uid)
        if edit:
            if edit.error:
                edit.old_value = current  # the admin saw the conflict: edit from the current
            edit.new_value, edit.error, edit.created_at = amount, "", now
            to_update.append(edit)
        else:
            to_create.append(
                PendingEdit(
                    organization=org,
                    admin=admin,
                    target_id=uid,
                    column=column,
                    old_value=current,
                    new_value=amount,
                    created_at=now,
                )
            )
    PendingEdit.objects.bulk_update(to_update, ["new_value", "error", "created_at", "old_value"])
    PendingEdit.objects.bulk_create(to_create, batch_size=2000)
    return len(rows)


# --- Emails ------------------------------------------------------------------------------


def _email_later(*, to: list[str], subject: str, body: str) -> None:
    """Send a plain email once the transaction commits (nothing is sent for a rollback)."""
    to = [address for address in to if address]
    if not to:
        return
    transaction.on_commit(
        lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, to, fail_silently=True)
    )


def _admin_emails(org: Organization) -> list[str]:
    return list(
        Membership.objects.filter(organization=org, role=Membership.Role.ADMIN)
        .order_by("user__email")
        .values_list("user__email", flat=True)
    )


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


def unallocated(org: Organization, kind: str) -> int:
    return max(pools(org)[kind] - allocated(org)[kind], 0)


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
    if errors:
        raise DomainError(errors=errors)
    org = _locked_org(membership.organization)
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
        _email_later(
            to=_admin_emails(org),
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
    _email_later(
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
    org = _locked_org(org)
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
    org = _locked_org(org)
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
    _email_later(
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
