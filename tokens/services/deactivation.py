"""A member banned or re-activated: their allocation follows the organization's policy.

`Organization.on_deactivation` is "return" by default (issue 17: "allocation returned to the
pool"): the ban lowers both maxima to 0, so the tokens go back to the unallocated pool, and
re-activation raises each one below the floor back to the floor, from the pool — refused,
nothing changed, when the pool cannot cover it. The old maxima are not restored: they were
given back, and others may hold them now. "keep" leaves the maxima as they were.

A banned member's floor is 0 everywhere (`allocations.member_floor`): Save Changes, imports,
presets, auto-increase and the distribution's floor action never push tokens back onto
someone who cannot use them.

Callers hold the organization row lock, in one transaction with the ban itself; each change
is an `allocation.changed` audit row with the caller as actor.
"""

from accounts.models import Membership, Organization, User
from asksage_admin.lib.errors import DomainError
from tokens.models import MAX_COLUMNS
from tokens.services.allocations import apply_changes


def _apply(*, actor, actor_label, org, membership, user, column, new, source, ip):
    return apply_changes(
        actor=actor,
        actor_label=actor_label,
        org=org,
        column=column,
        targets=[(user, membership, getattr(membership, column), new)],
        source=source,
        ip=ip,
    )


def allocation_after_ban(
    *,
    actor: User | None,
    actor_label: str = "",
    org: Organization,
    membership: Membership,
    user: User,
    ip: str | None = None,
) -> None:
    """Under "return", the banned member's maxima go to 0 (their tokens to the pool)."""
    if org.on_deactivation != Organization.OnDeactivation.RETURN:
        return
    who = {
        "actor": actor,
        "actor_label": actor_label,
        "org": org,
        "membership": membership,
        "user": user,
    }
    for column in MAX_COLUMNS:
        if getattr(membership, column):
            result = _apply(**who, column=column, new=0, source="deactivation", ip=ip)
            if not result.ok:  # only a concurrent change could: the caller's lock forbids it
                raise DomainError(" ".join(sorted(set(result.errors.values()))))


def allocation_after_unban(
    *,
    actor: User | None,
    actor_label: str = "",
    org: Organization,
    membership: Membership,
    user: User,
    ip: str | None = None,
) -> None:
    """Each max below the organization's floor rises to it, or nothing happens: a DomainError
    in words, and the caller's transaction rolls back (the ban stays)."""
    who = {
        "actor": actor,
        "actor_label": actor_label,
        "org": org,
        "membership": membership,
        "user": user,
    }
    refusals = []
    for column, kind in MAX_COLUMNS.items():
        floor = org.floor(kind)
        if getattr(membership, column) >= floor:
            continue
        result = _apply(**who, column=column, new=floor, source="reactivation", ip=ip)
        refusals += sorted(set(result.errors.values()))
    if refusals:
        raise DomainError(
            f"{user.email} cannot be re-activated: the unallocated pool does not cover the "
            f"organization's floors. {' '.join(refusals)} Buy more tokens or lower other "
            "members' maxima first."
        )
