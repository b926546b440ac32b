"""Limits set through the admin API: many users' maxima in one call, all or nothing.

The same write as the table's Save Changes (`allocations.apply_or_reject`: floors, the pool,
one audit row per cell under one batch id, undo by that id), with the values the caller
expects to replace given in the call (an `If-Match` per cell) instead of pending edits.
"""

from dataclasses import dataclass

from django.db import transaction

from accounts.models import Membership, Organization, User
from accounts.services import organization_lock
from asksage_admin.lib.errors import DomainError
from tokens.models import TokenKind, column_for_kind
from tokens.services._core import check_amount, check_kind
from tokens.services.allocations import BatchRejected, BatchResult, apply_or_reject

MAX_CHANGES = 5000  # one call; a bigger organization sends several


@dataclass(frozen=True)
class LimitChange:
    user_id: int
    expected: int  # the max the caller read; the call is refused if it changed since
    new: int


class StaleValues(BatchRejected):
    """Some cells no longer hold the value the caller expected: nothing was changed."""


def _check_changes(kind: str, changes: list[LimitChange]) -> str:
    check_kind(kind)
    if not changes:
        raise DomainError(errors={"changes": ["Send at least one change."]})
    if len(changes) > MAX_CHANGES:
        raise DomainError(errors={"changes": [f"Send at most {MAX_CHANGES:,} changes a call."]})
    if len({c.user_id for c in changes}) != len(changes):
        raise DomainError(errors={"changes": ["Each user may appear once in a call."]})
    for change in changes:
        check_amount(change.new, "new", allow_zero=True)
        check_amount(change.expected, "expected", allow_zero=True)
    return column_for_kind(kind)


@transaction.atomic
def allocation_api_set(
    *,
    org: Organization,
    kind: str = TokenKind.INFERENCE,
    changes: list[LimitChange],
    actor_label: str,
    ip: str | None = None,
) -> BatchResult:
    """Set each user's max of `kind` from `expected` to `new`, all or nothing, audited as
    `actor_label` (the API key). Raises DomainError (bad input, unknown users), StaleValues
    (412: a cell changed since it was read) or BatchRejected (floor, pool)."""
    column = _check_changes(kind, changes)
    org = organization_lock(org)
    ids = [c.user_id for c in changes]
    users = {
        u.pk: u
        for u in User.objects.filter(pk__in=ids, membership__organization=org).select_related(
            "membership"
        )
    }
    missing = [uid for uid in ids if uid not in users]
    if missing:
        shown = ", ".join(str(uid) for uid in missing[:5])
        raise DomainError(
            errors={"changes": [f"No user with id {shown} in {org.name}: nothing was changed."]}
        )
    stale = {
        c.user_id: f"Now {getattr(users[c.user_id].membership, column):,}, not {c.expected:,}."
        for c in changes
        if getattr(users[c.user_id].membership, column) != c.expected
    }
    if stale:
        raise StaleValues(
            f"{len(stale):,} of the limits changed since they were read: nothing was changed.",
            stale,
        )
    targets: list[tuple[User, Membership, int, int]] = [
        (users[c.user_id], users[c.user_id].membership, c.expected, c.new) for c in changes
    ]
    return apply_or_reject(
        "Nothing was changed: ",
        actor=None,
        actor_label=actor_label,
        org=org,
        column=column,
        targets=targets,
        source="api",
        ip=ip,
    )
