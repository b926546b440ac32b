"""Writes about allocations: pending edits, batch saves, undo, bulk edits.

Every allocation write locks the organization row first, so two admins saving at once are
serialized and cannot both pass the pool check. `apply_changes` is the one place that
changes members' maxima: requests, policy, distribution and reclamation all go through it.
"""

import uuid
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Membership, Organization, User
from accounts.services import organization_lock
from asksage_admin.lib.errors import DomainError
from audit.models import AuditLog
from audit.services import audit_bulk
from tokens.alerts import pool_alert_after_commit
from tokens.models import COLUMN_LABELS, MAX_COLUMNS, AllocationBatch, PendingEdit
from tokens.selectors import allocated, batch_signature, pools
from tokens.services import notifications
from tokens.services._core import check_column, check_floor, member_floor


@transaction.atomic
def pending_edit_set(
    *,
    admin: User,
    org: Organization,
    membership: Membership,
    column: str,
    value: int,
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
    check_floor(org, column, value, user=membership.user)
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


Target = tuple[User, Membership | None, int, int]  # user, membership, expected old, new


def _change_errors(*, org: Organization, column: str, targets: list[Target]) -> tuple[dict, int]:
    """Why each row cannot be applied (user id → message), and the rows' total change.

    A row fails when the user left, the cell changed since it was edited, or the new value is
    below the floor; when the rows together exceed the pool, every increase fails too.
    """
    kind = MAX_COLUMNS[column]
    errors: dict[int, str] = {}
    delta = 0
    for user, membership, expected, new in targets:
        if membership is None or membership.organization_id != org.pk:
            errors[user.pk] = f"{user.email} is no longer in {org.name}."
            continue
        floor = member_floor(org, kind, user)
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
    return errors, delta


def apply_changes(
    *,
    actor: User | None,
    actor_label: str,
    org: Organization,
    column: str,
    targets: list[Target],
    source: str,
    undoes: AllocationBatch | None = None,
    ip: str | None = None,
) -> BatchResult:
    """Validate and apply `(user, membership, expected_old, new)` rows, all or nothing.

    Runs inside the caller's transaction with the organization row locked. Query count does
    not grow with the number of rows.
    """
    errors, delta = _change_errors(org=org, column=column, targets=targets)
    if errors:
        return BatchResult(errors=errors)
    changed = [(u, m, e, n) for u, m, e, n in targets if n != e]
    _set_maxima(column, [(m, n) for _, m, _, n in changed])
    batch = AllocationBatch.objects.create(
        organization=org,
        actor=actor if actor is not None and actor.is_authenticated else None,
        column=column,
        source=source,
        changes=[{"user": u.pk, "old": e, "new": n} for u, _, e, n in changed],
        undoes=undoes,
    )
    now = timezone.now()
    label = COLUMN_LABELS[column]
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
    # Every allocation write comes through here (table, undo, request, policy,
    # distribution): the one place that tells the users and checks the pool it lowered.
    notifications.limits_changed(
        org=org, batch=batch, rows=[(u.pk, e, n) for u, _, e, n in changed]
    )
    if delta > 0:
        pool_alert_after_commit(org=org, kind=MAX_COLUMNS[column])
    return BatchResult(batch=batch, changes=[Change(u, e, n) for u, _, e, n in changed])


# Up to this many distinct new values, one UPDATE per value; past it, Django's bulk_update.
_FEW_VALUES = 8


def _set_maxima(column: str, rows: list[tuple[Membership, int]]) -> None:
    """Write each membership's new max. A batch usually sets a few values (a bulk "set to",
    a raise for everyone): one `UPDATE … WHERE id IN (…)` per value is much cheaper than
    bulk_update's CASE over every row (measured: 1,000 rows, 1.5 s of query building).
    Either way the query count does not grow with the rows."""
    by_value: dict[int, list[int]] = {}
    for membership, new in rows:
        setattr(membership, column, new)
        by_value.setdefault(new, []).append(membership.pk)
    if len(by_value) <= _FEW_VALUES:
        for new, ids in by_value.items():
            Membership.objects.filter(pk__in=ids).update(**{column: new})
    else:
        Membership.objects.bulk_update([m for m, _ in rows], [column])


def apply_or_reject(refusal: str, **changes) -> BatchResult:
    """`apply_changes`, or roll the transaction back and raise BatchRejected.

    `refusal` starts the message ("Nothing was applied: "); each distinct cell error follows.
    """
    result = apply_changes(**changes)
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
        result = apply_changes(
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
    *, admin: User | None, org: Organization, batch_id: uuid.UUID, ip=None, actor_label: str = ""
) -> BatchResult:
    """Put back the values a saved batch replaced: itself a validated, audited batch.
    `admin` None and `actor_label`: an API key undoes it."""
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
    result = apply_or_reject(
        "Undo refused, nothing was changed: ",
        actor=admin,
        actor_label=actor_label,
        org=org,
        column=batch.column,
        targets=targets,
        source="undo",
        undoes=batch,
        ip=ip,
    )
    return result


def upsert_pending_edits(
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
                    # Ids: `admin` is often request.user, a lazy object that makes each of
                    # thousands of accesses cost.
                    organization_id=org.pk,
                    admin_id=admin.pk,
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
    amount: int,
) -> int:
    """Create pending edits for many rows: "set" every Max to N, or "top up" those below N.

    `memberships` must already be scoped to `org`. Returns the number of pending edits.
    """
    check_column(column)
    if mode not in {"set", "topup"}:
        raise DomainError(errors={"mode": ["Choose “set to” or “top up to”."]})
    check_floor(org, column, amount)
    rows = list(memberships.filter(organization=org).values_list("user_id", column))
    if mode == "topup":
        rows = [(uid, cur) for uid, cur in rows if cur < amount]
    rows = [(uid, cur) for uid, cur in rows if cur != amount]
    return upsert_pending_edits(
        admin=admin,
        org=org,
        column=column,
        rows=[(uid, cur, amount) for uid, cur in rows],
        keep_old=True,
    )
